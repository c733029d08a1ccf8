//! The one place errors become HTTP: the domain's [`Error`] as Casdoor's `/api` envelope with a
//! real status, and [`OAuthError`] as RFC 6749's `{"error","error_description"}`. Both are
//! poem-openapi responses, so every operation documents exactly what it can answer.

use std::marker::PhantomData;

use iam_domain::Error;
use iam_domain::oauth::{OAuthError, OAuthErrorKind};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde_json::{Value, json};

/// Casdoor's envelope of every `/api` answer (the schema; answers are written by [`envelope`]).
#[derive(Object)]
pub struct Envelope {
    /// `ok` or `error`.
    pub status: String,
    pub msg: String,
    pub data: Option<Value>,
    pub data2: Option<Value>,
}

/// RFC 6749 §5.2.
#[derive(Object)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`,
    /// `temporarily_unavailable`, `server_error`, `slow_down`.
    pub error: String,
    pub error_description: String,
}

pub fn json_response(status: StatusCode, value: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(value.to_string())
}

/// Casdoor's envelope for a success.
pub fn envelope(data: Value, data2: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"status": "ok", "msg": "", "data": data, "data2": data2}),
    )
}

fn media<T: Type>() -> Vec<MetaMediaType> {
    vec![MetaMediaType {
        content_type: "application/json; charset=utf-8",
        schema: T::schema_ref(),
    }]
}

fn text_header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.into(),
        description: Some(description.into()),
        required: false,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

fn meta(status: u16, description: &'static str, content: Vec<MetaMediaType>) -> MetaResponse {
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content,
        headers: vec![],
    }
}

/// A success: 200 with a JSON body whose schema is `S`. It also answers poem-openapi's own parse
/// failures (a parameter of the wrong type, a missing one) in the envelope, as the operation's
/// bad-request handler.
pub struct Reply<S = Envelope> {
    response: Response,
    schema: PhantomData<fn() -> S>,
}

impl<S> Reply<S> {
    pub fn new(response: Response) -> Self {
        Self {
            response,
            schema: PhantomData,
        }
    }

    pub fn json(value: &Value) -> Self {
        Self::new(json_response(StatusCode::OK, value))
    }
}

impl Reply<Envelope> {
    pub fn ok(data: Value, data2: Value) -> Self {
        Self::new(envelope(data, data2))
    }

    /// Casdoor's answer to a write: `data: "Affected"` or `"Unaffected"`.
    pub fn affected(changed: bool) -> Self {
        Self::ok(
            json!(if changed { "Affected" } else { "Unaffected" }),
            Value::Null,
        )
    }
}

impl<S: Send> IntoResponse for Reply<S> {
    fn into_response(self) -> Response {
        self.response
    }
}

impl<S: Type + Send> ApiResponse for Reply<S> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![meta(200, "Success", media::<S>())],
        }
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        Self::new(rejection(err).into_response())
    }
}

/// What an extractor's or poem-openapi's refusal means in the envelope: our own failures pass
/// through as they were made, anything else is bad input.
fn rejection(err: poem::Error) -> Failure {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.clone();
    }
    Failure(Error::Invalid(err.to_string()))
}

