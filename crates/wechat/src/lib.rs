//! The WeChat adapter: everything the server knows about api.weixin.qq.com lives here, behind the
//! domain's [`WechatApi`] port. Nothing outside this crate sees reqwest or WeChat's JSON.
//!
//! - One pooled reqwest client (rustls on aws-lc-rs) with connect and total timeouts.
//! - Bodies are parsed as JSON whatever the Content-Type (jscode2session says `text/plain`).
//! - Success is "errcode absent or 0" plus the fields that must be there.
//! - Only -1 and connection failures are retried (twice at most, jittered backoff): a request
//!   that may have reached WeChat with a single-use code is never sent again.
//! - Access tokens come from `stable_token`, cached per appid, refreshed by one caller at a time
//!   (with shared tokens: by one node of the cluster at a time).

mod crypto;
mod errors;
mod gate;
mod token;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iam_domain::Secret;
use iam_domain::ports::{
    DecryptError, PhoneInfo, SharedAccessTokens, WechatApi, WechatError, WechatFault, WechatSession,
};
use iam_domain::values::{AppId, WechatCode, WechatId};
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

pub use errors::classify;
pub use gate::CodeGate;
use token::TokenCache;

/// Called once per WeChat call with the API name and the errcode ("0" for success, or a word
/// such as "timeout"), so the server can count calls without this crate knowing its metrics.
pub type CallObserver = Arc<dyn Fn(&str, &str) + Send + Sync>;

#[derive(Clone)]
pub struct WechatConfig {
    pub api_base: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt, for -1 and connection failures.
    pub max_retries: u32,
    /// The first backoff; later ones double, each jittered by ±50%.
    pub backoff: Duration,
}

impl WechatConfig {
    pub fn new(api_base: impl Into<String>, timeout: Duration) -> Self {
        Self {
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            timeout,
            connect_timeout: Duration::from_millis(2000).min(timeout),
            max_retries: 2,
            backoff: Duration::from_millis(50),
        }
    }
}

#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    config: WechatConfig,
    tokens: Arc<TokenCache>,
    observer: Option<CallObserver>,
}

impl std::fmt::Debug for WechatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatClient")
            .field("api_base", &self.config.api_base)
            .finish_non_exhaustive()
    }
}

/// How one HTTP exchange ended, before errcodes are looked at.
enum Sent {
    Body(Value),
    /// Safe to send again: the connection was never made.
    Retryable(WechatError),
    Final(WechatError),
}

/// Connections to WeChat kept open between calls. A slow WeChat holds as many calls in flight
/// as there are sign-ins waiting for it (thousands in a launch burst); with room for only 256
/// idle ones, every call beyond them opened a new connection and closed it after one answer:
/// 1,700 new connections a second in the slowed-WeChat drill, each a TLS handshake against the
/// real api.weixin.qq.com. Idle ones still close after a minute.
const IDLE_CONNECTIONS: usize = 4096;

