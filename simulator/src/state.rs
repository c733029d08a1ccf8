//! The simulator's world: apps, users, codes, tokens, faults, a clock that tests can move, and
//! call statistics. Everything is in memory; codes older than their lifetime are swept.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use dashmap::DashMap;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

pub const CODE_LIFETIME_SECS: i64 = 300;
pub const TOKEN_LIFETIME_SECS: i64 = 7200;
pub const TOKEN_OVERLAP_SECS: i64 = 300;

pub const DEFAULT_APPID: &str = "wx5f3c1b2a9d8e7f60";
pub const DEFAULT_SECRET: &str = "0c6d2a1b9e8f7d6c5b4a39281706f5e4";

#[derive(Debug, Clone)]
pub struct App {
    pub secret: String,
    pub open_platform_id: Option<String>,
}

#[derive(Debug)]
pub struct Code {
    pub appid: String,
    pub user: String,
    pub minted_at: i64,
    pub used: bool,
}

#[derive(Debug)]
pub struct PhoneCode {
    pub appid: String,
    /// The user who pressed the button: the code is refused for anyone else's openid.
    pub user: String,
    pub phone: String,
    pub country_code: String,
    pub minted_at: i64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct SessionKey {
    pub key: String,
    pub rotated_at: i64,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub appid: String,
    pub expires_at: i64,
    /// A newer token replaced this one: past its (shortened) expiry it is "not latest" (40001)
    /// rather than "expired" (42001).
    pub superseded: bool,
}

/// A fault armed through `POST /sim/faults`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fault {
    /// Which API (`jscode2session`, `token`, `stable_token`, `getuserphonenumber`,
    /// `checksession`); absent: any.
    pub api: Option<String>,
    pub errcode: Option<i64>,
    /// How many calls it applies to; absent: until `DELETE /sim/faults`.
    pub count: Option<u64>,
    pub latency_ms: Option<u64>,
    pub http_status: Option<u16>,
    pub malformed: Option<bool>,
    /// The share of matching calls it applies to, 0-100 (default 100).
    pub percent: Option<f64>,
}

/// What a fault does to one call.
#[derive(Debug, Clone, Default)]
pub struct FaultHit {
    pub errcode: Option<i64>,
    pub latency_ms: Option<u64>,
    pub http_status: Option<u16>,
    pub malformed: bool,
}

pub struct Sim {
    pub apps: DashMap<String, App>,
    /// Seconds added to the real clock by `POST /sim/clock`.
    clock_offset: AtomicI64,
    pub codes: DashMap<String, Code>,
    pub phone_codes: DashMap<String, PhoneCode>,
    /// (appid, user) → current session key.
    pub session_keys: DashMap<(String, String), SessionKey>,
    /// (appid, openid) → user, for APIs that name users by openid.
    pub openid_users: DashMap<(String, String), String>,
    pub risky: DashMap<(String, String), ()>,
    /// access token → who and until when (both /cgi-bin/token and stable tokens).
    pub tokens: DashMap<String, AccessToken>,
    /// appid → the latest /cgi-bin/token token.
    pub latest_token: DashMap<String, String>,
    /// appid → the current stable token.
    pub stable_token: DashMap<String, String>,
    pub faults: Mutex<Vec<Fault>>,
    pub calls: DashMap<String, AtomicU64>,
    pub errcodes: DashMap<(String, i64), AtomicU64>,
    pub session_key_min_age: i64,
    pub jscode2session_content_type: String,
}

/// The alphabet of openids after the leading `o`.
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `o` + 27 characters derived from `parts`: stable across runs, distinct per input.
fn derived_id(domain: &str, parts: &[&str]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, domain.as_bytes());
    let tag = hmac::sign(&key, parts.join("\n").as_bytes());
    let mut id = String::with_capacity(28);
    id.push('o');
    for b in tag.as_ref().iter().take(27) {
        id.push(ID_ALPHABET[(*b as usize) % ID_ALPHABET.len()] as char);
    }
    id
}

pub fn random_session_key() -> String {
    let mut k = [0u8; 16];
    rand::rng().fill_bytes(&mut k);
    base64::engine::general_purpose::STANDARD.encode(k)
}

impl Sim {
    pub fn new(session_key_min_age: i64, jscode2session_content_type: String) -> Self {
        Self {
            apps: DashMap::new(),
            clock_offset: AtomicI64::new(0),
            codes: DashMap::new(),
            phone_codes: DashMap::new(),
            session_keys: DashMap::new(),
            openid_users: DashMap::new(),
            risky: DashMap::new(),
            tokens: DashMap::new(),
            latest_token: DashMap::new(),
            stable_token: DashMap::new(),
            faults: Mutex::new(Vec::new()),
            calls: DashMap::new(),
            errcodes: DashMap::new(),
            session_key_min_age,
            jscode2session_content_type,
        }
    }

