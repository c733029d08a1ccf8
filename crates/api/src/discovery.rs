//! OpenID Connect discovery and the JWKS (SPEC §6).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use serde_json::json;

use crate::errors::{AnyJson, Failure, Reply};
use crate::state::AppState;
use crate::tags::Tag;

pub struct DiscoveryApi;

#[OpenApi(tag = "Tag::Discovery")]
impl DiscoveryApi {
    /// OpenID Connect discovery. Only endpoints this server serves are named.
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openid-configuration"
    )]
    async fn openid_configuration(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<Reply<AnyJson>, Failure> {
        let iss = state.origin.clone();
        Ok(Reply::json(&json!({
            "issuer": iss,
            "token_endpoint": format!("{iss}/api/login/oauth/access_token"),
            "userinfo_endpoint": format!("{iss}/api/userinfo"),
            "jwks_uri": format!("{iss}/.well-known/jwks"),
            "introspection_endpoint": format!("{iss}/api/login/oauth/introspect"),
            "revocation_endpoint": format!("{iss}/api/login/oauth/revoke"),
            "response_types_supported": ["token", "id_token"],
            "grant_types_supported": ["password", "client_credentials", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone", "offline_access"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "name", "preferred_username", "picture", "nonce"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "request_parameter_supported": false,
        })))
    }

    /// The public keys of every cert: `kid`, `alg`, `use`, `x5c`.
    #[oai(path = "/.well-known/jwks", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&Arc<AppState>>) -> Result<Reply<AnyJson>, Failure> {
        let keys = state.iam.jwks().await?;
        Ok(Reply::json(&json!({ "keys": keys })))
    }
}
