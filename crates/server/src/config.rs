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
    /// The file this came from, for messages.
    pub source: String,
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
            source: "(defaults)".into(),
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
];

/// Where a value came from, so an error can point at it.
#[derive(Debug, Clone)]
enum Origin {
    Line(usize),
    Env,
}

struct Raw {
    file: String,
    values: HashMap<String, (String, Origin)>,
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
        let mut c = Config {
            source: file.into(),
            ..Config::default()
        };
        raw.string("origin", &mut c.origin);
        c.origin = c.origin.trim_end_matches('/').to_owned();
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
        if let Some((v, _)) = raw.get("initDataFile") {
            c.init_data_file = PathBuf::from(v);
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
            c.session_key_file = PathBuf::from(v);
        }
        raw.parsed("dbPoolSize", &mut c.db_pool_size, "a whole number")?;
        raw.boolean("benchEndpoints", &mut c.bench_endpoints)?;
        if c.db_pool_size == 0 {
            c.db_pool_size = 1;
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
        let env = |k: &str| (k == "wechatTimeoutMs").then(|| "soon".to_owned());
        let err = Config::from_text("c", "", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable wechatTimeoutMs: \"soon\" is not a number of milliseconds"
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert!(Config::from_text("c", "appname = casdoor\nredisEndpoint =\n", &no_env).is_ok());
    }
}