    /// The simulator's clock: real time plus the offset tests have added.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.clock_offset.load(Ordering::Relaxed)
    }

    pub fn advance(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// `, rid: %08x-%08x-%08x` with the first group the Unix time, as WeChat does.
    pub fn rid(&self) -> String {
        let mut rng = rand::rng();
        format!(
            "{:08x}-{:08x}-{:08x}",
            self.now() as u32,
            rng.random::<u32>(),
            rng.random::<u32>()
        )
    }

    pub fn add_app(&self, appid: &str, secret: &str, open_platform_id: Option<String>) {
        self.apps.insert(
            appid.to_owned(),
            App {
                secret: secret.to_owned(),
                open_platform_id,
            },
        );
    }

    pub fn openid(&self, appid: &str, user: &str) -> String {
        derived_id("wechat-sim openid", &[appid, user])
    }

    pub fn unionid(&self, appid: &str, user: &str) -> Option<String> {
        let app = self.apps.get(appid)?;
        let platform = app.open_platform_id.clone()?;
        Some(derived_id("wechat-sim unionid", &[&platform, user]))
    }

    /// What `wx.login()` does on the phone: mint a code, and rotate the user's session key unless
    /// it was rotated less than `session_key_min_age` seconds ago.
    pub fn login(&self, appid: &str, user: &str) -> String {
        let now = self.now();
        let key = (appid.to_owned(), user.to_owned());
        let mut entry = self.session_keys.entry(key).or_insert_with(|| SessionKey {
            key: random_session_key(),
            rotated_at: now,
        });
        if now - entry.rotated_at >= self.session_key_min_age {
            entry.key = random_session_key();
            entry.rotated_at = now;
        }
        drop(entry);
        self.openid_users.insert(
            (appid.to_owned(), self.openid(appid, user)),
            user.to_owned(),
        );
        let code = random_code();
        self.codes.insert(
            code.clone(),
            Code {
                appid: appid.to_owned(),
                user: user.to_owned(),
                minted_at: now,
                used: false,
            },
        );
        code
    }

    /// WeChat's `resetusersessionkey`: a fresh key for the user, at once.
    pub fn reset_session_key(&self, appid: &str, user: &str) -> String {
        let key = random_session_key();
        self.set_session_key(appid, user, &key);
        key
    }

    /// Makes `key` the user's current session key, rotated now.
    pub fn set_session_key(&self, appid: &str, user: &str, key: &str) {
        self.session_keys.insert(
            (appid.to_owned(), user.to_owned()),
            SessionKey {
                key: key.to_owned(),
                rotated_at: self.now(),
            },
        );
        self.openid_users.insert(
            (appid.to_owned(), self.openid(appid, user)),
            user.to_owned(),
        );
    }

    pub fn session_key(&self, appid: &str, user: &str) -> Option<String> {
        self.session_keys
            .get(&(appid.to_owned(), user.to_owned()))
            .map(|k| k.key.clone())
    }

    pub fn count_call(&self, api: &str) {
        if let Some(c) = self.calls.get(api) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.calls
            .entry(api.to_owned())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_errcode(&self, api: &str, errcode: i64) {
        self.errcodes
            .entry((api.to_owned(), errcode))
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The fault that applies to this call of `api`, if any; consumes one of its count.
    pub fn take_fault(&self, api: &str) -> Option<FaultHit> {
        let mut faults = self.faults.lock().ok()?;
        let idx = faults.iter().position(|f| {
            f.api.as_deref().is_none_or(|a| a == api) && f.count.is_none_or(|c| c > 0)
        })?;
        let f = &mut faults[idx];
        if let Some(p) = f.percent
            && rand::rng().random::<f64>() * 100.0 >= p
        {
            return None;
        }
        let hit = FaultHit {
            errcode: f.errcode,
            latency_ms: f.latency_ms,
            http_status: f.http_status,
            malformed: f.malformed.unwrap_or(false),
        };
        if let Some(c) = f.count.as_mut() {
            *c -= 1;
            if *c == 0 {
                faults.remove(idx);
            }
        }
        Some(hit)
    }

    /// Drops codes nobody can use any more, so a long load run does not grow without bound.
    pub fn sweep(&self) {
        let cutoff = self.now() - CODE_LIFETIME_SECS - 60;
        self.codes.retain(|_, c| c.minted_at > cutoff);
        self.phone_codes.retain(|_, c| c.minted_at > cutoff);
        let now = self.now();
        self.tokens.retain(|_, t| t.expires_at > now - 60);
    }

    pub fn issue_token(&self, appid: &str, lifetime: i64) -> String {
        let token = random_token();
        self.tokens.insert(
            token.clone(),
            AccessToken {
                appid: appid.to_owned(),
                expires_at: self.now() + lifetime,
                superseded: false,
            },
        );
        token
    }

    pub fn stats(&self) -> serde_json::Value {
        let calls: HashMap<String, u64> = self
            .calls
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        let mut errcodes: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for e in self.errcodes.iter() {
            errcodes
                .entry(e.key().0.clone())
                .or_default()
                .insert(e.key().1.to_string(), e.value().load(Ordering::Relaxed));
        }
        let apps: HashSet<String> = self.apps.iter().map(|a| a.key().clone()).collect();
        serde_json::json!({
            "calls": calls,
            "errcodes": errcodes,
            "apps": apps,
            "codesOutstanding": self.codes.len(),
            "now": self.now(),
        })
    }
}

/// AES-128-CBC with PKCS#7 under a base64 session key and a random iv, as WeChat seals
/// `encryptedData`; both come back base64.
pub fn encrypt(session_key: &str, plain: &[u8]) -> Result<(String, String), String> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(session_key)
        .map_err(|e| format!("session key is not base64: {e}"))?;
    let mut iv = [0u8; 16];
    rand::rng().fill_bytes(&mut iv);
    let enc = cbc::Encryptor::<aes::Aes128>::new_from_slices(&key, &iv)
        .map_err(|e| format!("session key: {e}"))?;
    let ct = enc.encrypt_padded_vec_mut::<Pkcs7>(plain);
    Ok((b64.encode(ct), b64.encode(iv)))
}

/// A login code: 32 characters of `[0-9A-Za-z]` starting with `0`.
pub fn random_code() -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(32);
    s.push('0');
    for _ in 0..31 {
        s.push(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char);
    }
    s
}

