//! Extractors for what Casdoor's clients send, implementing poem-openapi's extractor trait so the
//! operations that use them are routed and described at once:
//!
//! - [`Caller`]: a Bearer token (header, or `access_token`/`accessToken` in the query), or an
//!   application's client credentials (HTTP Basic, or `clientId`/`clientSecret` in the query).
//! - [`Params`]: the token endpoint's parameters from the query string, a form or a JSON body
//!   (whatever the Content-Type says), client credentials from HTTP Basic too.
//! - [`LaxJson`]: a JSON object body whatever the Content-Type (Casdoor's Python SDK sends none),
//!   an empty body being `{}`; turned into its wire type only when the handler asks, so
//!   authorization is decided before a body's fields are judged.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use base64::Engine;
use iam_domain::Error;
use iam_domain::oauth::OAuthError;
use iam_domain::ports::Claims;
use iam_domain::service::Principal;
use poem::http::header;
use poem::{Request, RequestBody};
use poem_openapi::auth::{ApiKey, Basic, Bearer};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::errors::{Failure, OAuthFailure};
use crate::state::AppState;

/// Request bodies above this are refused: nothing we accept is anywhere near it.
pub const MAX_BODY: usize = 64 * 1024;

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

fn state(req: &Request) -> Result<&Arc<AppState>, Failure> {
    req.data::<Arc<AppState>>()
        .ok_or_else(|| Failure(Error::Internal("the application state is missing".into())))
}

pub fn query_map(req: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// HTTP Basic credentials, percent-decoded as RFC 6749 §2.3.1 asks.
pub fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.header(header::AUTHORIZATION)?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|(_, v)| v)
            .unwrap_or_else(|| s.to_owned())
    };
    Some((dec(id), dec(secret)))
}

pub fn bearer_token(req: &Request) -> Option<String> {
    if let Some(v) = req.header(header::AUTHORIZATION)
        && let Some((scheme, rest)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        let t = rest.trim();
        return (!t.is_empty()).then(|| t.to_owned());
    }
    let q = query_map(req);
    q.get("access_token")
        .or_else(|| q.get("accessToken"))
        .filter(|t| !t.is_empty())
        .cloned()
}

/// Who is calling an `/api` route; the claims when it was a Bearer token. With `BEARER_ONLY`
/// (OIDC userinfo) client credentials do not count.
pub struct Authenticated<const BEARER_ONLY: bool> {
    pub principal: Principal,
    pub claims: Option<Claims>,
}

/// A Bearer token, HTTP Basic, or `clientId`/`clientSecret` in the query.
pub type Caller = Authenticated<false>;
/// A Bearer token only.
pub type BearerCaller = Authenticated<true>;

impl<const BEARER_ONLY: bool> Authenticated<BEARER_ONLY> {
    async fn from(req: &Request) -> Result<Self, Failure> {
        let who = Self::identify(req).await?;
        // Who made a recorded write (see `records::audit`).
        if let Some(slot) = req.extensions().get::<crate::records::CallerSlot>()
            && let Ok(mut s) = slot.0.lock()
        {
            *s = Some(who.principal.clone());
        }
        Ok(who)
    }

    async fn identify(req: &Request) -> Result<Self, Failure> {
        let state = state(req)?;
        let of = |principal, claims| Self { principal, claims };
        if let Some(token) = bearer_token(req) {
            let iss = state.origin.clone();
            let (p, claims) = state.iam.authenticate_bearer(&token, Some(&iss)).await?;
            return Ok(of(p, Some(claims)));
        }
        if BEARER_ONLY {
            return Err(Failure(Error::Unauthenticated(
                "a Bearer token is required".into(),
            )));
        }
        let q = query_map(req);
        let credentials = basic_credentials(req).or_else(|| {
            q.get("clientId")
                .zip(q.get("clientSecret"))
                .map(|(id, secret)| (id.clone(), secret.clone()))
        });
        match credentials {
            Some((id, secret)) => {
                // Client secrets are guessed here as at the token endpoint: the same per-address
                // limit.
                crate::ratelimit::check(state, req).map_err(|e| Failure(e.into()))?;
                Ok(of(state.iam.authenticate_app(&id, &secret).await?, None))
            }
            None => Err(Failure(Error::Unauthenticated(
                "Please sign in first".into(),
            ))),
        }
    }
}

