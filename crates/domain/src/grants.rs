//! The token endpoint: every grant, mini program sign-in first among them (SPEC §4).

use chrono::Utc;

use crate::model::{
    Application, Provider, RefreshOutcome, SessionSelector, SignInWrite, User, UserTouch,
    WechatIdentity, WechatSignIn, WechatUserOutcome,
};
use crate::oauth::{OAuthError, OAuthErrorKind, TokenResponse};
use crate::phone::PhoneFailure;
use crate::ports::WechatError;
use crate::service::Iam;
use crate::values::PhoneCode;
use crate::values::{
    AppId, AvatarUrl, DisplayName, ObjectName, WebUrl, WechatCode, WechatId, is_mini_program_type,
};

pub const MINI_PROGRAM_TAG: &str = "wechat_miniprogram";

/// The token endpoint's parameters, already merged from query, form, JSON and Basic auth. An
/// empty string means "not sent".
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub code: String,
    pub username: String,
    pub password: String,
    pub avatar: String,
    pub tag: String,
    pub scope: String,
    pub nonce: String,
    pub refresh_token: String,
    pub provider: String,
    /// The `getPhoneNumber` button's code (SPEC §8.1).
    pub phone_code: String,
    /// The legacy `wx.getUserInfo` profile and its signature (SPEC §8.2).
    pub raw_data: String,
    pub signature: String,
    /// Who asked, recorded on the session: the client's address and user agent.
    pub client_ip: String,
    pub user_agent: String,
    /// The path the request came to, for its audit record.
    pub request_uri: String,
}

impl TokenRequest {
    pub(crate) fn meta(&self) -> crate::records::RequestMeta {
        crate::records::RequestMeta {
            client_ip: self.client_ip.clone(),
            user_agent: self.user_agent.clone(),
            method: "POST".into(),
            request_uri: self.request_uri.clone(),
        }
    }
}

/// What RFC 7662 introspection says of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Who a sign-in found, and what must be written back.
struct FoundUser {
    user: User,
    /// What the sign-in changes on the user's row.
    touch: UserTouch,
    /// WeChat sent a unionid the stored identity lacks.
    backfill_unionid: bool,
}

/// The tokens of a sign-in that creates no user, so cannot lose the race to create one.
pub(crate) fn created_nobody(t: Option<TokenResponse>) -> Result<TokenResponse, OAuthError> {
    t.ok_or_else(|| OAuthError::server_error("the sign-in lost a race it cannot lose"))
}

/// Where a first sign-in's user is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    /// In the sign-in's own transaction, beside its session (one write per sign-in).
    WithTheSignIn,
    /// By the store's find-or-create, before the sign-in: after losing a race in the first way.
    BeforeTheSignIn,
}

/// What a sign-in writes besides the session, in the same transaction.
#[derive(Default)]
pub(crate) struct SignInExtras {
    wechat_key: Option<(AppId, WechatId, Vec<u8>)>,
    identity_unionid: Option<(AppId, WechatId, WechatId)>,
    /// A verified phone came with it: a uniqueness conflict is the phone's.
    phone_given: bool,
}

fn bad_input(e: crate::values::InvalidValue) -> OAuthError {
    OAuthError::invalid_request(e.to_string())
}

/// A mini program sign-in's own input, checked before anything is sent to WeChat.
struct SignInInput {
    code: WechatCode,
    display_name: Option<DisplayName>,
    avatar: Option<AvatarUrl>,
    phone_code: Option<PhoneCode>,
    /// rawData and its signature, checked against the session key of this very exchange.
    raw_data: Option<(String, String)>,
}

/// The most rawData a mini program sends (a nickname, an avatar URL and a few short fields).
const MAX_RAW_DATA: usize = 4096;

