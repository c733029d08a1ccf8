//! `conf/app.conf`: Beego-style INI as Casdoor reads it (SPEC §2).
//!
//! `key = value` lines, `#`/`;` comments, `[section]` headers ignored, keys case-insensitive,
//! quotes trimmed, `${ENV||default}` expanded; an environment variable named exactly like a key
//! overrides the file. Any bad line or value is an error naming the file, the line and the key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iam_domain::Secret;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{file}:{line}: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: key {key}: {message}")]
    Value {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("environment variable {key}: {message}")]
    Env { key: String, message: String },
    #[error("cannot read {file}: {message}")]
    Read { file: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Dev,
    Prod,
}

/// The configuration the server runs with, every key of SPEC §2 with its default.
#[derive(Debug, Clone)]
pub struct Config {
    pub origin: String,
    pub http_addr: String,
    pub http_port: u16,
    pub run_mode: RunMode,
    pub driver_name: String,
    pub data_source_name: String,
    pub init_data_file: PathBuf,
    pub init_data_new_only: bool,
    pub wechat_api_base: String,
    pub wechat_timeout_ms: u64,
    pub token_rate_limit_per_ip: u32,
    /// AES-256 key for session keys at rest: 64 hex characters or base64 of 32 bytes.
    pub session_key_encryption_key: Option<Secret>,
    /// Where a generated session key encryption key is kept in `dev` when none is configured.
    pub session_key_file: PathBuf,
    pub db_pool_size: u32,
    /// Serves `POST /bench/sign` for the load tool's ceiling measurement.
    pub bench_endpoints: bool,
    /// How often the background purge deletes expired sessions, refresh tokens and revocations.
    pub purge_interval_seconds: u64,
    /// How long audit records are kept (SPEC §10).
    pub audit_retention_days: u32,
    /// How many audit records may wait for the writer; beyond it they are dropped and counted.
    pub audit_queue_size: usize,
    /// The most users `get-users` answers without `p` (Casdoor answers them all).
    pub user_list_max: u64,
    /// Console sign-in attempts one address may make a minute (SPEC §11).
    pub console_signin_limit_per_minute: u32,
    /// Password hashes (argon2, ~19 MB each) that may run at once; 0: one per core.
    pub password_hash_concurrency: usize,
    /// How long a password check waits for a free slot before answering 503.
    pub password_hash_wait_ms: u64,
    /// Where `/metrics` is served instead of beside the API (`host:port`); empty: beside it.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Whose X-Forwarded-For / X-Real-IP is believed.
    pub trusted_proxies: iam_domain::network::TrustedProxies,
    /// Open connections one client address may hold.
    pub max_connections_per_address: usize,
    /// Open connections in all; 0: the descriptor limit less a reserve.
    pub max_connections: usize,
    /// From a request's first byte to the end of its header.
    pub header_timeout_ms: u64,
    /// From the header's end to the body's.
    pub body_timeout_ms: u64,
    /// A connection with no byte in either direction this long is closed (keep-alive idle).
    pub idle_timeout_secs: u64,
    /// The file this came from, for messages.
    pub source: String,
    /// Things worth telling the operator once logging is up (an unknown key, and its nearest
    /// known spelling).
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            origin: String::new(),
            http_addr: "0.0.0.0".into(),
            http_port: 8000,
            run_mode: RunMode::Dev,
            driver_name: "sqlite".into(),
            data_source_name: "data/iam.db".into(),
            init_data_file: PathBuf::from("conf/init_data.json"),
            init_data_new_only: true,
            wechat_api_base: "https://api.weixin.qq.com".into(),
            wechat_timeout_ms: 5000,
            token_rate_limit_per_ip: 50,
            session_key_encryption_key: None,
            session_key_file: PathBuf::from("data/session-key.secret"),
            db_pool_size: 16,
            bench_endpoints: false,
            purge_interval_seconds: 60,
            audit_retention_days: 90,
            audit_queue_size: 10_000,
            user_list_max: 1000,
            console_signin_limit_per_minute: 10,
            password_hash_concurrency: 0,
            password_hash_wait_ms: 2000,
            metrics_addr: None,
            trusted_proxies: iam_domain::network::TrustedProxies::default(),
            max_connections_per_address: 256,
            max_connections: 0,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_secs: 60,
            source: "(defaults)".into(),
            warnings: Vec::new(),
        }
    }
}