impl<'a, const BEARER_ONLY: bool> ApiExtractor<'a> for Authenticated<BEARER_ONLY> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        BearerAuth::register(registry);
        if !BEARER_ONLY {
            BasicAuth::register(registry);
            ClientIdQuery::register(registry);
        }
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut v = BearerAuth::security_schemes();
        if !BEARER_ONLY {
            v.extend(BasicAuth::security_schemes());
            v.extend(ClientIdQuery::security_schemes());
        }
        v
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Self::from(req).await.map_err(Failure::into_poem)
    }
}

/// The body, refused past [`MAX_BODY`] (`Error::TooLarge`) or when the client broke it off.
async fn read_body(body: &mut RequestBody) -> Result<Vec<u8>, Error> {
    match body.take() {
        Ok(b) => b
            .into_bytes_limit(MAX_BODY)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => Error::TooLarge(format!(
                    "the request body is larger than {} KiB",
                    MAX_BODY / 1024
                )),
                other => Error::Invalid(format!("cannot read the request body: {other}")),
            }),
        Err(_) => Ok(Vec::new()),
    }
}

/// The text fields of a multipart body already read (within the body limit).
async fn multipart_fields(
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<Vec<(String, String)>, OAuthError> {
    let bad = |e: poem::Error| {
        OAuthError::invalid_request(format!("the multipart body cannot be read: {e}"))
    };
    let (req, mut body) = Request::builder()
        .content_type(content_type)
        .body(bytes)
        .split();
    let mut parts = <poem::web::Multipart as poem::FromRequest>::from_request(&req, &mut body)
        .await
        .map_err(bad)?;
    let mut fields = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(|e| bad(e.into()))? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let text = field.text().await.map_err(|e| bad(e.into()))?;
        fields.push((name, text));
    }
    Ok(fields)
}

/// A JSON body's parameter as text: a number or a boolean as written. A nested object or array
/// is no parameter: Casdoor's SDKs post a whole user (`address: []`, `properties: {}`) to
/// `check-user-password`, of which only the password is read.
fn value_text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The parameters of a token-style request, `T` being their documented shape: the query string,
/// then a form body; a JSON body fills only what is still missing; HTTP Basic supplies client
/// credentials when none were sent.
pub struct Params<T> {
    map: HashMap<String, String>,
    shape: PhantomData<fn() -> T>,
}

impl<T> Params<T> {
    /// A parameter, `""` when not sent.
    pub fn get(&self, key: &str) -> &str {
        self.map.get(key).map(String::as_str).unwrap_or_default()
    }

    async fn read(req: &Request, body: &mut RequestBody) -> Result<Self, OAuthError> {
        let mut p = query_map(req);
        let bytes = read_body(body)
            .await
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| OAuthError::invalid_request("the request body is not UTF-8"))?
            .trim();
        if text.starts_with('{') || text.starts_with('[') {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                OAuthError::invalid_request(format!("the request body is not valid JSON: {e}"))
            })?;
            let Value::Object(v) = v else {
                return Err(OAuthError::invalid_request(
                    "the JSON body must be an object of parameters",
                ));
            };
            for (k, v) in v {
                if let Some(s) = value_text(v)
                    && p.get(&k).is_none_or(String::is_empty)
                {
                    p.insert(k, s);
                }
            }
        } else if let Some(ct) = req
            .content_type()
            .filter(|ct| ct.starts_with("multipart/form-data"))
        {
            // Casdoor's Python SDK posts forms as multipart (`set-password`, …).
            p.extend(multipart_fields(ct, bytes).await?);
        } else if !text.is_empty() {
            let form: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|e| {
                OAuthError::invalid_request(format!("the request body is not form-encoded: {e}"))
            })?;
            p.extend(form);
        }
        let missing = |k: &str| p.get(k).is_none_or(String::is_empty);
        if missing("client_id")
            && missing("client_secret")
            && let Some((id, secret)) = basic_credentials(req)
        {
            p.insert("client_id".into(), id);
            p.insert("client_secret".into(), secret);
        }
        Ok(Self {
            map: p,
            shape: PhantomData,
        })
    }
}

