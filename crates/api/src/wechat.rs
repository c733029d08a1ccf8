//! Phone numbers and linked WeChat identities (SPEC §8): `bind-phone`, `decrypt`,
//! `check-session`, `get-user-identities`, `bind` and `unbind`. Rules live in the domain; this
//! module reads the bodies and shapes the answers.

use std::sync::Arc;

use iam_domain::Error;
use iam_domain::phone::PhoneProof;
use iam_domain::values::PhoneCode;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::{Object, OpenApi, Union};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{Envelope, Failure, Reply};
use crate::extract::{BearerCaller, Caller, LaxJson};
use crate::params::ObjectId;
use crate::state::AppState;
use crate::tags::Tag;
use iam_wire::{self as wire, time};

/// The `getPhoneNumber` button's answer: its `code`, or its legacy `encryptedData` and `iv`,
/// never both.
#[derive(Union)]
#[oai(one_of)]
pub enum BindPhoneShape {
    Code(PhoneCodeBody),
    Encrypted(EncryptedBody),
}

/// `e.detail.code` of the `getPhoneNumber` button (base library ≥ 2.21.2).
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PhoneCodeBody {
    /// At most 128 printable ASCII characters.
    #[oai(validator(min_length = 1, max_length = 128, pattern = r"^[!-~]*$"))]
    pub phone_code: String,
}

/// `bind-phone`'s body as read: whichever of the two shapes was sent.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct BindPhoneBody {
    pub phone_code: Option<String>,
    pub encrypted_data: Option<String>,
    pub iv: Option<String>,
}

/// Legacy encrypted data of the mini program (WeRun steps, share info, the phone button).
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct EncryptedBody {
    /// Base64.
    #[oai(validator(min_length = 1, max_length = 65536))]
    pub encrypted_data: String,
    /// Base64.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub iv: String,
}

/// A `wx.login()` code of the token's mini program.
#[derive(Object, Deserialize, Debug, Default)]
#[serde(default)]
pub struct BindBody {
    /// At most 128 printable ASCII characters.
    #[oai(validator(min_length = 1, max_length = 128, pattern = r"^[!-~]*$"))]
    pub code: String,
    /// One of several mini programs of the application, by provider name.
    #[oai(validator(max_length = 100))]
    pub provider: Option<String>,
}

/// Which mini program's identity to unbind.
#[derive(Object, Deserialize, Debug, Default)]
#[serde(default)]
pub struct UnbindBody {
    /// Printable ASCII.
    #[oai(validator(min_length = 1, max_length = 64, pattern = r"^[!-~]*$"))]
    pub appid: String,
    /// Which of the user's WeChat accounts in that mini program: needed only when they hold
    /// several there (a second one linked by its phone number, say).
    #[oai(validator(max_length = 128, pattern = r"^[!-~]*$"))]
    pub openid: Option<String>,
}

/// `check-session`'s answer.
#[derive(Object)]
pub struct SessionValidity {
    pub valid: bool,
}

/// One linked WeChat identity.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct IdentityWire {
    /// The provider's name (empty when no provider of this server has its APPID any more).
    pub provider: String,
    pub appid: String,
    pub openid: String,
    pub unionid: String,
    pub created_time: String,
    /// The last code exchanged for it (sign-in or bind); empty when none is recorded.
    pub last_signin_time: String,
}

fn required(field: &'static str, v: Option<String>) -> Result<String, Failure> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Failure(Error::Invalid(format!("{field}: is required"))))
}

pub struct MiniProgramApi;

