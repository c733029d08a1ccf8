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

/// `value` as a JSON body, serialized straight into the body's bytes: a token answer was copied
/// into a `Value` and then written through `Display`, the formatter's string adapter (1.7% of
/// the server's CPU in a profile of the slowed-WeChat drill, whose answers carry three tokens).
pub fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        // Only a map with non-string keys fails; none of ours has one.
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an answer");
            let body = json!({"status": "error", "msg": "cannot encode the answer"});
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                body.to_string().into_bytes(),
            )
        }
    };
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body)
}

fn media<T: Type>() -> Vec<MetaMediaType> {
    vec![MetaMediaType {
        content_type: "application/json; charset=utf-8",
        schema: T::schema_ref(),
    }]
}

/// Documented answers: status, description and the header it carries, if any.
fn responses<T: Type>(rows: &[(u16, &'static str, Option<&str>)]) -> MetaResponses {
    MetaResponses {
        responses: rows
            .iter()
            .map(|(status, description, header)| MetaResponse {
                description,
                status: Some(*status),
                status_range: None,
                content: media::<T>(),
                headers: header
                    .iter()
                    .map(|h| MetaHeader {
                        name: (*h).into(),
                        description: None,
                        required: false,
                        deprecated: false,
                        schema: String::schema_ref(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A refusal as its family writes it: how an extractor's or poem-openapi's own error reads.
pub trait Rejection: IntoResponse + std::error::Error + Clone + Send + Sync + 'static {
    /// Bad input in this family's words.
    fn bad_input(message: String) -> Self;
}

fn rejection<F: Rejection>(err: poem::Error) -> F {
    if let Some(f) = err.downcast_ref::<F>() {
        return f.clone();
    }
    // A parameter is named first, as every other bad value is: `id: must be of the form
    // owner/name`, not poem-openapi's `failed to parse parameter `id`: failed to parse
    // "ObjectId": … (occurred while parsing "optional_ObjectId")`.
    if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        let reason = e
            .reason
            .strip_prefix("failed to parse \"")
            .and_then(|r| r.split_once("\": "))
            .map_or(e.reason.as_str(), |(_, r)| r);
        let reason = reason
            .rsplit_once(" (occurred while parsing \"")
            .map_or(reason, |(r, _)| r);
        // A required parameter not sent: `Type "ObjectId" expects an input value.`
        if reason.ends_with("expects an input value.") {
            return F::bad_input(format!("{}: is required", e.name));
        }
        return F::bad_input(format!("{}: {}", e.name, validator_words(reason)));
    }
    F::bad_input(err.to_string())
}

/// A schema validator's refusal in words (`verification failed. maxLength(100)` is "must be at
/// most 100 characters"); any other reason as it is.
fn validator_words(reason: &str) -> String {
    let Some(rule) = reason.strip_prefix("verification failed. ") else {
        return reason.to_owned();
    };
    let arg = |name: &str| {
        rule.strip_prefix(name)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
    };
    let bound = |a: &str| a.split(',').next().unwrap_or(a).trim().to_owned();
    if let Some(n) = arg("maxLength") {
        format!("must be at most {n} characters")
    } else if let Some(n) = arg("minLength") {
        format!("must be at least {n} characters")
    } else if let Some(a) = arg("maximum") {
        format!("must be at most {}", bound(a))
    } else if let Some(a) = arg("minimum") {
        format!("must be at least {}", bound(a))
    } else if let Some(p) = arg("pattern") {
        format!("must match {}", p.trim_matches('"'))
    } else {
        reason.to_owned()
    }
}

/// A success: 200 with a JSON body whose schema is `S`. As the operation's bad-request handler
/// it also answers poem-openapi's own parse failures (a parameter of the wrong type, a missing
/// one) and the extractors' refusals, in the words of `F`: the `/api` envelope or RFC 6749.
pub struct Reply<S = Envelope, F = Failure> {
    response: Response,
    schema: PhantomData<fn() -> (S, F)>,
}

impl<S, F> Reply<S, F> {
    pub fn json(value: &impl serde::Serialize) -> Self {
        Self {
            response: json_response(StatusCode::OK, value),
            schema: PhantomData,
        }
    }
}

/// Casdoor's success envelope around any `data` and `data2`, written straight into the body.
#[derive(serde::Serialize)]
struct Success<D, D2> {
    status: &'static str,
    msg: &'static str,
    data: D,
    data2: D2,
}

impl Reply {
    pub fn ok(data: Value, data2: Value) -> Self {
        Self::success(data, data2)
    }

    /// `ok` for anything serializable, with no JSON tree built in between.
    pub fn success(data: impl serde::Serialize, data2: impl serde::Serialize) -> Self {
        Self::json(&Success {
            status: "ok",
            msg: "",
            data,
            data2,
        })
    }

    /// A list as Casdoor answers one: `data` the objects as `render` shows them, `data2` how
    /// many there are in all (more than `items` when it is a page).
    pub fn list<'a, T, V: serde::Serialize>(
        items: &'a [T],
        render: impl Fn(&'a T) -> V,
        total: impl serde::Serialize,
    ) -> Self {
        Self::success(iam_wire::each(items, render), total)
    }

    /// Casdoor's answer to a write: `data: "Affected"` or `"Unaffected"`.
    pub fn affected(changed: bool) -> Self {
        Self::ok(
            json!(if changed { "Affected" } else { "Unaffected" }),
            Value::Null,
        )
    }

    /// A write that ended `n` things: `Affected` when any, and `data2` = how many.
    pub fn affected_count(n: usize) -> Self {
        Self::ok(
            json!(if n > 0 { "Affected" } else { "Unaffected" }),
            json!(n),
        )
    }
}

/// A token-endpoint success: never cached (RFC 6749 §5.1).
pub type OAuthReply<S> = Reply<S, OAuthFailure>;

impl<S> Reply<S, OAuthFailure> {
    pub fn token(value: &impl serde::Serialize) -> Self {
        let mut r = Self::json(value);
        r.response = no_store(r.response);
        r
    }
}

impl<S: Send, F: Send> IntoResponse for Reply<S, F> {
    fn into_response(self) -> Response {
        self.response
    }
}

impl<S: Type + Send, F: Rejection> ApiResponse for Reply<S, F> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        responses::<S>(&[(200, "Success", None)])
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        Self {
            response: rejection::<F>(err).into_response(),
            schema: PhantomData,
        }
    }
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

/// The status of a domain error, as the domain gives it.
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        status_of(&self.0)
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
            Error::InvalidToken(why) => {
                h.insert(header::WWW_AUTHENTICATE, invalid_token_challenge(why));
            }
            Error::Unavailable { retry_after, .. } | Error::TooManyRequests { retry_after, .. } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// RFC 6750 §3: a token was sent and refused, so the challenge says `invalid_token` (a client
/// refreshes or signs in again) and why, in the characters a quoted-string allows.
fn invalid_token_challenge(why: &str) -> HeaderValue {
    let why: String = why
        .chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => ' ',
        })
        .collect();
    HeaderValue::from_str(&format!(
        "Bearer error=\"invalid_token\", error_description=\"{why}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

impl From<Failure> for poem::Error {
    fn from(f: Failure) -> Self {
        poem::Error::from_response(f.into_response())
    }
}

impl Rejection for Failure {
    fn bad_input(message: String) -> Self {
        Self(Error::Invalid(message))
    }
}

impl ApiResponse for Failure {
    fn meta() -> MetaResponses {
        responses::<Envelope>(&[
            (400, "Bad input; `msg` names the field", None),
            (
                401,
                "Not signed in, or the credentials are invalid",
                Some("WWW-Authenticate"),
            ),
            (403, "Signed in, but not allowed", None),
            (404, "The object does not exist", None),
            (409, "The object exists already, or is still in use", None),
            (413, "The request body is larger than 64 KiB", None),
            (500, "A fault of the server", None),
            (503, "The database is unavailable", Some("Retry-After")),
        ])
    }

    fn register(registry: &mut Registry) {
        Envelope::register(registry);
    }
}

/// The status of an RFC 6749 error, as the domain gives it.
fn oauth_status(kind: OAuthErrorKind) -> StatusCode {
    u16::try_from(kind.status())
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

impl Rejection for OAuthFailure {
    fn bad_input(message: String) -> Self {
        Self(OAuthError::invalid_request(message))
    }
}

impl ApiResponse for OAuthFailure {
    fn meta() -> MetaResponses {
        responses::<OAuthErrorBody>(&[
            (
                400,
                "`invalid_request`, `invalid_grant`, `unsupported_grant_type`",
                None,
            ),
            (401, "`invalid_client`", Some("WWW-Authenticate")),
            (
                429,
                "`slow_down`: too many requests from this address",
                Some("Retry-After"),
            ),
            (
                500,
                "`server_error`: the WeChat provider is misconfigured",
                None,
            ),
            (
                503,
                "`temporarily_unavailable`: WeChat or the database is down",
                Some("Retry-After"),
            ),
        ])
    }

    fn register(registry: &mut Registry) {
        OAuthErrorBody::register(registry);
    }
}

/// Schema marker for answers whose shape is any JSON value (discovery documents, `{}`).
pub type AnyJson = Value;

#[cfg(test)]
mod tests {
    use super::*;

    /// poem-openapi's own wording of a refused parameter reads as our other refusals do. The
    /// reasons are poem-openapi's own, made as its query extractor makes them.
    #[test]
    fn a_refused_parameter_is_named_first() {
        use poem_openapi::types::ParseFromParameter;
        let refused = |name: &'static str, reason: String| -> String {
            let raw = poem_openapi::error::ParseParamError { name, reason };
            rejection::<Failure>(poem::Error::from(raw)).to_string()
        };
        let reason = <Option<crate::params::ObjectId>>::parse_from_parameters(["demo"])
            .expect_err("no slash")
            .into_message();
        assert!(reason.contains("optional_ObjectId"), "{reason}");
        assert_eq!(refused("id", reason), "id: must be of the form owner/name");
        let reason = <crate::params::Count>::parse_from_parameters(["0"])
            .expect_err("zero")
            .into_message();
        assert_eq!(
            refused("p", reason),
            "p: must be a whole number from 1, got \"0\""
        );
        let reason = <crate::params::ObjectId>::parse_from_parameters(None::<&str>)
            .expect_err("not sent")
            .into_message();
        assert_eq!(refused("id", reason), "id: is required");
        let reason = <String>::parse_from_parameters(None::<&str>)
            .expect_err("not sent")
            .into_message();
        assert_eq!(refused("sid", reason), "sid: is required");
        // A validator's refusal is put in words; the reasons as poem-openapi's derive writes
        // them, from its own validators.
        use poem_openapi::validation::{MaxLength, Maximum, Pattern};
        let failed = |v: &dyn std::fmt::Display| format!("verification failed. {v}");
        assert_eq!(
            refused("owner", failed(&MaxLength::new(100))),
            "owner: must be at most 100 characters"
        );
        assert_eq!(
            refused("logoutAll", failed(&Pattern::new("^(true|false)?$"))),
            "logoutAll: must match ^(true|false)?$"
        );
        assert_eq!(
            refused("n", failed(&Maximum::new(1000.0, false))),
            "n: must be at most 1000"
        );
        assert_eq!(refused("x", "something else".into()), "x: something else");
    }
}
