//! Phone numbers and the mini program's legacy data (SPEC §8.1, §8.2): the phone code of the
//! `getPhoneNumber` button, `bind-phone`, `decrypt` and `check-session`.

use std::sync::Arc;

use crate::Error;
use crate::model::{Application, Provider, User};
use crate::ports::{Claims, DecryptError, WechatError};
use crate::service::{Iam, Principal};
use crate::users::PHONE_TAKEN;
use crate::values::{AppId, InvalidValue, Phone, PhoneCode};

/// What a mini program is told when its encrypted data does not open: in the field it is
/// nearly always a second `wx.login()` that rotated the key (reference/wechat-api.md §3.2).
pub const STALE_KEY: &str = "the session key has changed: call wx.login and sign in again";

/// Why a phone number could not be had.
pub(crate) enum PhoneFailure {
    Wechat(WechatError),
    /// WeChat's answer is not a phone number the library accepts.
    Invalid(InvalidValue),
}

/// How the caller proves their phone in `bind-phone`.
pub enum PhoneProof {
    /// The button's code (base library ≥ 2.21.2).
    Code(PhoneCode),
    /// The button's legacy `encryptedData` and `iv`.
    Encrypted { data: String, iv: String },
}

/// The caller of a mini program route: a user signed in through an application, the mini
/// program of that application, and the user's identity in it when they have one.
pub(crate) struct MiniProgramCaller {
    pub user: User,
    /// The organization of the token's application.
    pub organization: String,
    pub provider: Arc<Provider>,
    pub appid: AppId,
    pub openid: Option<crate::values::WechatId>,
}

fn wechat_refusal(what: &str, e: WechatError) -> Error {
    match e.fault() {
        Some(f) if !e.is_unavailable() && !matches!(e, WechatError::Misconfigured(_)) => {
            Error::Invalid(format!("{what}: {} {}", f.errcode, f.errmsg))
        }
        _ => crate::grants::wechat_failure(e).into(),
    }
}

impl Iam {
    /// `getuserphonenumber` for `openid`, parsed by the phone-number library.
    pub(crate) async fn verified_phone(
        &self,
        appid: &AppId,
        provider: &Provider,
        code: &PhoneCode,
        openid: &str,
    ) -> Result<Phone, PhoneFailure> {
        let info = self
            .wechat
            .phone_number(appid, &provider.client_secret, code.as_str(), openid)
            .await
            .map_err(PhoneFailure::Wechat)?;
        Phone::parse("phone", &info.pure_phone_number, &info.country_code)
            .map_err(PhoneFailure::Invalid)
    }

    /// The signed-in user behind a Bearer token and the mini program of its application (the
    /// one `provider` names, else the first).
    pub(crate) async fn mini_program_caller(
        &self,
        caller: &Principal,
        claims: Option<&Claims>,
        provider: Option<&str>,
    ) -> Result<MiniProgramCaller, Error> {
        let (Principal::User(user), Some(claims)) = (caller, claims) else {
            return Err(Error::Forbidden(
                "a signed-in user's Bearer token is required".into(),
            ));
        };
        let app: Arc<Application> = self
            .application_by_client_id(&claims.azp)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the token's application is gone".into()))?;
        let provider = self
            .mini_program_provider(&app, provider.unwrap_or_default())
            .await
            .map_err(|e| match e.kind {
                // The one "no" of the lookup; a store outage stays a 503.
                crate::oauth::OAuthErrorKind::InvalidClient => Error::invalid(format!(
                    "provider: the application {} has no such wechat mini program",
                    app.name
                )),
                _ => Error::from(e),
            })?;
        let appid = AppId::parse(&provider.client_id)
            .map_err(|_| Error::Internal("wechat provider is misconfigured".into()))?;
        let openid = self
            .repo
            .list_user_identities(&user.id)
            .await?
            .into_iter()
            .filter(|i| i.appid == appid.as_str())
            .max_by_key(|i| i.last_signin_time)
            .map(|i| i.openid);
        Ok(MiniProgramCaller {
            user: user.clone(),
            organization: app.organization.to_string(),
            provider,
            appid,
            openid,
        })
    }

    /// The caller's stored session key in this mini program.
    async fn session_key(&self, mp: &MiniProgramCaller) -> Result<crate::Secret, Error> {
        let no_key = || {
            Error::invalid(format!(
                "the caller has not signed in with mini program {} yet: sign in with wx.login first",
                mp.appid
            ))
        };
        let openid = mp.openid.as_deref().ok_or_else(no_key)?;
        let sealed = self
            .repo
            .get_wechat_session(mp.appid.as_str(), openid)
            .await?
            .ok_or_else(no_key)?;
        self.sealer
            .open(mp.appid.as_str(), openid, &sealed)
            .map_err(|e| Error::Internal(format!("cannot open the stored session key: {e}")))
    }

