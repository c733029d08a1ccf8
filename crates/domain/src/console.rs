//! The console's own use cases (SPEC §11): signing in to it (a session of §9 like any other),
//! the token that guards its forms, connecting a mini program in one form, and testing WeChat
//! credentials in plain words. Everything else the console shows goes through the same use cases
//! as the API.

use chrono::Utc;

use crate::Error;
use crate::grants::TokenRequest;
use crate::model::{
    ADMIN_OWNER, Application, BUILT_IN_APP, BUILT_IN_CERT, BUILT_IN_ORG, Organization, Provider,
    SeedBundle, User, UserQuery, UserSearch, UserSort,
};
use crate::oauth::{OAuthError, OAuthErrorKind};
use crate::objects::{
    ApplicationInput, OrganizationInput, ProviderInput, ProviderItemInput, Purpose,
};
use crate::ports::WechatError;
use crate::secret::Secret;
use crate::service::{Iam, Principal, secrets_equal};
use crate::values::{AppId, InvalidValue, ObjectName};

/// The `tag` of a console sign-in: its records say `signin-console`.
pub const CONSOLE_TAG: &str = "console";

/// What the console's sign-in form sent, and from where.
#[derive(Debug, Clone, Default)]
pub struct ConsoleLogin {
    /// `name` (of `built-in`) or `organization/name`.
    pub username: String,
    pub password: String,
    pub client_ip: String,
    pub user_agent: String,
}

/// The "Connect a mini program" form (SPEC §11): what §6's four curl calls create.
#[derive(Debug, Clone, Default)]
pub struct ConnectMiniProgram {
    /// An existing organization, or the name of one to create.
    pub organization: String,
    pub appid: String,
    pub appsecret: String,
    /// The application's name; its display name too.
    pub application: String,
    pub enable_sign_up: bool,
}

/// The console's users page: one page, newest first, of one organization (an organization's
/// administrator: always their own) or all of them.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub organization: Option<String>,
    pub search: Option<(UserSearch, String)>,
    pub forbidden: Option<bool>,
    pub offset: u64,
    pub limit: u64,
}

fn field(name: &'static str) -> impl Fn(InvalidValue) -> Error {
    move |e| Error::Invalid(format!("{name}: {}", e.reason))
}

/// A mini program's APPID as WeChat issues them: `wx` and 16 hexadecimal digits.
fn mini_program_appid(s: &str) -> Result<AppId, Error> {
    let s = s.trim();
    let well_formed =
        s.len() == 18 && s.starts_with("wx") && s[2..].chars().all(|c| c.is_ascii_hexdigit());
    if s.is_empty() {
        return Err(Error::invalid("appid: is required"));
    }
    if !well_formed {
        return Err(Error::invalid(
            "appid: a mini program's APPID is \"wx\" and 16 letters and digits (0-9, a-f), like wx5f3c1b2a9d8e7f60",
        ));
    }
    AppId::parse(s).map_err(field("appid"))
}

/// What a failed credentials test means, in words a mini program team can act on.
pub fn explain_wechat_failure(e: &WechatError) -> String {
    match e.fault().map(|f| f.errcode) {
        Some(40013) => "WeChat does not know this APPID (errcode 40013). Copy it again from the \
                        mini program's admin console: Development → Development Management → \
                        Development Settings."
            .into(),
        Some(40125) => "WeChat refused the APPSECRET (errcode 40125): it is wrong or was reset. \
                        Generate a new one in the mini program's admin console and paste it here."
            .into(),
        Some(40164) => "This server's IP address is not on the mini program's IP whitelist \
                        (errcode 40164). Add the server's outbound address under Development \
                        Settings → IP whitelist."
            .into(),
        Some(45009) | Some(45011) => "WeChat is rate limiting this APPID (errcode 45009/45011); \
                                      try again in a minute."
            .into(),
        Some(-1) => "WeChat is busy (errcode -1); try again in a moment.".into(),
        Some(code) => format!(
            "WeChat refused the credentials: errcode {code} ({}).",
            e.fault().map(|f| f.errmsg.as_str()).unwrap_or_default()
        ),
        None => format!(
            "WeChat could not be reached ({e}). Check that this server can make outbound HTTPS \
             requests to WeChat's API (or to the configured simulator)."
        ),
    }
}

