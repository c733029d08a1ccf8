//! The token endpoint and its neighbours (SPEC §4): every grant, revocation, introspection. The
//! aliases Casdoor's clients use are one-line operations over the same handler.

use std::sync::Arc;

use iam_domain::grants::{Introspection, TokenRequest};
use iam_domain::oauth::OAuthError;
use poem::Request;
use poem::web::Data;
use poem_openapi::{Enum, Object, OpenApi, Union};
use serde_json::json;

use crate::errors::{AnyJson, OAuthFailure, OAuthReply};
use crate::extract::Params;
use crate::state::AppState;
use crate::tags::Tag;

/// The token endpoint's request (RFC 6749 §4 and the mini program flow), one shape per grant,
/// each with what that grant requires. The parameters may also come in the query string or a
/// JSON body, and client credentials as HTTP Basic instead of `client_id`/`client_secret`.
#[derive(Union)]
pub enum TokenParams {
    MiniProgram(MiniProgramParams),
    ClientCredentials(ClientCredentialsParams),
    Password(PasswordParams),
    RefreshToken(RefreshTokenParams),
}

/// `tag=wechat_miniprogram`.
#[derive(Enum)]
#[oai(rename_all = "snake_case")]
pub enum MiniProgramTag {
    WechatMiniprogram,
}

/// `grant_type=client_credentials`.
#[derive(Enum)]
#[oai(rename_all = "snake_case")]
pub enum ClientCredentialsGrant {
    ClientCredentials,
}

/// `grant_type=password`.
#[derive(Enum)]
#[oai(rename_all = "snake_case")]
pub enum PasswordGrant {
    Password,
}

/// `grant_type=refresh_token`.
#[derive(Enum)]
#[oai(rename_all = "snake_case")]
pub enum RefreshTokenGrant {
    RefreshToken,
}

/// WeChat Mini Program sign-in: `tag=wechat_miniprogram` runs it whatever `grant_type` says.
#[derive(Object)]
pub struct MiniProgramParams {
    pub tag: MiniProgramTag,
    /// Ignored: `tag` decides.
    pub grant_type: Option<String>,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub client_id: String,
    /// Checked when sent; mini programs are public clients and usually send none.
    pub client_secret: Option<String>,
    /// The `wx.login()` code: at most 128 printable ASCII characters.
    #[oai(validator(min_length = 1, max_length = 128, pattern = r"^[!-~]*$"))]
    pub code: String,
    /// The nickname, stored as `displayName` (at most 100 characters).
    #[oai(validator(max_length = 100))]
    pub username: Option<String>,
    /// An http or https URL of at most 1024 characters.
    #[oai(validator(max_length = 1024, pattern = r"^[hH][tT][tT][pP][sS]?://"))]
    pub avatar: Option<String>,
    /// `openid` adds an OIDC ID token.
    pub scope: Option<String>,
    pub nonce: Option<String>,
    /// Picks one of several mini program providers of the application by name.
    pub provider: Option<String>,
    /// The `getPhoneNumber` button's code; the server asks WeChat for the number (with this
    /// sign-in's openid) and stores it on the user.
    #[oai(validator(max_length = 128, pattern = r"^[!-~]*$"))]
    pub phone_code: Option<String>,
    /// Legacy: `wx.getUserInfo`'s rawData; with a matching `signature`
    /// (`sha1(rawData + session_key)`), its nickName and avatarUrl fill the profile.
    #[oai(rename = "rawData", validator(max_length = 4096))]
    pub raw_data: Option<String>,
    #[oai(validator(max_length = 64))]
    pub signature: Option<String>,
}

/// The application's own token: no user, no refresh token.
#[derive(Object)]
pub struct ClientCredentialsParams {
    pub grant_type: ClientCredentialsGrant,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub client_id: String,
    #[oai(validator(min_length = 1))]
    pub client_secret: String,
    pub scope: Option<String>,
}

