//! Who the client is behind proxies (SPEC §12): `X-Forwarded-For` and `X-Real-IP` are believed
//! only from the peers `trustedProxies` names; otherwise the socket's address is the client. A
//! spoofed header from anyone else changes nothing.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::values::InvalidValue;

/// The proxies whose forwarding headers are believed: CIDRs or single addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma- or space-separated list (`10.0.0.0/8, 192.168.1.7, ::1`); empty trusts no one.
    pub fn parse(list: &str) -> Result<Self, InvalidValue> {
        let mut nets = Vec::new();
        for item in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    InvalidValue::new(
                        "trustedProxies",
                        format!("{item:?} is not a CIDR (10.0.0.0/8) or an IP address"),
                    )
                })?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    /// address in `X-Forwarded-For` (read from the right) that is not itself a trusted proxy,
    /// else `X-Real-IP`, else the peer.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str], real_ip: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .collect();
        if let Some(ip) = chain.iter().rev().find(|ip| !self.trusts(**ip)) {
            return *ip;
        }
        if let Some(ip) = chain.first() {
            return *ip;
        }
        real_ip
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .unwrap_or(peer)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn nobody_is_trusted_by_default() {
        let t = TrustedProxies::parse("").expect("empty");
        assert!(t.is_empty());
        assert_eq!(
            t.client(ip("10.0.0.1"), &["1.2.3.4"], Some("5.6.7.8")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").expect("list");
        // The nearest untrusted hop, read from the right.
        assert_eq!(
            t.client(ip("10.0.0.1"), &["6.6.6.6, 1.2.3.4, 10.0.0.9"], None),
            ip("1.2.3.4")
        );
        assert_eq!(
            t.client(ip("192.168.1.7"), &[], Some("1.2.3.4")),
            ip("1.2.3.4")
        );
        // Another peer's header is ignored.
        assert_eq!(t.client(ip("8.8.8.8"), &["1.2.3.4"], None), ip("8.8.8.8"));
        // Garbage in the header: the peer.
        assert_eq!(
            t.client(ip("10.0.0.1"), &["not-an-ip"], Some("nope")),
            ip("10.0.0.1")
        );
        // IPv4 peers seen through an IPv6 socket.
        assert_eq!(
            t.client(ip("::ffff:10.0.0.1"), &["1.2.3.4"], None),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn a_malformed_entry_names_the_key() {
        let e = TrustedProxies::parse("10.0.0.0/33").expect_err("bad prefix");
        assert_eq!(e.field, "trustedProxies");
        assert!(TrustedProxies::parse("proxy.example").is_err());
    }
}