/// Every key we know, spelled as in the docs: the spelling an environment override must use.
const KEYS: &[&str] = &[
    "origin",
    "httpaddr",
    "httpport",
    "runmode",
    "driverName",
    "dataSourceName",
    "initDataFile",
    "initDataNewOnly",
    "wechatApiBase",
    "wechatTimeoutMs",
    "tokenRateLimitPerIp",
    "sessionKeyEncryptionKey",
    "sessionKeyFile",
    "dbPoolSize",
    "benchEndpoints",
    "purgeIntervalSeconds",
    "auditRetentionDays",
    "auditQueueSize",
    "userListMax",
    "consoleSigninLimitPerMinute",
    "passwordHashConcurrency",
    "passwordHashWaitMs",
    "trustedProxies",
    "metricsAddr",
    "maxConnectionsPerAddress",
    "maxConnections",
    "headerTimeoutMs",
    "bodyTimeoutMs",
    "idleTimeoutSecs",
];

/// Keys of Casdoor's own app.conf that this server does not use: a Casdoor file works here, so
/// they are accepted without a word.
const CASDOOR_KEYS: &[&str] = &[
    "appname",
    "copyrequestbody",
    "dbName",
    "tableNamePrefix",
    "showSql",
    "redisEndpoint",
    "defaultStorageProvider",
    "isCloudIntranet",
    "authState",
    "socks5Proxy",
    "verificationCodeTimeout",
    "initScore",
    "logPostOnly",
    "isUsernameLowered",
    "staticBaseUrl",
    "isDemoMode",
    "batchSize",
    "enableErrorMask",
    "enableGzip",
    "inactiveTimeoutMinutes",
    "ldapServerPort",
    "ldapsCertId",
    "ldapsServerPort",
    "radiusServerPort",
    "radiusDefaultOrganization",
    "radiusSecret",
    "quota",
    "logConfig",
    "frontendBaseDir",
    "sessionConfig",
];

/// The known key nearest to a misspelt one (edit distance, case-insensitive), if any is close.
fn nearest_key(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (edit_distance(&key, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Where a value came from, so an error can point at it.
#[derive(Debug, Clone)]
enum Origin {
    Line(usize),
    Env,
}

struct Raw {
    file: String,
    values: HashMap<String, (String, Origin)>,
    /// Keys of the file we do not know: (line, key as written).
    unknown: Vec<(usize, String)>,
}

impl Raw {
    fn err(&self, key: &str, origin: &Origin, message: String) -> ConfigError {
        match origin {
            Origin::Line(line) => ConfigError::Value {
                file: self.file.clone(),
                line: *line,
                key: key.to_owned(),
                message,
            },
            Origin::Env => ConfigError::Env {
                key: key.to_owned(),
                message,
            },
        }
    }

    fn get(&self, key: &str) -> Option<&(String, Origin)> {
        self.values.get(&key.to_ascii_lowercase())
    }

    fn string(&self, key: &str, into: &mut String) {
        if let Some((v, _)) = self.get(key) {
            *into = v.clone();
        }
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        key: &str,
        into: &mut T,
        what: &str,
    ) -> Result<(), ConfigError> {
        if let Some((v, origin)) = self.get(key) {
            *into = v
                .trim()
                .parse()
                .map_err(|_| self.err(key, origin, format!("{v:?} is not {what}")))?;
        }
        Ok(())
    }

    fn boolean(&self, key: &str, into: &mut bool) -> Result<(), ConfigError> {
        if let Some((v, origin)) = self.get(key) {
            *into = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(self.err(key, origin, format!("{v:?} is not true or false"))),
            };
        }
        Ok(())
    }
}

/// Expands every `${NAME||default}` (or `${NAME}`) in `value`.
fn expand(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unclosed ${ in value".to_owned())?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once("||") {
            Some((n, d)) => (n.trim(), d),
            None => (inner.trim(), ""),
        };
        if name.is_empty() {
            return Err("empty variable name in ${}".into());
        }
        out.push_str(
            &env(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned()),
        );
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn parse_text(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Raw, ConfigError> {
    let mut values = HashMap::new();
    let mut unknown = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            if !t.ends_with(']') {
                return Err(ConfigError::Line {
                    file: file.into(),
                    line: n,
                    message: format!("unclosed section header {t:?}"),
                });
            }
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            return Err(ConfigError::Line {
                file: file.into(),
                line: n,
                message: format!("expected `key = value`, found {t:?}"),
            });
        };
        let key = k.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ConfigError::Line {
                file: file.into(),
                line: n,
                message: format!("bad key {key:?}"),
            });
        }
        let value = expand(unquote(v.trim()), env).map_err(|message| ConfigError::Value {
            file: file.into(),
            line: n,
            key: key.into(),
            message,
        })?;
        if !KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
            && !CASDOOR_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
        {
            unknown.push((n, key.to_owned()));
        }
        values.insert(key.to_ascii_lowercase(), (value, Origin::Line(n)));
    }
    for key in KEYS {
        if let Some(v) = env(key) {
            values.insert(key.to_ascii_lowercase(), (v, Origin::Env));
        }
    }
    Ok(Raw {
        file: file.into(),
        values,
        unknown,
    })
}