fn body_meta<T: Type>(content_types: &[&'static str], required: bool) -> Option<MetaRequest> {
    Some(MetaRequest {
        description: None,
        content: content_types
            .iter()
            .map(|ct| MetaMediaType {
                content_type: ct,
                schema: T::schema_ref(),
            })
            .collect(),
        required,
    })
}

impl<'a, T: Type> ApiExtractor<'a> for Params<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    /// Described as required: RFC 6749 and 7009 put these parameters in the body (the query
    /// string is read too, for Casdoor's clients).
    fn request_meta() -> Option<MetaRequest> {
        body_meta::<T>(
            &["application/x-www-form-urlencoded", "application/json"],
            true,
        )
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Self::read(req, body)
            .await
            .map_err(|e| OAuthFailure(e).into_poem())
    }
}

/// [`Params`] for an `/api` route: the query, then a form or JSON body, whatever the
/// Content-Type (Casdoor's SDKs post some routes as forms); a body that cannot be read answers
/// in Casdoor's envelope.
pub struct FormParams<T>(pub Params<T>);

impl<T> FormParams<T> {
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key)
    }
}

impl<'a, T: Type> ApiExtractor<'a> for FormParams<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        body_meta::<T>(
            &["application/x-www-form-urlencoded", "application/json"],
            false,
        )
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Params::read(req, body)
            .await
            .map(Self)
            .map_err(|e| Failure(Error::Invalid(e.description)).into_poem())
    }
}

/// A JSON object body whatever the Content-Type; `T` is the shape the spec describes and `W`
/// the wire type it is read as (the same, unless the spec can say more than one struct, as
/// "one of these two shapes"). `REQUIRED` says the spec calls the body required; an absent
/// body is still read as `{}`, and the route's own rules say what it lacks.
pub struct LaxJson<T, W = T, const REQUIRED: bool = false> {
    object: Map<String, Value>,
    shape: PhantomData<fn() -> (T, W)>,
}

/// A body the spec calls required: what adds and updates take.
pub type Required<T> = LaxJson<T, T, true>;

impl<T, W: DeserializeOwned, const REQUIRED: bool> LaxJson<T, W, REQUIRED> {
    /// The body as its wire type; a bad field is a 400 naming it.
    pub fn parse(&self) -> Result<W, Failure> {
        iam_wire::from_json(Value::Object(self.object.clone()))
            .map_err(|e| Failure(Error::Invalid(e)))
    }
}

impl<'a, T: Type, W, const REQUIRED: bool> ApiExtractor<'a> for LaxJson<T, W, REQUIRED> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        body_meta::<T>(&["application/json"], REQUIRED)
    }

    async fn from_request(
        _req: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let bytes = read_body(body).await.map_err(|e| Failure(e).into_poem())?;
        let object = if bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(
                        Failure(Error::invalid("the request body must be a JSON object"))
                            .into_poem(),
                    );
                }
                Err(e) => {
                    return Err(Failure(Error::Invalid(format!(
                        "the request body is not valid JSON: {e}"
                    )))
                    .into_poem());
                }
            }
        };
        Ok(Self {
            object,
            shape: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        let creds = base64::engine::general_purpose::STANDARD.encode("my%20id:s%3Acret");
        let req = Request::builder()
            .header("authorization", format!("Basic {creds}"))
            .finish();
        assert_eq!(
            basic_credentials(&req),
            Some(("my id".into(), "s:cret".into()))
        );
        let req = Request::builder()
            .header("authorization", "Bearer abc")
            .finish();
        assert_eq!(bearer_token(&req).as_deref(), Some("abc"));
        let req = Request::builder()
            .uri("/x?accessToken=t1".parse().unwrap())
            .finish();
        assert_eq!(bearer_token(&req).as_deref(), Some("t1"));
    }
}