/// `<n>_` + 136 characters of `[A-Za-z0-9_-]`, like real access tokens.
pub fn random_token() -> String {
    let mut rng = rand::rng();
    let mut s = String::from("86_");
    for _ in 0..136 {
        s.push(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char);
    }
    s
}

/// 64 lowercase hex, like the phone-number button's code.
pub fn random_phone_code() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// WeChat's message for an errcode (before the rid suffix).
pub fn errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40002 => "invalid grant_type",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40125 => "invalid appsecret",
        40163 => "code been used",
        40164 => "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
        40226 => "code blocked",
        41001 => "access_token missing",
        41002 => "appid missing",
        41004 => "appsecret missing",
        41008 => "missing code",
        42001 => "access_token expired",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit, must slower, retry next minute",
        47001 => "data format error",
        87008 => "invalid sig_method",
        87009 => "invalid signature",
        40003 => "invalid openid",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_formats() {
        let sim = Sim::new(60, "text/plain".into());
        sim.add_app(DEFAULT_APPID, DEFAULT_SECRET, Some("platform".into()));
        let openid = sim.openid(DEFAULT_APPID, "alice");
        assert_eq!(openid.len(), 28);
        assert!(openid.starts_with('o'));
        assert!(openid[1..].bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert_eq!(openid, sim.openid(DEFAULT_APPID, "alice"), "stable");
        assert_ne!(
            openid,
            sim.openid("wx0000000000000000", "alice"),
            "per appid"
        );
        assert_eq!(
            sim.unionid(DEFAULT_APPID, "alice").map(|u| u.len()),
            Some(28)
        );
        let code = random_code();
        assert_eq!(code.len(), 32);
        assert!(code.starts_with('0') && code.bytes().all(|b| b.is_ascii_alphanumeric()));
        let key = base64::engine::general_purpose::STANDARD
            .decode(random_session_key())
            .unwrap();
        assert_eq!(key.len(), 16);
        let rid = sim.rid();
        let groups: Vec<&str> = rid.split('-').collect();
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.len() == 8));
        assert_eq!(
            i64::from_str_radix(groups[0], 16).unwrap(),
            sim.now() & 0xffff_ffff
        );
    }

    #[test]
    fn session_keys_rotate_at_most_every_min_age() {
        let sim = Sim::new(60, "text/plain".into());
        sim.add_app("wx1", "s", None);
        sim.login("wx1", "bob");
        let k1 = sim.session_key("wx1", "bob").unwrap();
        sim.login("wx1", "bob");
        assert_eq!(
            sim.session_key("wx1", "bob").unwrap(),
            k1,
            "not rotated within 60 s"
        );
        sim.advance(61);
        sim.login("wx1", "bob");
        assert_ne!(
            sim.session_key("wx1", "bob").unwrap(),
            k1,
            "rotated after 60 s"
        );
    }

    #[test]
    fn faults_are_counted_and_scoped() {
        let sim = Sim::new(60, "text/plain".into());
        sim.faults.lock().unwrap().push(Fault {
            api: Some("jscode2session".into()),
            errcode: Some(-1),
            count: Some(2),
            ..Fault::default()
        });
        assert!(sim.take_fault("token").is_none(), "other APIs unaffected");
        assert_eq!(sim.take_fault("jscode2session").unwrap().errcode, Some(-1));
        assert!(sim.take_fault("jscode2session").is_some());
        assert!(
            sim.take_fault("jscode2session").is_none(),
            "count exhausted"
        );
    }
}