    /// Opens legacy encrypted data with the caller's session key and checks that its watermark
    /// names this mini program.
    async fn open_encrypted(
        &self,
        mp: &MiniProgramCaller,
        data: &str,
        iv: &str,
    ) -> Result<serde_json::Value, Error> {
        let key = self.session_key(mp).await?;
        let plain = self.wechat.decrypt(&key, data, iv).map_err(|e| match e {
            DecryptError::WrongKey => Error::invalid(STALE_KEY),
            other => Error::Invalid(other.to_string()),
        })?;
        let value: serde_json::Value = serde_json::from_slice(&plain)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "encryptedData: the decrypted data is not a JSON object ({STALE_KEY})"
                ))
            })?;
        let watermark = value
            .get("watermark")
            .and_then(|w| w.get("appid"))
            .and_then(|a| a.as_str())
            .unwrap_or_default();
        if watermark != mp.appid.as_str() {
            return Err(Error::invalid(format!(
                "encryptedData: its watermark names mini program {watermark:?}, not {}",
                mp.appid
            )));
        }
        Ok(value)
    }

    /// `POST /api/wechat/bind-phone`: the caller's phone, verified by WeChat, becomes theirs
    /// unless another user of the organization holds it.
    pub async fn bind_phone(
        &self,
        caller: &Principal,
        claims: Option<&Claims>,
        proof: PhoneProof,
    ) -> Result<User, Error> {
        let mp = self.mini_program_caller(caller, claims, None).await?;
        let phone = match &proof {
            PhoneProof::Code(code) => self
                .verified_phone(
                    &mp.appid,
                    &mp.provider,
                    code,
                    mp.openid.as_deref().unwrap_or_default(),
                )
                .await
                .map_err(|e| match e {
                    PhoneFailure::Wechat(e) => wechat_refusal("get wechat phone number error", e),
                    PhoneFailure::Invalid(v) => v.into(),
                })?,
            PhoneProof::Encrypted { data, iv } => {
                let v = self.open_encrypted(&mp, data, iv).await?;
                let text = |k: &str| match v.get(k) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                let pure = text("purePhoneNumber");
                if pure.is_empty() {
                    return Err(Error::invalid(
                        "encryptedData: the decrypted data holds no purePhoneNumber",
                    ));
                }
                Phone::parse("phone", &pure, &text("countryCode"))?
            }
        };
        let mut user = mp.user;
        if user.has_phone(&phone) {
            return Ok(user);
        }
        if self
            .repo
            .get_user_by_phone(user.owner.as_str(), phone.e164())
            .await?
            .is_some_and(|other| other.id != user.id)
        {
            return Err(Error::Conflict(PHONE_TAKEN.into()));
        }
        user.set_phone(&phone);
        user.updated_time = chrono::Utc::now();
        self.repo.update_user(&user).await.map_err(|e| match e {
            crate::StoreError::Conflict(_) => Error::Conflict(PHONE_TAKEN.into()),
            other => other.into(),
        })?;
        self.user_changed(&user.id);
        Ok(user)
    }

    /// `POST /api/wechat/decrypt`: legacy encrypted data (WeRun steps, share info), opened with
    /// the caller's session key.
    pub async fn decrypt_wechat_data(
        &self,
        caller: &Principal,
        claims: Option<&Claims>,
        data: &str,
        iv: &str,
    ) -> Result<serde_json::Value, Error> {
        let mp = self.mini_program_caller(caller, claims, None).await?;
        self.open_encrypted(&mp, data, iv).await
    }

    /// `GET /api/wechat/check-session`: whether WeChat still holds the caller's stored session
    /// key as current. No stored key is not valid.
    pub async fn check_wechat_session(
        &self,
        caller: &Principal,
        claims: Option<&Claims>,
    ) -> Result<bool, Error> {
        let mp = self.mini_program_caller(caller, claims, None).await?;
        let Some(openid) = mp.openid.clone() else {
            return Ok(false);
        };
        let key = match self.session_key(&mp).await {
            Ok(k) => k,
            Err(Error::Invalid(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        self.wechat
            .check_session(&mp.appid, &mp.provider.client_secret, &openid, &key)
            .await
            .map_err(|e| wechat_refusal("check wechat session error", e))
    }
}