impl WechatClient {
    pub fn new(config: WechatConfig) -> Result<Self, WechatError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(IDLE_CONNECTIONS)
            .user_agent(concat!("hanzo-iam-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WechatError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            config,
            tokens: Arc::new(TokenCache::default()),
            observer: None,
        })
    }

    /// Shares access tokens with the other nodes on the same database (SPEC §12) instead of
    /// each node fetching its own.
    pub fn with_shared_tokens(mut self, shared: Arc<dyn SharedAccessTokens>) -> Self {
        self.tokens = Arc::new(TokenCache::shared(shared));
        self
    }

    pub fn with_observer(mut self, observer: CallObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, api: &str, outcome: &Result<Value, WechatError>) {
        let Some(o) = &self.observer else { return };
        let label = match outcome {
            Ok(_) => "0".to_owned(),
            Err(e) => match e.fault() {
                Some(f) => f.errcode.to_string(),
                None => match e {
                    WechatError::Timeout => "timeout".into(),
                    WechatError::HttpStatus(s) => format!("http_{s}"),
                    WechatError::Malformed(_) => "malformed".into(),
                    _ => "transport".into(),
                },
            },
        };
        o(api, &label);
    }

    /// One HTTP exchange. reqwest's errors carry the URL, whose query holds the AppSecret, so
    /// it is stripped before anything is kept.
    async fn send(&self, req: reqwest::RequestBuilder) -> Sent {
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Sent::Final(WechatError::Timeout),
            Err(e) if e.is_connect() => {
                return Sent::Retryable(WechatError::Transport(e.without_url().to_string()));
            }
            Err(e) => return Sent::Final(WechatError::Transport(e.without_url().to_string())),
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Sent::Final(WechatError::Timeout),
            Err(e) => return Sent::Final(WechatError::Transport(e.without_url().to_string())),
        };
        if status != reqwest::StatusCode::OK {
            return Sent::Final(WechatError::HttpStatus(status.as_u16()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.is_object() => Sent::Body(v),
            Ok(_) => Sent::Final(WechatError::Malformed("not a JSON object".into())),
            Err(e) => Sent::Final(WechatError::Malformed(format!("not JSON: {e}"))),
        }
    }

    /// Sends `make()` until it succeeds, fails for good, or the retries for -1 and connection
    /// failures are used up. Returns the body of an answer whose errcode is absent or 0.
    async fn call(
        &self,
        api: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, WechatError> {
        let mut attempt = 0;
        let outcome = loop {
            let err = match self.send(make()).await {
                Sent::Body(v) => match errors::fault_of(&v) {
                    None => break Ok(v),
                    Some(fault) => {
                        let err = classify(fault);
                        if !matches!(err, WechatError::Busy(_)) {
                            break Err(err);
                        }
                        err
                    }
                },
                Sent::Retryable(err) => err,
                Sent::Final(err) => break Err(err),
            };
            if attempt >= self.config.max_retries {
                break Err(err);
            }
            attempt += 1;
            let base = self.config.backoff.as_secs_f64() * f64::from(1u32 << (attempt - 1));
            let jitter = rand::rng().random_range(0.5..1.5);
            tracing::debug!(api, attempt, error = %err, "retrying wechat call");
            tokio::time::sleep(Duration::from_secs_f64(base * jitter)).await;
        };
        self.observe(api, &outcome);
        if let Err(e) = &outcome {
            match e.fault() {
                Some(f) => tracing::warn!(
                    api,
                    errcode = f.errcode,
                    rid = f.rid.as_deref().unwrap_or(""),
                    "wechat error: {}",
                    f.errmsg
                ),
                None => tracing::warn!(api, error = %e, "wechat call failed"),
            }
        }
        outcome
    }

    /// `GET /sns/jscode2session`.
    pub async fn jscode2session(
        &self,
        appid: &str,
        secret: &Secret,
        code: &str,
    ) -> Result<WechatSession, WechatError> {
        let url = format!("{}/sns/jscode2session", self.config.api_base);
        let v = self
            .call("jscode2session", || {
                self.http.get(&url).query(&[
                    ("appid", appid),
                    ("secret", secret.expose()),
                    ("js_code", code),
                    ("grant_type", "authorization_code"),
                ])
            })
            .await?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (openid, session_key, unionid) = (text("openid"), text("session_key"), text("unionid"));
        if openid.is_empty() || session_key.is_empty() {
            return Err(WechatError::Malformed(
                "jscode2session succeeded without openid or session_key".into(),
            ));
        }
        let malformed = |e: iam_domain::values::InvalidValue| {
            WechatError::Malformed(format!("jscode2session answered an unusable id: {e}"))
        };
        Ok(WechatSession {
            openid: WechatId::parse("openid", &openid).map_err(malformed)?,
            unionid: WechatId::parse_optional("unionid", &unionid).map_err(malformed)?,
            session_key: Secret::new(session_key),
        })
    }

    /// A cached access token of `appid` from `POST /cgi-bin/stable_token`.
    pub async fn access_token(&self, appid: &str, secret: &Secret) -> Result<String, WechatError> {
        self.tokens.get(self, appid, secret).await
    }

    async fn fetch_stable_token(
        &self,
        appid: &str,
        secret: &Secret,
    ) -> Result<(String, i64), WechatError> {
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            expires_in: Option<i64>,
        }
        let url = format!("{}/cgi-bin/stable_token", self.config.api_base);
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret.expose(),
            "force_refresh": false,
        });
        let v = self
            .call("stable_token", || self.http.post(&url).json(&body))
            .await?;
        let t: Token = serde_json::from_value(v)
            .map_err(|e| WechatError::Malformed(format!("stable_token: {e}")))?;
        if t.access_token.is_empty() {
            return Err(WechatError::Malformed(
                "stable_token without access_token".into(),
            ));
        }
        Ok((t.access_token, t.expires_in.unwrap_or(7200)))
    }

    /// Runs a call that needs an access token; on 40001/40014/42001 the token is refreshed and
    /// the call tried once more.
    async fn with_token<T, F, Fut>(
        &self,
        appid: &str,
        secret: &Secret,
        f: F,
    ) -> Result<T, WechatError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, WechatError>>,
    {
        let token = self.access_token(appid, secret).await?;
        match f(token.clone()).await {
            Err(WechatError::AccessToken(fault)) => {
                tracing::info!(
                    appid,
                    errcode = fault.errcode,
                    "access token refused; refreshing once"
                );
                self.tokens.invalidate(appid, &token).await;
                let fresh = self.access_token(appid, secret).await?;
                f(fresh).await
            }
            other => other,
        }
    }

    /// `POST /wxa/business/getuserphonenumber` with `{"code", "openid"}` (the openid, when
    /// known, makes WeChat refuse a code issued to someone else).
    pub async fn phone_number(
        &self,
        appid: &str,
        secret: &Secret,
        code: &str,
        openid: &str,
    ) -> Result<PhoneInfo, WechatError> {
        let url = format!("{}/wxa/business/getuserphonenumber", self.config.api_base);
        let body = if openid.is_empty() {
            serde_json::json!({ "code": code })
        } else {
            serde_json::json!({ "code": code, "openid": openid })
        };
        let v = self
            .with_token(appid, secret, |token| {
                let (url, body) = (url.clone(), body.clone());
                async move {
                    self.call("getuserphonenumber", || {
                        self.http
                            .post(&url)
                            .query(&[("access_token", token.as_str())])
                            .json(&body)
                    })
                    .await
                }
            })
            .await?;
        let info = v
            .get("phone_info")
            .ok_or_else(|| WechatError::Malformed("no phone_info".into()))?;
        let text = |k: &str| match info.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let watermark = info
            .get("watermark")
            .and_then(|w| w.get("appid"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if watermark != appid {
            return Err(WechatError::Malformed(format!(
                "phone_info watermark appid {watermark:?} is not {appid:?}"
            )));
        }
        let pure = text("purePhoneNumber");
        if pure.is_empty() {
            return Err(WechatError::Malformed(
                "phone_info without purePhoneNumber".into(),
            ));
        }
        Ok(PhoneInfo {
            phone_number: text("phoneNumber"),
            pure_phone_number: pure,
            country_code: text("countryCode"),
        })
    }

    /// `GET /wxa/checksession`: is `session_key` still the user's current one?
    pub async fn check_session(
        &self,
        appid: &str,
        secret: &Secret,
        openid: &str,
        session_key: &Secret,
    ) -> Result<bool, WechatError> {
        use aws_lc_rs::hmac;
        let key = hmac::Key::new(hmac::HMAC_SHA256, session_key.expose().as_bytes());
        let signature = hex::encode(hmac::sign(&key, b"").as_ref());
        let url = format!("{}/wxa/checksession", self.config.api_base);
        let result = self
            .with_token(appid, secret, |token| {
                let (url, signature) = (url.clone(), signature.clone());
                async move {
                    self.call("checksession", || {
                        self.http.get(&url).query(&[
                            ("access_token", token.as_str()),
                            ("openid", openid),
                            ("signature", signature.as_str()),
                            ("sig_method", "hmac_sha256"),
                        ])
                    })
                    .await
                }
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(WechatError::Other(WechatFault { errcode: 87009, .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl WechatApi for WechatClient {
    async fn code_to_session(
        &self,
        appid: &AppId,
        secret: &Secret,
        code: &WechatCode,
    ) -> Result<WechatSession, WechatError> {
        self.jscode2session(appid.as_str(), secret, code.as_str())
            .await
    }

    async fn phone_number(
        &self,
        appid: &AppId,
        secret: &Secret,
        phone_code: &str,
        openid: &str,
    ) -> Result<PhoneInfo, WechatError> {
        WechatClient::phone_number(self, appid.as_str(), secret, phone_code, openid).await
    }

    async fn check_session(
        &self,
        appid: &AppId,
        secret: &Secret,
        openid: &str,
        session_key: &Secret,
    ) -> Result<bool, WechatError> {
        WechatClient::check_session(self, appid.as_str(), secret, openid, session_key).await
    }

    async fn check_credentials(&self, appid: &AppId, secret: &Secret) -> Result<(), WechatError> {
        self.fetch_stable_token(appid.as_str(), secret)
            .await
            .map(|_| ())
    }

    fn decrypt(
        &self,
        session_key: &Secret,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<Vec<u8>, DecryptError> {
        crypto::decrypt(session_key.expose(), encrypted_data, iv)
    }

    fn raw_data_signed(&self, raw_data: &str, session_key: &Secret, signature: &str) -> bool {
        crypto::raw_data_signed(raw_data, session_key.expose(), signature)
    }
}
