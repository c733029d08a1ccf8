//! The OpenAPI description of the routes served by plain poem handlers.
//!
//! The token endpoint and the `/api` routes must accept what Casdoor's clients send — form or
//! JSON bodies, JSON with no Content-Type, credentials in four places — which poem-openapi's
//! strict payload dispatch would refuse. So those routes are served by the handlers in
//! `oauth_http`, `user_http` and `mgmt_http`, and described here: these operations are part of
//! the spec (served at `/openapi.json`, checked in as `openapi/openapi.json`, fuzzed by
//! schemathesis in CI) but are never routed.

#![allow(clippy::too_many_arguments)]

use poem_openapi::auth::{ApiKey, Basic, Bearer};
use poem_openapi::param::Query;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi, SecurityScheme, Tags};
use serde_json::Value;

#[derive(Tags)]
enum Tag {
    /// The token endpoint: mini program sign-in and every other grant.
    OAuth,
    /// Bearer APIs of signed-in users.
    Users,
    /// The management API of global administrators.
    Management,
    /// Discovery documents.
    Discovery,
}

/// A Bearer access token from the token endpoint.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct BearerAuth(#[allow(dead_code)] Bearer);

/// An application's client credentials.
#[derive(SecurityScheme)]
#[oai(ty = "basic")]
pub struct BasicAuth(#[allow(dead_code)] Basic);

/// An application's client id in the query, as Casdoor's Python SDK sends it (with `clientSecret`).
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "clientId", key_in = "query")]
pub struct ClientIdQuery(#[allow(dead_code)] ApiKey);

/// Who may call an `/api` route.
#[derive(SecurityScheme)]
#[allow(dead_code)]
pub enum ApiAuth {
    Bearer(BearerAuth),
    Basic(BasicAuth),
    ClientId(ClientIdQuery),
}

/// Parameters of the token endpoint (RFC 6749 §4 and the mini program flow). Every field is
/// optional in the schema: which are required depends on `tag` and `grant_type`.
#[derive(Object, Default, serde::Deserialize)]
pub struct TokenParams {
    /// `wechat_miniprogram` runs mini program sign-in whatever `grant_type` says.
    pub tag: Option<String>,
    /// `refresh_token`, `client_credentials` or `password`.
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The `wx.login()` code: at most 128 printable ASCII characters.
    pub code: Option<String>,
    /// Mini program: the nickname, stored as `displayName` (at most 100 characters).
    /// Password grant: `owner/name` or a name of the application's organization.
    pub username: Option<String>,
    pub password: Option<String>,
    /// An http or https URL of at most 1024 characters.
    pub avatar: Option<String>,
    /// `openid` adds an OIDC ID token.
    pub scope: Option<String>,
    pub nonce: Option<String>,
    pub refresh_token: Option<String>,
    /// Picks one of several mini program providers of the application by name.
    pub provider: Option<String>,
}

#[derive(ApiRequest)]
pub enum TokenBody {
    Form(Form<TokenParams>),
    Json(Json<TokenParams>),
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

/// RFC 6749 §5.2.
#[derive(Object)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`,
    /// `temporarily_unavailable`, `server_error`, `slow_down`.
    pub error: String,
    pub error_description: String,
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// Tokens. `Cache-Control: no-store`.
    #[oai(status = 200)]
    Ok(Json<TokenAnswer>),
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`.
    #[oai(status = 400)]
    BadRequest(Json<OAuthErrorBody>),
    /// `invalid_client`, with `WWW-Authenticate: Basic realm="OAuth2"`.
    #[oai(status = 401)]
    InvalidClient(Json<OAuthErrorBody>),
    /// `slow_down`: too many token requests from this address.
    #[oai(status = 429)]
    TooMany(
        Json<OAuthErrorBody>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
    /// `server_error`: the WeChat provider is misconfigured.
    #[oai(status = 500)]
    ServerError(Json<OAuthErrorBody>),
    /// `temporarily_unavailable`: WeChat or the database is unavailable.
    #[oai(status = 503)]
    Unavailable(
        Json<OAuthErrorBody>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
}

/// Casdoor's envelope of every `/api` answer.
#[derive(Object)]
pub struct Envelope {
    /// `ok` or `error`.
    pub status: String,
    pub msg: String,
    pub data: Option<Value>,
    pub data2: Option<Value>,
}

/// `/api/get-account`'s envelope, with the user's id and name on top.
#[derive(Object)]
pub struct AccountEnvelope {
    pub status: String,
    pub msg: String,
    pub sub: Option<String>,
    pub name: Option<String>,
    pub data: Option<Value>,
    pub data2: Option<Value>,
}

macro_rules! envelope_response {
    ($name:ident, $body:ty) => {
        #[derive(ApiResponse)]
        pub enum $name {
            #[oai(status = 200)]
            Ok(Json<$body>),
            /// Bad input; `msg` names the field.
            #[oai(status = 400)]
            BadRequest(Json<Envelope>),
            /// Not signed in, or the token is invalid, expired or revoked.
            #[oai(status = 401)]
            Unauthorized(Json<Envelope>),
            /// Signed in, but not allowed.
            #[oai(status = 403)]
            Forbidden(Json<Envelope>),
            /// The object does not exist.
            #[oai(status = 404)]
            NotFound(Json<Envelope>),
            /// The object exists already, or is still in use.
            #[oai(status = 409)]
            Conflict(Json<Envelope>),
            /// The database is unavailable.
            #[oai(status = 503)]
            Unavailable(
                Json<Envelope>,
                #[oai(header = "Retry-After")] Option<String>,
            ),
        }
    };
}
envelope_response!(ApiAnswer, Envelope);
envelope_response!(AccountAnswer, AccountEnvelope);

/// OIDC userinfo.
#[derive(Object)]
pub struct UserInfo {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub name: String,
    pub preferred_username: String,
    #[oai(rename = "displayName")]
    pub display_name: String,
    pub picture: String,
}

#[derive(ApiResponse)]
pub enum UserInfoAnswer {
    #[oai(status = 200)]
    Ok(Json<UserInfo>),
    #[oai(status = 400)]
    BadRequest(Json<Envelope>),
    #[oai(status = 401)]
    Unauthorized(Json<Envelope>),
    #[oai(status = 503)]
    Unavailable(
        Json<Envelope>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
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
    pub aud: Option<Value>,
    pub iss: Option<String>,
    pub jti: Option<String>,
}

#[derive(ApiResponse)]
pub enum IntrospectResponse {
    #[oai(status = 200)]
    Ok(Json<IntrospectionAnswer>),
    #[oai(status = 400)]
    BadRequest(Json<OAuthErrorBody>),
    #[oai(status = 401)]
    InvalidClient(Json<OAuthErrorBody>),
    #[oai(status = 503)]
    Unavailable(
        Json<OAuthErrorBody>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// Revoked, or unknown (RFC 7009: not an error).
    #[oai(status = 200)]
    Ok(Json<Value>),
    #[oai(status = 400)]
    BadRequest(Json<OAuthErrorBody>),
    #[oai(status = 401)]
    InvalidClient(Json<OAuthErrorBody>),
    #[oai(status = 429)]
    TooMany(
        Json<OAuthErrorBody>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
    #[oai(status = 503)]
    Unavailable(
        Json<OAuthErrorBody>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum DocumentResponse {
    #[oai(status = 200)]
    Ok(Json<Value>),
    #[oai(status = 503)]
    Unavailable(
        Json<Envelope>,
        #[oai(header = "Retry-After")] Option<String>,
    ),
}

/// A user (Casdoor's field names; unknown fields and nulls are tolerated and ignored).
#[derive(Object, Default)]
pub struct UserBody {
    pub owner: Option<String>,
    pub name: Option<String>,
    #[oai(rename = "type")]
    pub user_type: Option<String>,
    /// Never returned; an empty password never changes one.
    pub password: Option<String>,
    #[oai(rename = "displayName")]
    pub display_name: Option<String>,
    pub avatar: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[oai(rename = "countryCode")]
    pub country_code: Option<String>,
    #[oai(rename = "firstName")]
    pub first_name: Option<String>,
    #[oai(rename = "lastName")]
    pub last_name: Option<String>,
    pub bio: Option<String>,
    pub gender: Option<String>,
    pub language: Option<String>,
    pub location: Option<String>,
    pub region: Option<String>,
    pub homepage: Option<String>,
    pub title: Option<String>,
    pub affiliation: Option<String>,
    pub birthday: Option<String>,
    #[oai(rename = "isAdmin")]
    pub is_admin: Option<bool>,
    #[oai(rename = "isForbidden")]
    pub is_forbidden: Option<bool>,
    #[oai(rename = "isDeleted")]
    pub is_deleted: Option<bool>,
    #[oai(rename = "signupApplication")]
    pub signup_application: Option<String>,
}

#[derive(Object, Default)]
pub struct OrganizationBody {
    pub owner: Option<String>,
    pub name: Option<String>,
    #[oai(rename = "displayName")]
    pub display_name: Option<String>,
    #[oai(rename = "defaultAvatar")]
    pub default_avatar: Option<String>,
}

#[derive(Object, Default)]
pub struct ProviderItemBody {
    pub owner: Option<String>,
    pub name: Option<String>,
    #[oai(rename = "canSignUp")]
    pub can_sign_up: Option<bool>,
    #[oai(rename = "canSignIn")]
    pub can_sign_in: Option<bool>,
}

#[derive(Object, Default)]
pub struct ApplicationBody {
    pub owner: Option<String>,
    pub name: Option<String>,
    #[oai(rename = "displayName")]
    pub display_name: Option<String>,
    pub organization: Option<String>,
    /// Generated when empty on add.
    #[oai(rename = "clientId")]
    pub client_id: Option<String>,
    /// Returned as `***`; `***` written back keeps the stored secret.
    #[oai(rename = "clientSecret")]
    pub client_secret: Option<String>,
    pub cert: Option<String>,
    #[oai(rename = "enableSignUp")]
    pub enable_sign_up: Option<bool>,
    /// Ordered: the first WeChat provider is the mini program's.
    pub providers: Option<Vec<ProviderItemBody>>,
    #[oai(rename = "grantTypes")]
    pub grant_types: Option<Vec<String>>,
    #[oai(rename = "tokenFormat")]
    pub token_format: Option<String>,
    #[oai(rename = "expireInHours")]
    pub expire_in_hours: Option<f64>,
    #[oai(rename = "refreshExpireInHours")]
    pub refresh_expire_in_hours: Option<f64>,
}

#[derive(Object, Default)]
pub struct ProviderBody {
    pub owner: Option<String>,
    pub name: Option<String>,
    #[oai(rename = "displayName")]
    pub display_name: Option<String>,
    pub category: Option<String>,
    /// `WeChat` or `WeChatMiniProgram` for a mini program.
    #[oai(rename = "type")]
    pub provider_type: Option<String>,
    #[oai(rename = "subType")]
    pub sub_type: Option<String>,
    /// The mini program's APPID.
    #[oai(rename = "clientId")]
    pub client_id: Option<String>,
    /// The mini program's APPSECRET; returned as `***`.
    #[oai(rename = "clientSecret")]
    pub client_secret: Option<String>,
}

#[derive(Object, Default)]
pub struct CertBody {
    pub owner: Option<String>,
    pub name: Option<String>,
    #[oai(rename = "displayName")]
    pub display_name: Option<String>,
    /// `x509`.
    #[oai(rename = "type")]
    pub cert_type: Option<String>,
    /// `RS256` (default) or `ES256`.
    #[oai(rename = "cryptoAlgorithm")]
    pub crypto_algorithm: Option<String>,
    #[oai(rename = "bitSize")]
    pub bit_size: Option<i32>,
    /// PEM; generated with the key when both are empty.
    pub certificate: Option<String>,
    /// PEM; returned as `***`.
    #[oai(rename = "privateKey")]
    pub private_key: Option<String>,
}

fn never<T>() -> T {
    // The routes below are served by the plain handlers; this document is never routed.
    unreachable!("documentation-only operation")
}

#[derive(Default)]
pub struct TokenDocs;

#[OpenApi(tag = "Tag::OAuth")]
impl TokenDocs {
    /// Token endpoint: WeChat Mini Program sign-in (`tag=wechat_miniprogram`), refresh token,
    /// client credentials and password grants. Parameters may come in the query string, a form
    /// or JSON body, and client credentials as HTTP Basic.
    #[oai(path = "/oauth/token", method = "post", operation_id = "token")]
    async fn token(&self, _body: TokenBody) -> TokenResponse {
        never()
    }

    /// Same as `/oauth/token` (Casdoor's route).
    #[oai(
        path = "/api/login/oauth/access_token",
        method = "post",
        operation_id = "token-casdoor"
    )]
    async fn token_casdoor(&self, _body: TokenBody) -> TokenResponse {
        never()
    }

    /// Same as `/oauth/token`.
    #[oai(
        path = "/login/oauth/access_token",
        method = "post",
        operation_id = "token-login"
    )]
    async fn token_login(&self, _body: TokenBody) -> TokenResponse {
        never()
    }

    /// Same as `/oauth/token`.
    #[oai(
        path = "/oauth/access_token",
        method = "post",
        operation_id = "token-access"
    )]
    async fn token_access(&self, _body: TokenBody) -> TokenResponse {
        never()
    }

    /// Casdoor's refresh route: the `refresh_token` grant.
    #[oai(
        path = "/api/login/oauth/refresh_token",
        method = "post",
        operation_id = "refresh-token"
    )]
    async fn refresh(&self, _body: TokenBody) -> TokenResponse {
        never()
    }

    /// Revokes a token (RFC 7009); a refresh token takes its whole chain with it.
    #[oai(path = "/oauth/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(&self, _body: RevokeBody) -> RevokeResponse {
        never()
    }

    /// Same as `/oauth/revoke`.
    #[oai(
        path = "/api/login/oauth/revoke",
        method = "post",
        operation_id = "revoke-casdoor"
    )]
    async fn revoke_casdoor(&self, _body: RevokeBody) -> RevokeResponse {
        never()
    }

    /// Token introspection (RFC 7662) for authenticated clients.
    #[oai(
        path = "/api/login/oauth/introspect",
        method = "post",
        operation_id = "introspect"
    )]
    async fn introspect(&self, _body: RevokeBody) -> IntrospectResponse {
        never()
    }
}

#[derive(Object, Default, serde::Deserialize)]
pub struct RevokeParams {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(ApiRequest)]
pub enum RevokeBody {
    Form(Form<RevokeParams>),
    Json(Json<RevokeParams>),
}

#[derive(Default)]
pub struct DiscoveryDocs;

#[OpenApi(tag = "Tag::Discovery")]
impl DiscoveryDocs {
    /// OpenID Connect discovery.
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openid-configuration"
    )]
    async fn openid_configuration(&self) -> DocumentResponse {
        never()
    }

    /// The public keys of every cert: `kid`, `alg`, `use`, `x5c`.
    #[oai(path = "/.well-known/jwks", method = "get", operation_id = "jwks")]
    async fn jwks(&self) -> DocumentResponse {
        never()
    }
}

#[derive(Default)]
pub struct UserDocs;

#[OpenApi(tag = "Tag::Users")]
impl UserDocs {
    /// OIDC userinfo of a Bearer token.
    #[oai(path = "/api/userinfo", method = "get", operation_id = "userinfo")]
    async fn userinfo(&self, _auth: BearerAuth) -> UserInfoAnswer {
        never()
    }

    /// Same as `/api/userinfo`.
    #[oai(
        path = "/oauth/userinfo",
        method = "get",
        operation_id = "userinfo-oauth"
    )]
    async fn userinfo_oauth(&self, _auth: BearerAuth) -> UserInfoAnswer {
        never()
    }

    /// The caller's user (`data`) and organization (`data2`). Mints nothing.
    #[oai(
        path = "/api/get-account",
        method = "get",
        operation_id = "get-account"
    )]
    async fn get_account(&self, _auth: ApiAuth) -> AccountAnswer {
        never()
    }

    /// Updates a user: `?id=owner/name`, else the body's `owner`+`name`, else the caller. A user
    /// may change only self-service fields of themself; `columns` limits the fields. The body is
    /// JSON whatever the Content-Type.
    #[oai(
        path = "/api/update-user",
        method = "post",
        operation_id = "update-user"
    )]
    async fn update_user(
        &self,
        _auth: ApiAuth,
        id: Query<Option<String>>,
        columns: Query<Option<String>>,
        _body: Json<UserBody>,
    ) -> ApiAnswer {
        let _ = (id, columns);
        never()
    }

    /// A user you may see (yourself, or users you administer); `data: null` when absent.
    #[oai(path = "/api/get-user", method = "get", operation_id = "get-user")]
    async fn get_user(&self, _auth: ApiAuth, id: Query<String>) -> ApiAnswer {
        let _ = id;
        never()
    }

    /// The users of an organization you administer.
    #[oai(path = "/api/get-users", method = "get", operation_id = "get-users")]
    async fn get_users(&self, _auth: ApiAuth, owner: Query<String>) -> ApiAnswer {
        let _ = owner;
        never()
    }

    /// Adds a user to an organization you administer.
    #[oai(
        path = "/api/add-user",
        method = "post",
        operation_id = "add-user",
        tag = "Tag::Management"
    )]
    async fn add_user(&self, _auth: ApiAuth, _body: Json<UserBody>) -> ApiAnswer {
        never()
    }

    /// Deletes a user of an organization you administer (`?id=`, else the body's owner/name).
    #[oai(
        path = "/api/delete-user",
        method = "post",
        operation_id = "delete-user",
        tag = "Tag::Management"
    )]
    async fn delete_user(
        &self,
        _auth: ApiAuth,
        id: Query<Option<String>>,
        _body: Json<UserBody>,
    ) -> ApiAnswer {
        let _ = id;
        never()
    }
}

macro_rules! management_docs {
    ($docs:ident, $body:ty, $list_param:literal,
     $list:literal, $list_op:literal, $get:literal, $get_op:literal, $add:literal, $add_op:literal,
     $update:literal, $update_op:literal, $delete:literal, $delete_op:literal) => {
        #[derive(Default)]
        pub struct $docs;

        #[OpenApi(tag = "Tag::Management")]
        impl $docs {
            /// Lists them (global administrators).
            #[oai(path = $list, method = "get", operation_id = $list_op)]
            async fn list(
                &self,
                _auth: ApiAuth,
                #[oai(name = $list_param)] filter: Query<Option<String>>,
            ) -> ApiAnswer {
                let _ = filter;
                never()
            }

            /// One of them by `id=owner/name`; `data: null` when absent.
            #[oai(path = $get, method = "get", operation_id = $get_op)]
            async fn get(&self, _auth: ApiAuth, id: Query<String>) -> ApiAnswer {
                let _ = id;
                never()
            }

            /// Adds one; every bad field is a 400 naming it, and nothing is half-written.
            #[oai(path = $add, method = "post", operation_id = $add_op)]
            async fn add(&self, _auth: ApiAuth, _body: Json<$body>) -> ApiAnswer {
                never()
            }

            /// Updates one (`?id=`, else the body's owner/name); `***` keeps a stored secret.
            #[oai(path = $update, method = "post", operation_id = $update_op)]
            async fn update(
                &self,
                _auth: ApiAuth,
                id: Query<Option<String>>,
                _body: Json<$body>,
            ) -> ApiAnswer {
                let _ = id;
                never()
            }

            /// Deletes one (`?id=`, else the body's owner/name); 409 while it is still in use.
            #[oai(path = $delete, method = "post", operation_id = $delete_op)]
            async fn delete(
                &self,
                _auth: ApiAuth,
                id: Query<Option<String>>,
                _body: Json<$body>,
            ) -> ApiAnswer {
                let _ = id;
                never()
            }
        }
    };
}

management_docs!(
    OrganizationDocs,
    OrganizationBody,
    "owner",
    "/api/get-organizations",
    "get-organizations",
    "/api/get-organization",
    "get-organization",
    "/api/add-organization",
    "add-organization",
    "/api/update-organization",
    "update-organization",
    "/api/delete-organization",
    "delete-organization"
);
management_docs!(
    ApplicationDocs,
    ApplicationBody,
    "organization",
    "/api/get-applications",
    "get-applications",
    "/api/get-application",
    "get-application",
    "/api/add-application",
    "add-application",
    "/api/update-application",
    "update-application",
    "/api/delete-application",
    "delete-application"
);
management_docs!(
    ProviderDocs,
    ProviderBody,
    "owner",
    "/api/get-providers",
    "get-providers",
    "/api/get-provider",
    "get-provider",
    "/api/add-provider",
    "add-provider",
    "/api/update-provider",
    "update-provider",
    "/api/delete-provider",
    "delete-provider"
);
management_docs!(
    CertDocs,
    CertBody,
    "owner",
    "/api/get-certs",
    "get-certs",
    "/api/get-cert",
    "get-cert",
    "/api/add-cert",
    "add-cert",
    "/api/update-cert",
    "update-cert",
    "/api/delete-cert",
    "delete-cert"
);