impl Iam {
    /// Signs an administrator in to the console: a global administrator (`built-in`) or an
    /// administrator of one organization. The session is of `app-built-in`; every attempt is
    /// recorded as `signin-console`. Returns the access token the console keeps in its cookie.
    pub async fn console_sign_in(
        &self,
        login: &ConsoleLogin,
        issuer: &str,
    ) -> Result<String, Error> {
        let app = self
            .repo
            .get_application(BUILT_IN_APP)
            .await?
            .ok_or_else(|| Error::Internal("app-built-in does not exist".into()))?;
        let req = TokenRequest {
            grant_type: "password".into(),
            tag: CONSOLE_TAG.into(),
            client_id: app.client_id.to_string(),
            username: login.username.clone(),
            password: login.password.clone(),
            scope: "openid".into(),
            client_ip: login.client_ip.clone(),
            user_agent: login.user_agent.clone(),
            request_uri: "/console/login".into(),
            ..TokenRequest::default()
        };
        let result = self.console_sign_in_inner(&app, &req, issuer).await;
        self.events.signin(match &result {
            Ok(_) => "ok",
            Err(e) => e.kind.code(),
        });
        match result {
            Ok(token) => Ok(token),
            Err(e) => {
                self.record_token_attempt(&req, Some(&e)).await;
                Err(Error::from(e))
            }
        }
    }

    async fn console_sign_in_inner(
        &self,
        app: &Application,
        req: &TokenRequest,
        issuer: &str,
    ) -> Result<String, OAuthError> {
        let wrong = || OAuthError::new(OAuthErrorKind::InvalidClient, "wrong username or password");
        if req.username.trim().is_empty() || req.password.is_empty() {
            return Err(OAuthError::invalid_request(
                "username and password are required",
            ));
        }
        let (owner, name) = match req.username.trim().split_once('/') {
            Some((o, n)) => (o.to_owned(), n.to_owned()),
            None => (BUILT_IN_ORG.to_owned(), req.username.trim().to_owned()),
        };
        let user = self
            .check_password(app, &owner, &name, &req.password)
            .await
            .map_err(|e| match e.event {
                // Locked: Casdoor's message, with the minutes left.
                Some(_) => OAuthError::new(OAuthErrorKind::InvalidClient, e.description)
                    .as_event("signin-locked"),
                None if e.kind == OAuthErrorKind::InvalidGrant => wrong(),
                None => e,
            })?;
        if user.is_blocked() {
            return Err(OAuthError::new(
                OAuthErrorKind::InvalidClient,
                "this account is forbidden to sign in",
            ));
        }
        if !user.is_admin {
            return Err(OAuthError::new(
                OAuthErrorKind::InvalidClient,
                "only administrators can sign in to the console",
            ));
        }
        let mut u = user;
        let now = Utc::now();
        u.last_signin_time = Some(now);
        let touch = crate::model::UserTouch::SignedIn {
            user_id: u.id.clone(),
            at: now,
        };
        let tokens = self
            .sign_in(app, u, touch, Default::default(), req, issuer)
            .await
            .and_then(crate::grants::created_nobody)?;
        Ok(tokens.access_token)
    }

