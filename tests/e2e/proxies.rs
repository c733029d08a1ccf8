//! Trusted proxies and what else a node keeps from strangers (SPEC §12): `X-Forwarded-For` names
//! the client only when the peer is a proxy `trustedProxies` lists — for the rate limit, the
//! records and the sessions; from anyone else a spoofed header changes nothing. Nor does the
//! Host header: the issuer and the discovery document come from `origin` only.

use std::time::{Duration, Instant};

use iam_e2e::{Answer, Db};

use crate::signin::{CLIENT_ID, Ctx};

/// bob's password grant, with one more request header.
async fn bob_with(c: &Ctx, header: &str, value: &str) -> anyhow::Result<Answer> {
    c.rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/oauth/token"))
                .header(header, value)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", CLIENT_ID),
                    ("username", "bob"),
                    ("password", "bob-pw"),
                ]),
        )
        .await
}

async fn token_from(c: &Ctx, forwarded_for: &str) -> anyhow::Result<u16> {
    Ok(bob_with(c, "x-forwarded-for", forwarded_for).await?.status)
}

/// The client address of bob's newest password sign-in record.
async fn recorded_ip(c: &Ctx, admin: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let a = c
            .get(
                "/api/get-records?owner=demo&user=bob&action=signin-password",
                admin,
            )
            .await?;
        let v = a.json();
        if let Some(ip) = v["data"][0]["clientIp"].as_str() {
            return Ok(ip.to_owned());
        }
        anyhow::ensure!(Instant::now() < deadline, "no record: {}", a.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_spoofed_header_from_an_untrusted_peer_changes_nothing() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[("tokenRateLimitPerIp", "2")]).await?;
    let admin = c.password_token("demo-admin", "demo-admin-pw").await?;
    // A fresh address in every header: still one client, 127.0.0.1, and its limit.
    let mut limited = false;
    for n in 0..20 {
        if token_from(&c, &format!("198.51.100.{n}")).await? == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the header did not lift the per-address limit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(token_from(&c, "203.0.113.7").await?, 200);
    assert_eq!(recorded_ip(&c, &admin).await?, "127.0.0.1");
    Ok(())
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client() -> anyhow::Result<()> {
    let c = Ctx::start(
        Db::sqlite()?,
        &[
            ("trustedProxies", "127.0.0.1/32"),
            ("tokenRateLimitPerIp", "2"),
        ],
    )
    .await?;
    let admin = c.password_token("demo-admin", "demo-admin-pw").await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(token_from(&c, "203.0.113.7").await?, 200);
    assert_eq!(recorded_ip(&c, &admin).await?, "203.0.113.7");
    // Each forwarded client has its own limit: one exhausted, another still answered.
    let mut limited = false;
    for _ in 0..20 {
        if token_from(&c, "203.0.113.8").await? == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited);
    assert_eq!(
        token_from(&c, "203.0.113.9").await?,
        200,
        "another client behind the proxy"
    );
    Ok(())
}

#[tokio::test]
async fn guessing_client_secrets_is_limited_like_the_token_endpoint() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[("tokenRateLimitPerIp", "2")]).await?;
    let mut answers = Vec::new();
    for n in 0..20 {
        let a = c
            .rec
            .send(c.rec.http.get(c.iam.url(&format!(
                "/api/get-users?owner=demo&clientId={CLIENT_ID}&clientSecret=guess-{n}"
            ))))
            .await?;
        answers.push(a.status);
        if a.status == 429 {
            assert!(a.header("retry-after").is_some(), "{}", a.text);
            assert_eq!(a.json()["status"], "error");
            break;
        }
    }
    assert_eq!(answers.first(), Some(&401));
    assert_eq!(answers.last(), Some(&429), "{answers:?}");
    Ok(())
}

#[tokio::test]
async fn metrics_can_be_served_on_their_own_address() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let c = Ctx::start(Db::sqlite()?, &[("metricsAddr", addr.as_str())]).await?;
    let beside = reqwest::get(c.iam.url("/metrics")).await?;
    assert_eq!(beside.status(), 404, "not beside the API any more");
    let own = reqwest::get(format!("http://{addr}/metrics")).await?;
    assert_eq!(own.status(), 200);
    assert!(own.text().await?.contains("iam_"), "the node's metrics");
    Ok(())
}

#[tokio::test]
async fn the_host_header_never_names_the_issuer() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[]).await?;
    // The harness configures `origin` as the node's own address, so that is the issuer.
    let origin = c.iam.base.clone();
    let discovery = c
        .rec
        .send(
            c.rec
                .http
                .get(c.iam.url("/.well-known/openid-configuration"))
                .header("host", "evil.example"),
        )
        .await?;
    assert_eq!(discovery.status, 200, "{}", discovery.text);
    let d = discovery.json();
    assert_eq!(d["issuer"], origin.as_str());
    assert_eq!(d["jwks_uri"], format!("{origin}/.well-known/jwks").as_str());
    let a = bob_with(&c, "host", "evil.example").await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let token = a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(iam_e2e::claims(&token)?["iss"], origin.as_str());
    // And the token works whatever Host the next request names.
    let me = c
        .rec
        .send(
            c.rec
                .http
                .get(c.iam.url("/api/userinfo"))
                .header("host", "other.example")
                .bearer_auth(&token),
        )
        .await?;
    assert_eq!(me.status, 200, "{}", me.text);
    Ok(())
}