/// A failed `/api` call, in the envelope with its status (and `WWW-Authenticate` on 401,
/// `Retry-After` on 503).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub Error);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<iam_domain::StoreError> for Failure {
    fn from(e: iam_domain::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<iam_domain::values::InvalidValue> for Failure {
    fn from(e: iam_domain::values::InvalidValue) -> Self {
        Self(e.into())
    }
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// For extractors: a poem error that [`Reply`]'s bad-request handler turns back into this.
    pub fn into_poem(self) -> poem::Error {
        let status = self.status();
        poem::Error::new(self, status)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        }
        let mut resp = json_response(
            status,
            &json!({"status": "error", "msg": self.0.to_string(), "data": null, "data2": null}),
        );
        let h = resp.headers_mut();
        match &self.0 {
            Error::Unauthenticated(_) => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::Unavailable { retry_after, .. } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<Failure> for poem::Error {
    fn from(f: Failure) -> Self {
        poem::Error::from_response(f.into_response())
    }
}

impl ApiResponse for Failure {
    fn meta() -> MetaResponses {
        let e = media::<Envelope>;
        let mut unauthorized = meta(
            401,
            "Not signed in, or the token or client credentials are invalid",
            e(),
        );
        unauthorized.headers = vec![text_header("WWW-Authenticate", "`Bearer`")];
        let mut unavailable = meta(503, "The database is unavailable", e());
        unavailable.headers = vec![text_header("Retry-After", "Seconds to wait")];
        MetaResponses {
            responses: vec![
                meta(400, "Bad input; `msg` names the field", e()),
                unauthorized,
                meta(403, "Signed in, but not allowed", e()),
                meta(404, "The object does not exist", e()),
                meta(409, "The object exists already, or is still in use", e()),
                meta(500, "A fault of the server", e()),
                unavailable,
            ],
        }
    }

    fn register(registry: &mut Registry) {
        Envelope::register(registry);
    }
}

/// The status of an RFC 6749 error.
fn oauth_status(kind: OAuthErrorKind) -> StatusCode {
    match kind {
        OAuthErrorKind::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthErrorKind::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        OAuthErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthErrorKind::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Every token-endpoint answer, success or error, must not be cached (RFC 6749 §5.1).
pub fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A failed token-endpoint call (RFC 6749 §5.2).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct OAuthFailure(pub OAuthError);

impl From<OAuthError> for OAuthFailure {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl OAuthFailure {
    pub fn into_poem(self) -> poem::Error {
        let status = oauth_status(self.0.kind);
        poem::Error::new(self, status)
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = oauth_status(e.kind);
        if status.is_server_error() {
            tracing::warn!(error = e.kind.code(), description = %e.description, "token request failed");
        }
        let mut resp = json_response(
            status,
            &json!({"error": e.kind.code(), "error_description": e.description}),
        );
        let h = resp.headers_mut();
        if e.kind == OAuthErrorKind::InvalidClient {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"OAuth2\""),
            );
        }
        if let Some(secs) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        no_store(resp)
    }
}

impl From<OAuthFailure> for poem::Error {
    fn from(f: OAuthFailure) -> Self {
        poem::Error::from_response(f.into_response())
    }
}

impl ApiResponse for OAuthFailure {
    fn meta() -> MetaResponses {
        let e = media::<OAuthErrorBody>;
        let mut invalid_client = meta(
            401,
            "`invalid_client`, with `WWW-Authenticate: Basic realm=\"OAuth2\"`",
            e(),
        );
        invalid_client.headers = vec![text_header("WWW-Authenticate", "`Basic realm=\"OAuth2\"`")];
        let mut too_many = meta(429, "`slow_down`: too many requests from this address", e());
        too_many.headers = vec![text_header("Retry-After", "Seconds to wait")];
        let mut unavailable = meta(
            503,
            "`temporarily_unavailable`: WeChat or the database is unavailable",
            e(),
        );
        unavailable.headers = vec![text_header("Retry-After", "Seconds to wait")];
        MetaResponses {
            responses: vec![
                meta(
                    400,
                    "`invalid_request`, `invalid_grant`, `unsupported_grant_type`",
                    e(),
                ),
                invalid_client,
                too_many,
                meta(
                    500,
                    "`server_error`: the WeChat provider is misconfigured",
                    e(),
                ),
                unavailable,
            ],
        }
    }

    fn register(registry: &mut Registry) {
        OAuthErrorBody::register(registry);
    }
}

/// A token-endpoint success (`Cache-Control: no-store`); parse failures answer `invalid_request`.
pub struct OAuthReply<S> {
    response: Response,
    schema: PhantomData<fn() -> S>,
}

impl<S> OAuthReply<S> {
    pub fn json(value: &Value) -> Self {
        Self {
            response: no_store(json_response(StatusCode::OK, value)),
            schema: PhantomData,
        }
    }
}

impl<S: Send> IntoResponse for OAuthReply<S> {
    fn into_response(self) -> Response {
        self.response
    }
}

impl<S: Type + Send> ApiResponse for OAuthReply<S> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![meta(
                200,
                "Success. `Cache-Control: no-store`",
                media::<S>(),
            )],
        }
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        let failure = match err.downcast_ref::<OAuthFailure>() {
            Some(f) => f.clone(),
            None => OAuthFailure(OAuthError::invalid_request(err.to_string())),
        };
        Self {
            response: failure.into_response(),
            schema: PhantomData,
        }
    }
}

/// Schema marker for answers whose shape is any JSON value (discovery documents, `{}`).
pub type AnyJson = Value;