impl Config {
    /// Reads `path`. A missing file is an error only when it was asked for explicitly.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(e) => {
                return Err(ConfigError::Read {
                    file,
                    message: e.to_string(),
                });
            }
        };
        Self::from_text(&file, &text, &|k| std::env::var(k).ok())
    }

    pub fn from_text(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw = parse_text(file, text, env)?;
        // A relative path written in the file means a path beside the file, wherever the server
        // was started from; defaults and environment overrides are relative to the working
        // directory.
        let dir = Path::new(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let beside = |key: &str, value: &str| -> PathBuf {
            let p = PathBuf::from(value);
            match raw.get(key) {
                Some((_, Origin::Line(_))) if p.is_relative() => dir.join(p),
                _ => p,
            }
        };
        let mut c = Config {
            source: file.into(),
            ..Config::default()
        };
        raw.string("origin", &mut c.origin);
        c.origin = c.origin.trim_end_matches('/').to_owned();
        if let Some((_, origin)) = raw.get("origin")
            && !c.origin.is_empty()
        {
            let rest = c
                .origin
                .strip_prefix("https://")
                .or_else(|| c.origin.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['/', '?', '#', ' '])) {
                return Err(raw.err(
                    "origin",
                    origin,
                    format!(
                        "{:?} is not an http(s) origin such as https://iam.example.com \
                         (no path)",
                        c.origin
                    ),
                ));
            }
        }
        raw.string("httpaddr", &mut c.http_addr);
        raw.parsed("httpport", &mut c.http_port, "a port number (0-65535)")?;
        if let Some((v, origin)) = raw.get("runmode") {
            c.run_mode = match v.trim() {
                "dev" | "" => RunMode::Dev,
                "prod" => RunMode::Prod,
                other => {
                    return Err(raw.err(
                        "runmode",
                        origin,
                        format!("{other:?} is not dev or prod"),
                    ));
                }
            };
        }
        if let Some((v, origin)) = raw.get("driverName") {
            let d = v.trim().to_ascii_lowercase();
            if !matches!(d.as_str(), "sqlite" | "sqlite3" | "postgres" | "postgresql") {
                return Err(raw.err(
                    "driverName",
                    origin,
                    format!("{v:?} is not sqlite or postgres"),
                ));
            }
            c.driver_name = d;
        }
        raw.string("dataSourceName", &mut c.data_source_name);
        if !c.data_source_name.contains("://") {
            c.data_source_name = beside("dataSourceName", &c.data_source_name)
                .display()
                .to_string();
        }
        if let Some((v, _)) = raw.get("initDataFile") {
            c.init_data_file = beside("initDataFile", v);
        }
        raw.boolean("initDataNewOnly", &mut c.init_data_new_only)?;
        raw.string("wechatApiBase", &mut c.wechat_api_base);
        c.wechat_api_base = c.wechat_api_base.trim_end_matches('/').to_owned();
        if let Some((v, origin)) = raw.get("wechatApiBase")
            && !(v.starts_with("http://") || v.starts_with("https://"))
        {
            return Err(raw.err(
                "wechatApiBase",
                origin,
                format!("{v:?} is not an http(s) URL"),
            ));
        }
        raw.parsed(
            "wechatTimeoutMs",
            &mut c.wechat_timeout_ms,
            "a number of milliseconds",
        )?;
        if c.wechat_timeout_ms == 0
            && let Some((_, origin)) = raw.get("wechatTimeoutMs")
        {
            return Err(raw.err("wechatTimeoutMs", origin, "must be greater than 0".into()));
        }
        raw.parsed(
            "tokenRateLimitPerIp",
            &mut c.token_rate_limit_per_ip,
            "a whole number",
        )?;
        if let Some((v, _)) = raw.get("sessionKeyEncryptionKey")
            && !v.trim().is_empty()
        {
            c.session_key_encryption_key = Some(Secret::new(v.trim()));
        }
        if let Some((v, _)) = raw.get("sessionKeyFile") {
            c.session_key_file = beside("sessionKeyFile", v);
        }
        raw.parsed("dbPoolSize", &mut c.db_pool_size, "a whole number")?;
        raw.boolean("benchEndpoints", &mut c.bench_endpoints)?;
        raw.parsed(
            "purgeIntervalSeconds",
            &mut c.purge_interval_seconds,
            "a whole number of seconds",
        )?;
        raw.parsed(
            "auditRetentionDays",
            &mut c.audit_retention_days,
            "a whole number of days",
        )?;
        raw.parsed(
            "auditQueueSize",
            &mut c.audit_queue_size,
            "a whole number of records",
        )?;
        raw.parsed(
            "userListMax",
            &mut c.user_list_max,
            "a whole number of users",
        )?;
        if c.user_list_max == 0 {
            c.user_list_max = 1;
        }
        raw.parsed(
            "passwordHashConcurrency",
            &mut c.password_hash_concurrency,
            "a whole number of hashes (0: one per core)",
        )?;
        raw.parsed(
            "passwordHashWaitMs",
            &mut c.password_hash_wait_ms,
            "a number of milliseconds",
        )?;
        if let Some((v, origin)) = raw.get("metricsAddr")
            && !v.trim().is_empty()
        {
            c.metrics_addr = Some(v.trim().parse().map_err(|_| {
                raw.err(
                    "metricsAddr",
                    origin,
                    format!("{v:?} is not an address and port (127.0.0.1:9100)"),
                )
            })?);
        }
        if let Some((v, origin)) = raw.get("trustedProxies") {
            c.trusted_proxies = iam_domain::network::TrustedProxies::parse(v)
                .map_err(|e| raw.err("trustedProxies", origin, e.reason))?;
        }
        raw.parsed(
            "maxConnectionsPerAddress",
            &mut c.max_connections_per_address,
            "a whole number of connections",
        )?;
        raw.parsed(
            "maxConnections",
            &mut c.max_connections,
            "a whole number of connections (0: the descriptor limit less a reserve)",
        )?;
        raw.parsed(
            "headerTimeoutMs",
            &mut c.header_timeout_ms,
            "a number of milliseconds",
        )?;
        raw.parsed(
            "bodyTimeoutMs",
            &mut c.body_timeout_ms,
            "a number of milliseconds",
        )?;
        raw.parsed(
            "idleTimeoutSecs",
            &mut c.idle_timeout_secs,
            "a whole number of seconds",
        )?;
        for (key, zero) in [
            (
                "maxConnectionsPerAddress",
                c.max_connections_per_address == 0,
            ),
            ("headerTimeoutMs", c.header_timeout_ms == 0),
            ("bodyTimeoutMs", c.body_timeout_ms == 0),
            ("idleTimeoutSecs", c.idle_timeout_secs == 0),
        ] {
            if zero && let Some((_, origin)) = raw.get(key) {
                return Err(raw.err(key, origin, "must be greater than 0".into()));
            }
        }
        raw.parsed(
            "consoleSigninLimitPerMinute",
            &mut c.console_signin_limit_per_minute,
            "a whole number of attempts",
        )?;
        if c.console_signin_limit_per_minute == 0
            && let Some((_, origin)) = raw.get("consoleSigninLimitPerMinute")
        {
            return Err(raw.err(
                "consoleSigninLimitPerMinute",
                origin,
                "must be greater than 0".into(),
            ));
        }
        if c.purge_interval_seconds == 0
            && let Some((_, origin)) = raw.get("purgeIntervalSeconds")
        {
            return Err(raw.err(
                "purgeIntervalSeconds",
                origin,
                "must be greater than 0".into(),
            ));
        }
        if c.db_pool_size == 0 {
            c.db_pool_size = 1;
        }
        for (line, key) in &raw.unknown {
            let hint = nearest_key(key)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            let message = format!("unknown key {key}{hint}; it is ignored");
            if c.run_mode == RunMode::Prod {
                return Err(ConfigError::Value {
                    file: file.into(),
                    line: *line,
                    key: key.clone(),
                    message: format!("unknown key{hint}: a misspelt key would be ignored"),
                });
            }
            c.warnings.push(format!("{file}:{line}: {message}"));
        }
        if c.run_mode == RunMode::Prod
            && c.origin.is_empty()
            && let Some((_, origin)) = raw.get("runmode")
        {
            return Err(raw.err(
                "origin",
                origin,
                "is empty while runmode = prod: set the public URL tokens are issued by \
                 (origin = https://iam.example.com); a request's Host header is never trusted"
                    .into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn prod_needs_an_origin_and_an_origin_is_a_url() {
        let err = Config::from_text("c", "runmode = prod\n", &no_env).unwrap_err();
        assert!(err.to_string().contains("key origin"), "{err}");
        let c = Config::from_text(
            "c",
            "runmode = prod\norigin = https://iam.example.com\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(c.origin, "https://iam.example.com");
        for bad in [
            "iam.example.com",
            "https://",
            "https://a.example/path",
            "ftp://a.example",
        ] {
            let err = Config::from_text("c", &format!("origin = {bad}\n"), &no_env).unwrap_err();
            assert!(err.to_string().contains("key origin"), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults_when_empty() {
        let c = Config::from_text("app.conf", "", &no_env).unwrap();
        assert_eq!(c.http_port, 8000);
        assert_eq!(c.driver_name, "sqlite");
        assert_eq!(c.data_source_name, "data/iam.db");
        assert_eq!(c.wechat_api_base, "https://api.weixin.qq.com");
        assert_eq!(c.wechat_timeout_ms, 5000);
        assert_eq!(c.token_rate_limit_per_ip, 50);
        assert!(c.init_data_new_only);
        assert_eq!(c.run_mode, RunMode::Dev);
    }

    #[test]
    fn keys_are_case_insensitive_quotes_trimmed_comments_skipped() {
        let text = "# comment\n; another\n[section]\nHTTPPORT = 9001\ndrivername = \"postgres\"\n\
                    datasourcename='postgres://u@h/db'\norigin = https://iam.example.com/\n";
        let c = Config::from_text("app.conf", text, &no_env).unwrap();
        assert_eq!(c.http_port, 9001);
        assert_eq!(c.driver_name, "postgres");
        assert_eq!(c.data_source_name, "postgres://u@h/db");
        assert_eq!(c.origin, "https://iam.example.com");
    }

    #[test]
    fn env_expansion_and_override() {
        let env = |k: &str| match k {
            "DB_URL" => Some("postgres://x@y/z".to_owned()),
            "httpport" => Some("7000".to_owned()),
            _ => None,
        };
        let text = "dataSourceName = ${DB_URL||data/x.db}\ninitDataFile = ${MISSING||conf/seed.json}\nhttpport = 1\n";
        let c = Config::from_text("app.conf", text, &env).unwrap();
        assert_eq!(c.data_source_name, "postgres://x@y/z");
        assert_eq!(c.init_data_file, PathBuf::from("conf/seed.json"));
        assert_eq!(c.http_port, 7000, "the environment wins");
        // Only the exact spelling overrides.
        let env = |k: &str| (k == "HTTPPORT").then(|| "7000".to_owned());
        assert_eq!(Config::from_text("f", "", &env).unwrap().http_port, 8000);
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let err =
            Config::from_text("conf/app.conf", "origin=\n\nhttpport = abc\n", &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conf/app.conf:3: key httpport: \"abc\" is not a port number (0-65535)"
        );
        let err = Config::from_text("c", "just words\n", &no_env).unwrap_err();
        assert!(
            err.to_string().starts_with("c:1: expected `key = value`"),
            "{err}"
        );
        let err = Config::from_text("c", "runmode = staging", &no_env).unwrap_err();
        assert!(err.to_string().contains("key runmode"), "{err}");
        let err = Config::from_text("c", "initDataNewOnly = maybe", &no_env).unwrap_err();
        assert!(err.to_string().contains("key initDataNewOnly"), "{err}");
        let err = Config::from_text("c", "driverName = mysql", &no_env).unwrap_err();
        assert!(err.to_string().contains("key driverName"), "{err}");
        let err = Config::from_text("c", "x = ${OPEN", &no_env).unwrap_err();
        assert!(err.to_string().contains("key x"), "{err}");
        let err = Config::from_text("c", "trustedProxies = 10.0.0.0/8, 10.1.0.0/33", &no_env)
            .unwrap_err();
        assert!(
            err.to_string().contains("key trustedProxies")
                && err.to_string().contains("10.1.0.0/33"),
            "{err}"
        );
        let c = Config::from_text("c", "trustedProxies = 10.0.0.0/8 ::1", &no_env).unwrap();
        assert!(!c.trusted_proxies.is_empty());
        let err = Config::from_text("c", "headerTimeoutMs = 0", &no_env).unwrap_err();
        assert!(err.to_string().contains("key headerTimeoutMs"), "{err}");
        let env = |k: &str| (k == "wechatTimeoutMs").then(|| "soon".to_owned());
        let err = Config::from_text("c", "", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable wechatTimeoutMs: \"soon\" is not a number of milliseconds"
        );
    }

    #[test]
    fn casdoor_keys_are_accepted_and_misspellings_named() {
        let c = Config::from_text("c", "appname = casdoor\nredisEndpoint =\n", &no_env).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = Config::from_text("conf/app.conf", "httpprot = 1234\n", &no_env).unwrap();
        assert_eq!(
            c.warnings,
            ["conf/app.conf:1: unknown key httpprot (did you mean httpport?); it is ignored"]
        );
        assert_eq!(c.http_port, 8000);
        let err = Config::from_text("c", "runmode = prod\nhttpprot = 1234\n", &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c:2: key httpprot: unknown key (did you mean httpport?): a misspelt key would be ignored"
        );
        let c = Config::from_text("c", "frobnicate = 1\n", &no_env).unwrap();
        assert_eq!(c.warnings, ["c:1: unknown key frobnicate; it is ignored"]);
    }

    #[test]
    fn relative_paths_in_the_file_are_beside_it() {
        let text = "dataSourceName = ../data/iam.db\ninitDataFile = init_data.json\n\
                    sessionKeyFile = /abs/key\n";
        let c = Config::from_text("/srv/iam/conf/app.conf", text, &no_env).unwrap();
        assert_eq!(c.data_source_name, "/srv/iam/conf/../data/iam.db");
        assert_eq!(
            c.init_data_file,
            PathBuf::from("/srv/iam/conf/init_data.json")
        );
        assert_eq!(c.session_key_file, PathBuf::from("/abs/key"));
        // The environment and the defaults stay relative to the working directory.
        let env = |k: &str| (k == "dataSourceName").then(|| "x.db".to_owned());
        let c = Config::from_text("/srv/iam/conf/app.conf", "", &env).unwrap();
        assert_eq!(c.data_source_name, "x.db");
        assert_eq!(c.session_key_file, PathBuf::from("data/session-key.secret"));
        let c = Config::from_text(
            "conf/app.conf",
            "dataSourceName = postgres://h/db\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(c.data_source_name, "postgres://h/db");
    }
}