#[OpenApi(tag = "Tag::Wechat")]
impl MiniProgramApi {
    /// Binds the caller's phone number, verified by WeChat: `{"phoneCode"}` from the
    /// `getPhoneNumber` button, or its legacy `{"encryptedData","iv"}` (opened with the
    /// caller's stored session key). 409 when another user of the organization holds it.
    #[oai(
        path = "/api/wechat/bind-phone",
        method = "post",
        operation_id = "wechat-bind-phone"
    )]
    async fn bind_phone(
        &self,
        state: Data<&Arc<AppState>>,
        caller: BearerCaller,
        body: LaxJson<BindPhoneShape, BindPhoneBody>,
    ) -> Result<Reply<Envelope>, Failure> {
        let b = body.parse()?;
        let proof = match (b.phone_code, b.encrypted_data, b.iv) {
            (Some(code), None, None) => PhoneProof::Code(PhoneCode::parse("phoneCode", &code)?),
            (None, data, iv) if data.is_some() || iv.is_some() => PhoneProof::Encrypted {
                data: required("encryptedData", data)?,
                iv: required("iv", iv)?,
            },
            (None, None, None) => {
                return Err(Failure(Error::invalid(
                    "phoneCode: is required (or encryptedData and iv)",
                )));
            }
            _ => {
                return Err(Failure(Error::invalid(
                    "phoneCode: send either phoneCode or encryptedData and iv, not both",
                )));
            }
        };
        let user = state
            .iam
            .bind_phone(&caller.principal, caller.claims.as_ref(), proof)
            .await?;
        Ok(Reply::success(wire::UserView(&user), Value::Null))
    }

    /// Opens the mini program's legacy encrypted data (WeRun steps, share info) with the
    /// caller's stored session key; the answer is the decrypted JSON, whose watermark names
    /// this mini program.
    #[oai(
        path = "/api/wechat/decrypt",
        method = "post",
        operation_id = "wechat-decrypt"
    )]
    async fn decrypt(
        &self,
        state: Data<&Arc<AppState>>,
        caller: BearerCaller,
        body: LaxJson<EncryptedBody>,
    ) -> Result<Reply<Value>, Failure> {
        let b = body.parse()?;
        let data = required("encryptedData", Some(b.encrypted_data))?;
        let iv = required("iv", Some(b.iv))?;
        let v = state
            .iam
            .decrypt_wechat_data(&caller.principal, caller.claims.as_ref(), &data, &iv)
            .await?;
        Ok(Reply::json(&v))
    }

    /// Asks WeChat whether the caller's stored session key is still current (`checksession`).
    #[oai(
        path = "/api/wechat/check-session",
        method = "get",
        operation_id = "wechat-check-session"
    )]
    async fn check_session(
        &self,
        state: Data<&Arc<AppState>>,
        caller: BearerCaller,
    ) -> Result<Reply<SessionValidity>, Failure> {
        let valid = state
            .iam
            .check_wechat_session(&caller.principal, caller.claims.as_ref())
            .await?;
        Ok(Reply::json(&json!({ "valid": valid })))
    }

    /// A user's WeChat identities (the caller's without `id`; another user's for an
    /// administrator of their organization).
    #[oai(
        path = "/api/get-user-identities",
        method = "get",
        operation_id = "get-user-identities"
    )]
    async fn get_user_identities(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/name`.
        id: Query<Option<ObjectId>>,
    ) -> Result<Reply<Vec<IdentityWire>>, Failure> {
        let list = state
            .iam
            .user_identities(&caller.principal, id.0.as_deref())
            .await?;
        let out: Vec<Value> = list
            .iter()
            .map(|v| {
                let i = &v.identity;
                json!({
                    "provider": v.provider,
                    "appid": i.appid,
                    "openid": i.openid,
                    "unionid": i.unionid.as_deref().unwrap_or_default(),
                    "createdTime": time(&i.created_time),
                    "lastSigninTime": i.last_signin_time.as_ref().map(time).unwrap_or_default(),
                })
            })
            .collect();
        Ok(Reply::json(&Value::Array(out)))
    }

    /// Links the WeChat identity of a `wx.login()` code of the token's mini program to the
    /// caller (a password or phone user adding WeChat). Already theirs: unchanged. Another
    /// user's: 409.
    #[oai(
        path = "/api/wechat/bind",
        method = "post",
        operation_id = "wechat-bind"
    )]
    async fn bind(
        &self,
        state: Data<&Arc<AppState>>,
        caller: BearerCaller,
        body: LaxJson<BindBody>,
    ) -> Result<Reply<Envelope>, Failure> {
        let b = body.parse()?;
        let code = required("code", Some(b.code))?;
        let (identity, new) = state
            .iam
            .bind_wechat(
                &caller.principal,
                caller.claims.as_ref(),
                &code,
                b.provider.as_deref().filter(|p| !p.is_empty()),
            )
            .await?;
        Ok(Reply::ok(
            json!(if new { "Affected" } else { "Unaffected" }),
            json!({"appid": identity.appid, "openid": identity.openid}),
        ))
    }

    /// Removes a user's identity of mini program `appid` (the caller's; `?id=` for an
    /// administrator); `openid` names which when the user holds several there (else a 400
    /// listing them). 409 when it would leave the user no way to sign in.
    #[oai(
        path = "/api/wechat/unbind",
        method = "post",
        operation_id = "wechat-unbind"
    )]
    async fn unbind(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/name` of the user, for administrators.
        id: Query<Option<ObjectId>>,
        body: LaxJson<UnbindBody>,
    ) -> Result<Reply<Envelope>, Failure> {
        let b = body.parse()?;
        let appid = required("appid", Some(b.appid))?;
        let openid = state
            .iam
            .unbind_wechat(
                &caller.principal,
                id.0.as_deref(),
                &appid,
                b.openid.as_deref(),
            )
            .await?;
        Ok(Reply::ok(
            json!("Affected"),
            json!({"appid": appid, "openid": openid}),
        ))
    }
}