impl SignInInput {
    fn parse(req: &TokenRequest) -> Result<Self, OAuthError> {
        if req.code.is_empty() {
            return Err(OAuthError::invalid_request("code is required"));
        }
        let optional = |s: &str| (!s.is_empty()).then_some(s.to_owned());
        let raw_data = match (req.raw_data.as_str(), req.signature.as_str()) {
            ("", "") => None,
            ("", _) => {
                return Err(OAuthError::invalid_request(
                    "rawData: is required with signature",
                ));
            }
            (_, "") => {
                return Err(OAuthError::invalid_request(
                    "signature: is required with rawData",
                ));
            }
            (raw, _) if raw.len() > MAX_RAW_DATA => {
                return Err(OAuthError::invalid_request(format!(
                    "rawData: is longer than {MAX_RAW_DATA} bytes"
                )));
            }
            (raw, sig) => Some((raw.to_owned(), sig.to_owned())),
        };
        Ok(Self {
            phone_code: optional(&req.phone_code)
                .map(|c| PhoneCode::parse("phone_code", &c))
                .transpose()
                .map_err(bad_input)?,
            raw_data,
            code: WechatCode::parse(&req.code).map_err(bad_input)?,
            display_name: optional(&req.username)
                .map(|u| DisplayName::parse("username", &u))
                .transpose()
                .map_err(bad_input)?,
            avatar: optional(&req.avatar)
                .map(|a| AvatarUrl::parse("avatar", &a))
                .transpose()
                .map_err(bad_input)?,
        })
    }
}

/// A refused phone code (SPEC §8.1): the user must press the button again.
fn phone_failure(e: WechatError) -> OAuthError {
    let errcode = e.fault().map(|f| f.errcode);
    let err = match &e {
        WechatError::InvalidCode(f)
        | WechatError::CodeUsed(f)
        | WechatError::Blocked(f)
        | WechatError::MissingCode(f)
        | WechatError::Other(f) => OAuthError::invalid_grant(format!(
            "get wechat phone number error: {} {}",
            f.errcode, f.errmsg
        )),
        _ => wechat_failure(e),
    };
    err.with_wechat_errcode(errcode)
}

pub(crate) fn wechat_failure(e: WechatError) -> OAuthError {
    let errcode = e.fault().map(|f| f.errcode);
    let err = match &e {
        WechatError::InvalidCode(f)
        | WechatError::CodeUsed(f)
        | WechatError::Blocked(f)
        | WechatError::MissingCode(f) => OAuthError::invalid_grant(format!(
            "get wechat mini program session error: {} {}",
            f.errcode, f.errmsg
        )),
        WechatError::Misconfigured(_) | WechatError::AccessToken(_) => {
            OAuthError::server_error("wechat provider is misconfigured")
        }
        WechatError::RateLimited(_) => {
            OAuthError::unavailable("wechat is rate limiting sign-ins; retry later", 10)
        }
        _ => OAuthError::unavailable("wechat is unavailable; retry later", 2),
    };
    err.with_wechat_errcode(errcode)
}

/// The application's `grantTypes` decide which grants it may use (a mini program sign-in,
/// `tag=wechat_miniprogram`, is exempt, as in Casdoor).
fn allow_grant(app: &Application, grant: &str) -> Result<(), OAuthError> {
    if app.grant_types.iter().any(|g| g == grant) {
        return Ok(());
    }
    Err(OAuthError::new(
        OAuthErrorKind::UnsupportedGrantType,
        format!("grant_type: {grant} is not supported in this application"),
    ))
}

impl Iam {
    /// `POST /oauth/token` and its aliases. Every attempt is recorded (SPEC §10): a user's
    /// successful sign-in in its own transaction, everything else through the audit queue.
    pub async fn token(
        &self,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let result = self.token_inner(req, issuer).await;
        let signs_in_a_user = req.tag == MINI_PROGRAM_TAG || req.grant_type == "password";
        match &result {
            Ok(_) if signs_in_a_user => {}
            Ok(_) => self.record_token_attempt(req, None).await,
            Err(e) => self.record_token_attempt(req, Some(e)).await,
        }
        result
    }