    /// The administrator a console cookie names: its token must be a live session's, of an
    /// administrator (global or of one organization) who may still sign in.
    pub async fn console_principal(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<(User, String), Error> {
        let (principal, claims) = self.authenticate_bearer(token, issuer).await?;
        match principal {
            Principal::User(u) if u.is_admin => Ok((u, claims.sid)),
            _ => Err(Error::Unauthenticated(
                "only administrators can use the console".into(),
            )),
        }
    }

    /// A page of users for the console, and how many match.
    pub async fn console_users(
        &self,
        caller: &Principal,
        filter: &UserFilter,
    ) -> Result<(Vec<User>, u64), Error> {
        let owner = match (&filter.organization, caller) {
            (o, _) if caller.is_global_admin() => o.clone(),
            (Some(o), _) if caller.administers(o) => Some(o.clone()),
            (None, Principal::User(u)) if u.is_admin => Some(u.owner.to_string()),
            _ => return Err(Error::forbidden()),
        };
        self.users_page(UserQuery {
            owner,
            search: filter
                .search
                .clone()
                .map(|(by, v)| (by, v.trim().chars().take(200).collect()))
                .filter(|(_, v): &(UserSearch, String)| !v.is_empty()),
            sort: Some((UserSort::CreatedTime, false)),
            offset: filter.offset,
            limit: filter.limit.clamp(1, 100),
            skip_total: false,
            forbidden: filter.forbidden,
        })
        .await
    }

    /// A user's failed passwords in a row (the lockout's count), for their administrators.
    pub async fn user_password_failures(
        &self,
        caller: &Principal,
        user: &User,
    ) -> Result<crate::model::PasswordFailures, Error> {
        if !caller.administers(user.owner.as_str()) {
            return Err(Error::forbidden());
        }
        Ok(self.repo.password_failures(&user.id).await?)
    }

    /// The token a console form carries to prove it was drawn for this session (CSRF): derived
    /// from the session's cookie, which a forging page can neither read nor send.
    pub fn form_token(&self, session_token: &str) -> String {
        self.codec.hash(&format!("console-form\n{session_token}"))
    }

    pub fn form_token_ok(&self, session_token: &str, sent: &str) -> bool {
        !sent.is_empty() && secrets_equal(&self.form_token(session_token), sent)
    }

    /// Creates what a mini program needs in one transaction: the organization when it is new,
    /// a WeChat provider with the APPID and APPSECRET, and an application listing it (SPEC §11).
    /// Errors name the form's field.
    pub async fn connect_mini_program(
        &self,
        caller: &Principal,
        form: &ConnectMiniProgram,
    ) -> Result<Application, Error> {
        crate::admin::require_global_admin(caller)?;
        let now = Utc::now();
        let org_name = ObjectName::parse("organization", form.organization.trim())?;
        let appid = mini_program_appid(&form.appid)?;
        let secret = form.appsecret.trim();
        if secret.is_empty() {
            return Err(Error::invalid("appsecret: is required"));
        }
        if secret.len() != 32 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "appsecret: must be the 32 letters and digits WeChat shows (0-9, a-f)",
            ));
        }
        let app_name = ObjectName::parse("application", form.application.trim())?;
        app_name.check_new("application")?;
        let mut bundle = SeedBundle::default();
        if self
            .repo
            .get_organization(org_name.as_str())
            .await?
            .is_none()
        {
            org_name.check_new("organization")?;
            bundle.organizations.push(Organization::from_input(
                OrganizationInput {
                    name: org_name.to_string(),
                    display_name: org_name.to_string(),
                    ..OrganizationInput::default()
                },
                now,
            )?);
        }
        if self
            .repo
            .get_application(app_name.as_str())
            .await?
            .is_some()
        {
            return Err(Error::Invalid(format!(
                "application: an application named {:?} already exists",
                app_name.as_str()
            )));
        }
        let provider_name = format!("wechat_{}", appid.as_str().to_ascii_lowercase());
        if self
            .repo
            .get_provider(org_name.as_str(), &provider_name)
            .await?
            .is_some()
        {
            return Err(Error::Invalid(format!(
                "appid: {} is already connected in organization {:?}",
                appid.as_str(),
                org_name.as_str()
            )));
        }
        let provider = Provider::from_input(
            ProviderInput {
                owner: org_name.to_string(),
                name: provider_name.clone(),
                display_name: format!("WeChat mini program {}", appid.as_str()),
                category: "OAuth".into(),
                provider_type: "WeChat".into(),
                sub_type: "Mini Program".into(),
                client_id: appid.to_string(),
                client_secret: secret.to_owned(),
                ..ProviderInput::default()
            },
            now,
        )?;
        provider.check_complete()?;
        let app = Application::from_input(
            ApplicationInput {
                name: app_name.to_string(),
                display_name: app_name.to_string(),
                organization: org_name.to_string(),
                cert: BUILT_IN_CERT.into(),
                enable_sign_up: form.enable_sign_up,
                providers: vec![ProviderItemInput {
                    owner: org_name.to_string(),
                    name: provider_name,
                    can_sign_up: Some(true),
                    can_sign_in: Some(true),
                }],
                // Empty: Casdoor console's default list.
                ..ApplicationInput::default()
            },
            Purpose::Create,
            now,
        )?;
        bundle.providers.push(provider);
        bundle.applications.push(app.clone());
        self.written(self.repo.insert_together(&bundle).await)
            .map_err(|e| match e {
                crate::StoreError::Conflict(what) => Error::Conflict(format!(
                    "application: {what} already exists (created by someone else meanwhile?)"
                )),
                other => other.into(),
            })?;
        Ok(app)
    }

    /// "Test WeChat credentials": fetches a `stable_token` with them. `Err` is the sentence
    /// to show. A masked secret (`***`) means the stored provider's of this APPID.
    pub async fn test_wechat_credentials(
        &self,
        caller: &Principal,
        appid: &str,
        secret: &str,
    ) -> Result<(), Error> {
        if !matches!(caller, Principal::User(u) if u.is_admin) && !caller.is_global_admin() {
            return Err(Error::forbidden());
        }
        let appid = mini_program_appid(appid)?;
        let secret = if secret == crate::objects::MASK {
            self.stored_secret_of(caller, &appid).await?
        } else {
            Secret::new(secret.trim().to_owned())
        };
        if secret.is_empty() {
            return Err(Error::invalid("appsecret: is required"));
        }
        self.wechat
            .check_credentials(&appid, &secret)
            .await
            .map_err(|e| Error::Invalid(format!("appsecret: {}", explain_wechat_failure(&e))))
    }

    async fn stored_secret_of(&self, caller: &Principal, appid: &AppId) -> Result<Secret, Error> {
        let providers = self.repo.list_providers(None).await?;
        providers
            .into_iter()
            .find(|p| {
                p.client_id == appid.as_str()
                    && (caller.is_global_admin()
                        || (p.owner != ADMIN_OWNER && caller.administers(&p.owner)))
            })
            .map(|p| p.client_secret)
            .ok_or_else(|| Error::invalid("appsecret: is required"))
    }
}