/// A user's password, within the application's organization.
#[derive(Object)]
pub struct PasswordParams {
    pub grant_type: PasswordGrant,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub client_id: String,
    /// Checked when sent, required when the application is confidential.
    pub client_secret: Option<String>,
    /// `owner/name`, or a name of the application's organization.
    #[oai(validator(min_length = 1, max_length = 201))]
    pub username: String,
    #[oai(validator(min_length = 1))]
    pub password: String,
    /// `openid` adds an OIDC ID token.
    pub scope: Option<String>,
    pub nonce: Option<String>,
}

/// A refresh token for new tokens in its session; the old one is spent.
#[derive(Object)]
pub struct RefreshTokenParams {
    pub grant_type: RefreshTokenGrant,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub client_id: String,
    /// Checked when sent.
    pub client_secret: Option<String>,
    #[oai(validator(min_length = 1))]
    pub refresh_token: String,
    pub scope: Option<String>,
}

#[derive(Object)]
pub struct TokenAnswer {
    pub access_token: String,
    /// Present when `scope` contains `openid`.
    pub id_token: Option<String>,
    /// Absent for client credentials.
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
}

/// RFC 7009: the token to revoke and the application it was issued to.
#[derive(Object)]
pub struct RevokeParams {
    /// An access or refresh token.
    #[oai(validator(min_length = 1))]
    pub token: String,
    pub token_type_hint: Option<String>,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub client_id: String,
    /// Checked when sent, required when the application is confidential.
    pub client_secret: Option<String>,
}

/// RFC 7662: the token to describe and the application asking, which must authenticate.
#[derive(Object)]
pub struct IntrospectParams {
    /// An access or refresh token.
    #[oai(validator(min_length = 1))]
    pub token: String,
    pub token_type_hint: Option<String>,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub client_id: String,
    #[oai(validator(min_length = 1))]
    pub client_secret: String,
}

/// RFC 7662.
#[derive(Object)]
pub struct IntrospectionAnswer {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub token_type: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub sub: Option<String>,
    pub aud: Option<serde_json::Value>,
    pub iss: Option<String>,
    pub jti: Option<String>,
}

type TokenResult = Result<OAuthReply<TokenAnswer>, OAuthFailure>;

fn rate_limited(state: &AppState, req: &Request) -> Result<(), OAuthFailure> {
    crate::ratelimit::check(state, req).map_err(OAuthFailure)
}

fn token_request<T>(p: &Params<T>) -> TokenRequest {
    TokenRequest {
        grant_type: p.get("grant_type").into(),
        client_id: p.get("client_id").into(),
        client_secret: p.get("client_secret").into(),
        code: p.get("code").into(),
        username: p.get("username").into(),
        password: p.get("password").into(),
        avatar: p.get("avatar").into(),
        tag: p.get("tag").into(),
        scope: p.get("scope").into(),
        nonce: p.get("nonce").into(),
        refresh_token: p.get("refresh_token").into(),
        provider: p.get("provider").into(),
        phone_code: p.get("phone_code").into(),
        raw_data: p.get("rawData").into(),
        signature: p.get("signature").into(),
        client_ip: String::new(),
        user_agent: String::new(),
        request_uri: String::new(),
    }
}

async fn run_token(state: &AppState, req: &Request, mut tr: TokenRequest) -> TokenResult {
    rate_limited(state, req)?;
    // Where it came from, for its session and its record: the client's address (through a
    // trusted proxy, the one it forwards), its agent and the path.
    let meta = crate::records::meta(req, &state.trusted_proxies);
    tr.client_ip = meta.client_ip;
    tr.user_agent = meta.user_agent;
    tr.request_uri = meta.request_uri;
    let t = state.iam.token(&tr, &state.origin).await?;
    Ok(OAuthReply::token(&t))
}

pub struct OAuthApi;