    async fn token_inner(
        &self,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        if req.tag == MINI_PROGRAM_TAG {
            return self.mini_program_sign_in(req, issuer).await;
        }
        match req.grant_type.as_str() {
            "refresh_token" => self.refresh(req, issuer).await,
            "client_credentials" => {
                let app = self
                    .authenticate_client(&req.client_id, &req.client_secret, true)
                    .await?;
                allow_grant(&app, "client_credentials")?;
                self.issue_app_token(&app, &req.scope, issuer).await
            }
            "password" => self.password_grant(req, issuer).await,
            "" if !req.tag.is_empty() => Err(OAuthError::invalid_request(format!(
                "tag {:?} is not supported: a mini program sign-in sends \
                 tag={MINI_PROGRAM_TAG}, any other request a grant_type",
                req.tag.chars().take(64).collect::<String>()
            ))),
            "" => Err(OAuthError::invalid_request("grant_type is required")),
            other => Err(OAuthError::new(
                OAuthErrorKind::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported"),
            )),
        }
    }

    /// Picks the mini program provider: the one `wanted` names, else the first WeChat-type item
    /// in the application's order. Items that do not resolve are skipped.
    pub(crate) async fn mini_program_provider(
        &self,
        app: &Application,
        wanted: &str,
    ) -> Result<std::sync::Arc<Provider>, OAuthError> {
        for item in &app.providers {
            if !wanted.is_empty() && item.name != wanted {
                continue;
            }
            match self.resolve_provider(app, &item.owner, &item.name).await? {
                Some(p) if is_mini_program_type(&p.provider_type) => return Ok(p),
                Some(_) => continue,
                None => {
                    tracing::warn!(
                        application = %app.name,
                        provider = %item.name,
                        "application lists a provider that does not exist; skipped"
                    );
                    continue;
                }
            }
        }
        Err(OAuthError::invalid_client(
            "the application does not support wechat mini program",
        ))
    }

    async fn mini_program_sign_in(
        &self,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let result = self.mini_program_sign_in_inner(req, issuer).await;
        self.events.signin(match &result {
            Ok(_) => "ok",
            Err(e) => e.kind.code(),
        });
        result
    }

    /// Mini program sign-in in its steps: the client, the mini program, the input, WeChat, the
    /// user, the tokens.
    async fn mini_program_sign_in_inner(
        &self,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self
            .authenticate_client(&req.client_id, &req.client_secret, false)
            .await?;
        let provider = self.mini_program_provider(&app, &req.provider).await?;
        let mut input = SignInInput::parse(req)?;
        let (appid, session) = self.exchange_code(&provider, &input.code).await?;
        if let Some((raw, signature)) = input.raw_data.take() {
            self.take_raw_data(&mut input, &raw, &signature, &session.session_key)?;
        }
        // After code2Session (WeChat checks the phone code against this openid), before any
        // write: a refused phone code leaves nothing behind.
        let phone = match &input.phone_code {
            Some(code) => Some(
                self.verified_phone(&appid, &provider, code, &session.openid)
                    .await
                    .map_err(|e| match e {
                        PhoneFailure::Wechat(e) => phone_failure(e),
                        PhoneFailure::Invalid(v) => bad_input(v),
                    })?,
            ),
            None => None,
        };
        let sign_in = WechatSignIn {
            identity: WechatIdentity {
                appid: appid.clone(),
                openid: session.openid.clone(),
                unionid: session.unionid.clone(),
                organization: app.organization.to_string(),
                user_id: String::new(),
                created_time: Utc::now(),
                last_signin_time: None,
            },
            phone,
        };
        let identity = &sign_in.identity;
        let sealed = self
            .sealer
            .seal(&identity.appid, &identity.openid, &session.session_key)
            .map_err(|e| OAuthError::server_error(format!("cannot seal the session key: {e}")))?;
        // A first sign-in creates its user in its own write (one transaction per sign-in). Should
        // another sign-in create them first, it is done again with the store's find-or-create,
        // which finds (or links to) theirs.
        let mut create = Creation::WithTheSignIn;
        loop {
            let found = self
                .find_or_create_user(&app, &sign_in, &input, create)
                .await?;
            let backfill = identity
                .unionid
                .clone()
                .filter(|_| found.backfill_unionid)
                .map(|unionid| (identity.appid.clone(), identity.openid.clone(), unionid));
            let extras = SignInExtras {
                wechat_key: Some((
                    identity.appid.clone(),
                    identity.openid.clone(),
                    sealed.clone(),
                )),
                identity_unionid: backfill,
                phone_given: sign_in.phone.is_some(),
            };
            let signed_in = self
                .sign_in(&app, found.user, found.touch, extras, req, issuer)
                .await?;
            match signed_in {
                None if create == Creation::WithTheSignIn => {
                    tracing::debug!("another sign-in created the user first; signing in again");
                    create = Creation::BeforeTheSignIn;
                }
                other => return created_nobody(other),
            }
        }
    }

    /// The legacy rawData of `wx.getUserInfo`: believed only when its signature is
    /// `sha1(rawData + session_key)` with the key of this very exchange; then its nickname and
    /// avatar fill what the request did not send.
    fn take_raw_data(
        &self,
        input: &mut SignInInput,
        raw: &str,
        signature: &str,
        session_key: &crate::Secret,
    ) -> Result<(), OAuthError> {
        if !self.wechat.raw_data_signed(raw, session_key, signature) {
            return Err(OAuthError::invalid_request(
                "rawData signature does not match",
            ));
        }
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|_| OAuthError::invalid_request("rawData: is not a JSON object"))?;
        let text = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
        };
        if input.display_name.is_none()
            && let Some(n) = text("nickName")
        {
            input.display_name =
                Some(DisplayName::parse("rawData.nickName", &n).map_err(bad_input)?);
        }
        if input.avatar.is_none()
            && let Some(a) = text("avatarUrl")
        {
            input.avatar = Some(AvatarUrl::parse("rawData.avatarUrl", &a).map_err(bad_input)?);
        }
        Ok(())
    }

    /// The end of every user sign-in: a new session with its tokens, written in one
    /// transaction with the user's changes and the WeChat session key. `None` when `touch`
    /// creates the user and another sign-in created them (or took the name or phone) first:
    /// nothing was written, and the tokens are void.
    pub(crate) async fn sign_in(
        &self,
        app: &Application,
        user: User,
        touch: UserTouch,
        extras: SignInExtras,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let (tokens, session, refresh) = self.start_session(app, &user, req, issuer).await?;
        let creates = matches!(touch, UserTouch::Create { .. });
        let changed = !matches!(touch, UserTouch::Nothing | UserTouch::Create { .. });
        let user_id = user.id.clone();
        let record = self.sign_in_record(req, app, &user, &session.id);
        let written = self
            .repo
            .record_sign_in(&SignInWrite {
                record: Some(record),
                user: touch,
                wechat_key: extras.wechat_key,
                identity_unionid: extras.identity_unionid,
                session,
                refresh,
                max_sessions: app.max_sessions_per_user,
            })
            .await;
        let ended = match written {
            Ok(ended) => ended,
            Err(crate::StoreError::Conflict(_)) if creates => return Ok(None),
            // Another user took the phone between our read and this write.
            Err(crate::StoreError::Conflict(_)) if extras.phone_given => {
                return Err(OAuthError::invalid_grant(crate::users::PHONE_TAKEN));
            }
            Err(other) => return Err(other.into()),
        };
        if creates {
            self.events.user_created();
            self.cache.user_totals.clear();
        }
        if changed {
            self.user_changed(&user_id);
        }
        self.sessions_ended(&ended);
        Ok(Some(tokens))
    }

    /// code2Session with the provider's APPID and APPSECRET. A session must name someone.
    pub(crate) async fn exchange_code(
        &self,
        provider: &Provider,
        code: &WechatCode,
    ) -> Result<(AppId, crate::ports::WechatSession), OAuthError> {
        let misconfigured = || OAuthError::server_error("wechat provider is misconfigured");
        let appid = AppId::parse(&provider.client_id).map_err(|_| misconfigured())?;
        if provider.client_secret.is_empty() {
            return Err(misconfigured());
        }
        let session = self
            .wechat
            .code_to_session(&appid, &provider.client_secret, code)
            .await
            .map_err(wechat_failure)?;
        Ok((appid, session))
    }

    /// The user of a WeChat sign-in (SPEC §4 step 6, §8.1), in one store call. A new user is
    /// built only when none was found.
    async fn find_or_create_user(
        &self,
        app: &Application,
        sign_in: &WechatSignIn,
        input: &SignInInput,
        create: Creation,
    ) -> Result<FoundUser, OAuthError> {
        let new_user = if app.enable_sign_up {
            Some(self.new_wechat_user(app, sign_in, input).await?)
        } else {
            None
        };
        let store_creates = new_user
            .clone()
            .filter(|_| create == Creation::BeforeTheSignIn);
        let outcome = self
            .repo
            .find_or_create_wechat_user(sign_in, store_creates)
            .await?;
        let now = Utc::now();
        let identity = &sign_in.identity;
        // A known identity stored without a unionid gets the one WeChat sent now.
        let (mut u, unionid_missing) = match outcome {
            WechatUserOutcome::NotFound if let Some(make) = &new_user => {
                let user = make();
                let mut identity = identity.clone();
                identity.user_id = user.id.clone();
                return Ok(FoundUser {
                    user: user.clone(),
                    touch: UserTouch::Create {
                        user: Box::new(user),
                        identity: Box::new(identity),
                    },
                    backfill_unionid: false,
                });
            }
            WechatUserOutcome::Created(u) => {
                self.events.user_created();
                self.cache.user_totals.clear();
                return Ok(FoundUser {
                    user: u,
                    touch: UserTouch::Nothing,
                    backfill_unionid: false,
                });
            }
            WechatUserOutcome::Found {
                user,
                stored_unionid,
            } => (user, stored_unionid.is_none()),
            WechatUserOutcome::Linked(user) => (user, false),
            WechatUserOutcome::NotFound => {
                return Err(OAuthError::invalid_grant(
                    "the application does not allow to sign up new account",
                ));
            }
            WechatUserOutcome::PhoneConflict => {
                return Err(OAuthError::invalid_grant(crate::users::PHONE_TAKEN));
            }
        };
        if u.is_blocked() {
            return Err(OAuthError::invalid_grant(
                "the user is forbidden to sign in",
            ));
        }
        let before = u.clone();
        if let Some(d) = &input.display_name {
            u.display_name = d.clone();
        }
        if let Some(a) = &input.avatar {
            u.avatar = WebUrl::from(a.clone());
        }
        if let Some(unionid) = identity
            .unionid
            .as_ref()
            .filter(|_| u.wechat_union_id.is_none())
        {
            u.wechat_union_id = Some(unionid.clone());
        }
        // WeChat just verified this number for this person: it replaces the one they had.
        if let Some(p) = &sign_in.phone {
            u.set_phone(p);
        }
        let profile_changed = u != before;
        u.last_signin_time = Some(now);
        u.updated_time = now;
        let touch = if profile_changed {
            UserTouch::Profile(Box::new(u.clone()))
        } else {
            UserTouch::SignedIn {
                user_id: u.id.clone(),
                at: now,
            }
        };
        Ok(FoundUser {
            user: u,
            touch,
            backfill_unionid: unionid_missing && identity.unionid.is_some(),
        })
    }

    /// How a first sign-in makes its user: built by the store only when no user was found,
    /// so a returning sign-in builds nothing.
    async fn new_wechat_user(
        &self,
        app: &Application,
        sign_in: &WechatSignIn,
        input: &SignInInput,
    ) -> Result<crate::ports::NewUser, OAuthError> {
        let identity = &sign_in.identity;
        let phone = sign_in.phone.clone();
        let avatar = match &input.avatar {
            Some(a) => WebUrl::from(a.clone()),
            None => self
                .organization(&app.organization)
                .await?
                .map(|o| o.default_avatar.clone())
                .unwrap_or_default(),
        };
        let display_name = input.display_name.clone().unwrap_or_default();
        // An openid WeChat sent that cannot name a user is a broken session, not a crash.
        let name =
            ObjectName::parse("openid", &format!("wechat-{}", identity.openid)).map_err(|_| {
                OAuthError::invalid_request("the wechat mini program session is invalid")
            })?;
        let (owner, application) = (app.organization.clone(), app.name.clone());
        let openid = Some(identity.openid.clone());
        let unionid = identity.unionid.clone();
        Ok(std::sync::Arc::new(move || {
            let now = Utc::now();
            let mut user = User {
                id: uuid::Uuid::new_v4().to_string(),
                owner: owner.clone(),
                name: name.clone(),
                user_type: User::NORMAL_USER.into(),
                display_name: display_name.clone(),
                avatar: avatar.clone(),
                email: String::new(),
                phone: String::new(),
                country_code: String::new(),
                phone_e164: String::new(),
                is_admin: false,
                is_forbidden: false,
                is_deleted: false,
                signup_application: application.to_string(),
                wechat: openid.clone(),
                wechat_open_id: openid.clone(),
                wechat_union_id: unionid.clone(),
                password_hash: None,
                profile: Default::default(),
                created_time: now,
                updated_time: now,
                last_signin_time: Some(now),
                extra: Default::default(),
            };
            if let Some(p) = &phone {
                user.set_phone(p);
            }
            user
        }))
    }

    async fn refresh(&self, req: &TokenRequest, issuer: &str) -> Result<TokenResponse, OAuthError> {
        let app = self
            .authenticate_client(&req.client_id, &req.client_secret, false)
            .await?;
        allow_grant(&app, "refresh_token")?;
        if req.refresh_token.is_empty() {
            return Err(OAuthError::invalid_request("refresh_token is required"));
        }
        let now = Utc::now();
        let (next_raw, next, session_expires) = self.new_refresh(&app, now);
        let outcome = self
            .repo
            .rotate_refresh(
                &self.codec.hash(&req.refresh_token),
                &app.name,
                &next,
                session_expires,
            )
            .await?;
        let (session, next) = match outcome {
            RefreshOutcome::Rotated(session, next) => (session, next),
            RefreshOutcome::Unknown => {
                return Err(OAuthError::invalid_grant("refresh_token is invalid"));
            }
            RefreshOutcome::Revoked => {
                return Err(OAuthError::invalid_grant(
                    "refresh_token has been revoked: its session has ended",
                ));
            }
            RefreshOutcome::Expired => {
                return Err(OAuthError::invalid_grant("refresh_token has expired"));
            }
            RefreshOutcome::Reused(sid) => {
                // A rotated refresh token came back: someone holds a copy. The session is over.
                self.sessions_ended(&[sid]);
                return Err(OAuthError::invalid_grant(
                    "refresh_token was already used; its session is revoked",
                )
                .as_event("refresh-token-reuse"));
            }
        };
        let user = self
            .repo
            .get_user_by_id(&session.user_id)
            .await?
            .filter(|u| !u.is_blocked())
            .ok_or_else(|| OAuthError::invalid_grant("the user is forbidden to sign in"))?;
        let tokens = self
            .user_tokens(
                &app,
                &user,
                &session.id,
                &next.scope,
                &req.nonce,
                issuer,
                now,
            )
            .await?;
        Ok(TokenResponse {
            refresh_token: Some(next_raw),
            ..tokens
        })
    }

    async fn password_grant(
        &self,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self
            .authenticate_client(&req.client_id, &req.client_secret, false)
            .await?;
        allow_grant(&app, "password")?;
        if req.username.is_empty() || req.password.is_empty() {
            return Err(OAuthError::invalid_request(
                "username and password are required",
            ));
        }
        // As Casdoor scopes it (SPEC §12): the user is looked up in the application's
        // organization only; `org/name` is accepted for that organization. Anyone else's name
        // is looked up as it is there, found nowhere, and costs the dummy hash's time: a
        // global administrator signs in through `app-built-in`, never through a mini
        // program's public client id.
        let org = app.organization.to_string();
        let name = match req.username.split_once('/') {
            Some((o, n)) if o == org => n.to_owned(),
            _ => req.username.clone(),
        };
        let user = self
            .check_password(&app, &org, &name, &req.password)
            .await?;
        if user.is_blocked() {
            return Err(OAuthError::invalid_grant(
                "the user is forbidden to sign in",
            ));
        }
        let mut u = user;
        let now = Utc::now();
        u.last_signin_time = Some(now);
        let touch = UserTouch::SignedIn {
            user_id: u.id.clone(),
            at: now,
        };
        self.sign_in(&app, u, touch, SignInExtras::default(), req, issuer)
            .await
            .and_then(created_nobody)
    }

    /// RFC 7009: revoking an unknown token is not an error. A refresh token or a user's access
    /// token ends its session; an application's access token is refused by its `jti` until it
    /// expires. Only the application a token was issued to may revoke it.
    pub async fn revoke(
        &self,
        client_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<(), OAuthError> {
        let app = self
            .authenticate_client(client_id, client_secret, false)
            .await?;
        if token.is_empty() {
            return Err(OAuthError::invalid_request("token is required"));
        }
        let hash = self.codec.hash(token);
        if let Some(r) = self.repo.get_refresh_token(&hash).await? {
            if r.application == app.name {
                self.end_sessions(
                    &SessionSelector::One(r.session_id),
                    "revoked by the application",
                )
                .await?;
            }
            return Ok(());
        }
        let Some(claims) = self.our_claims(token).await? else {
            return Ok(());
        };
        if claims.azp != app.client_id.as_str() || claims.token_type != "access-token" {
            return Ok(());
        }
        if !claims.sid.is_empty() {
            if self.session_is_active(&claims.sid, &claims.sub).await? {
                self.end_sessions(
                    &SessionSelector::One(claims.sid),
                    "revoked by the application",
                )
                .await?;
            }
            return Ok(());
        }
        if let Some(t) = self.legacy_token(&hash).await?
            && !t.user_id.is_empty()
        {
            // A user's token from before sessions: its chain is a session now.
            self.repo.revoke_legacy_token(&t.id).await?;
            self.end_sessions(
                &SessionSelector::One(t.family),
                "revoked by the application",
            )
            .await?;
            self.sessions.legacy_forget(&hash);
            return Ok(());
        }
        let expires = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
        self.end_token(&claims.jti, expires).await?;
        Ok(())
    }

    /// RFC 7662, for authenticated clients.
    pub async fn introspect(
        &self,
        client_id: &str,
        client_secret: &str,
        token: &str,
        issuer: &str,
    ) -> Result<Introspection, OAuthError> {
        if client_id.is_empty() {
            return Err(OAuthError::invalid_client(
                "introspection requires client authentication",
            ));
        }
        let app = self
            .authenticate_client(client_id, client_secret, true)
            .await?;
        if token.is_empty() {
            return Err(OAuthError::invalid_request("token is required"));
        }
        // A token is described only to an application of its own organization.
        let ours = |organization: &str| organization == app.organization.as_str();
        if let Ok((principal, claims)) = self.authenticate_bearer(token, Some(issuer)).await {
            let (username, organization) = match &principal {
                crate::service::Principal::User(u) => (u.id_path(), u.owner.to_string()),
                crate::service::Principal::Application(a) => {
                    (a.name.to_string(), a.organization.to_string())
                }
            };
            if !ours(&organization) {
                return Ok(Introspection::default());
            }
            return Ok(Introspection {
                active: true,
                scope: Some(claims.scope.clone()),
                client_id: Some(claims.azp.clone()),
                username: Some(username),
                token_type: Some("Bearer".into()),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                nbf: Some(claims.nbf),
                sub: Some(claims.sub.clone()),
                aud: Some(claims.aud.clone()),
                iss: Some(claims.iss.clone()),
                jti: Some(claims.jti),
            });
        }
        let now = Utc::now();
        if let Some(r) = self.repo.get_refresh_token(&self.codec.hash(token)).await?
            && !r.used
            && r.expires_time > now
            && ours(&r.organization)
            && self.session_is_active(&r.session_id, &r.user_id).await?
        {
            return Ok(Introspection {
                active: true,
                scope: Some(r.scope),
                token_type: Some("refresh_token".into()),
                exp: Some(r.expires_time.timestamp()),
                sub: Some(r.user_id),
                ..Introspection::default()
            });
        }
        Ok(Introspection::default())
    }
}