#[OpenApi(tag = "Tag::OAuth")]
impl OAuthApi {
    /// Token endpoint: WeChat Mini Program sign-in (`tag=wechat_miniprogram`), refresh token,
    /// client credentials and password grants. Parameters may come in the query string, a form
    /// or JSON body, and client credentials as HTTP Basic.
    #[oai(path = "/oauth/token", method = "post", operation_id = "token")]
    async fn token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        params: Params<TokenParams>,
    ) -> TokenResult {
        run_token(&state, req, token_request(&params)).await
    }

    /// Casdoor's refresh route: the `refresh_token` grant. Described with the `grant_type`
    /// Casdoor's SDKs send; the route refreshes whatever it says.
    #[oai(
        path = "/api/login/oauth/refresh_token",
        method = "post",
        operation_id = "refresh-token"
    )]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        params: Params<RefreshTokenParams>,
    ) -> TokenResult {
        let mut tr = token_request(&params);
        tr.grant_type = "refresh_token".into();
        tr.tag.clear();
        run_token(&state, req, tr).await
    }

    /// Revokes a token (RFC 7009); a refresh token takes its whole chain with it. Unknown
    /// tokens are not an error.
    #[oai(path = "/oauth/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        params: Params<RevokeParams>,
    ) -> RevokeResult {
        rate_limited(&state, req)?;
        state
            .iam
            .revoke(
                params.get("client_id"),
                params.get("client_secret"),
                params.get("token"),
            )
            .await?;
        Ok(OAuthReply::token(&json!({})))
    }

    /// Token introspection (RFC 7662) for authenticated clients.
    #[oai(
        path = "/api/login/oauth/introspect",
        method = "post",
        operation_id = "introspect"
    )]
    async fn introspect(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        params: Params<IntrospectParams>,
    ) -> Result<OAuthReply<IntrospectionAnswer>, OAuthFailure> {
        rate_limited(&state, req)?;
        let i: Introspection = state
            .iam
            .introspect(
                params.get("client_id"),
                params.get("client_secret"),
                params.get("token"),
                &state.origin,
            )
            .await?;
        Ok(OAuthReply::token(&i))
    }

    /// The load tool's ceiling, served only with `benchEndpoints = true` (404 otherwise): the
    /// same stack as the token endpoint — rate limit, parameter parsing, one signature — without
    /// WeChat or the database. Not part of the public API.
    #[oai(path = "/bench/sign", method = "post", hidden)]
    async fn bench_sign(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        params: Params<TokenParams>,
    ) -> Result<OAuthReply<AnyJson>, poem::Error> {
        let Some(cert) = &state.bench_cert else {
            return Err(poem::Error::from_status(poem::http::StatusCode::NOT_FOUND));
        };
        rate_limited(&state, req)?;
        let token = state
            .iam
            .bench_sign(
                cert,
                params.get("client_id"),
                params.get("code"),
                params.get("username"),
                params.get("avatar"),
                &state.origin,
            )
            .map_err(|e| OAuthFailure(OAuthError::server_error(e.to_string())))?;
        Ok(OAuthReply::token(
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
        ))
    }
}

/// Casdoor's other spellings of the token and revocation routes, one line each over the
/// handlers of [`OAuthApi`]: `name "path" "operation id" ParamsType => handler -> Answer;`.
macro_rules! post_aliases {
    ($($(#[doc = $doc:literal])* $name:ident $path:tt $id:tt $params:ty => $to:ident -> $ret:ty;)*) => {
        pub struct OAuthAliases;

        #[OpenApi(tag = "Tag::OAuth")]
        impl OAuthAliases {
            $(
                $(#[doc = $doc])*
                #[oai(path = $path, method = "post", operation_id = $id)]
                async fn $name(
                    &self,
                    state: Data<&Arc<AppState>>,
                    req: &Request,
                    params: Params<$params>,
                ) -> $ret {
                    OAuthApi.$to(state, req, params).await
                }
            )*
        }
    };
}

type RevokeResult = Result<OAuthReply<AnyJson>, OAuthFailure>;

post_aliases! {
    /// Same as `/oauth/token` (Casdoor's route).
    token_casdoor "/api/login/oauth/access_token" "token-casdoor" TokenParams => token -> TokenResult;
    /// Same as `/oauth/token`.
    token_login "/login/oauth/access_token" "token-login" TokenParams => token -> TokenResult;
    /// Same as `/oauth/token`.
    token_access "/oauth/access_token" "token-access" TokenParams => token -> TokenResult;
    /// Same as `/oauth/revoke`.
    revoke_casdoor "/api/login/oauth/revoke" "revoke-casdoor" RevokeParams => revoke -> RevokeResult;
}
