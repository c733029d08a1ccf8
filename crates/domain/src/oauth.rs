//! OAuth 2.0 outcomes of the token endpoint (RFC 6749 §5), independent of HTTP.

use thiserror::Error;

use crate::StoreError;

/// The error codes of RFC 6749 §5.2 (plus RFC 6749's `temporarily_unavailable` and
/// `server_error`, used here for the token endpoint as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorKind {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// Something upstream (WeChat, the database) is not available; retry later (HTTP 503).
    TemporarilyUnavailable,
    /// Our configuration is wrong (HTTP 500).
    ServerError,
    /// Too many requests from this client (HTTP 429).
    SlowDown,
}

impl OAuthErrorKind {
    /// The HTTP status RFC 6749 gives it (as the api crate answers it).
    pub fn status(self) -> i32 {
        match self {
            Self::InvalidClient => 401,
            Self::TemporarilyUnavailable => 503,
            Self::ServerError => 500,
            Self::SlowDown => 429,
            _ => 400,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::SlowDown => "slow_down",
        }
    }
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{}: {description}", kind.code())]
pub struct OAuthError {
    pub kind: OAuthErrorKind,
    pub description: String,
    /// Seconds a client should wait before trying again (503 and 429).
    pub retry_after: Option<u64>,
    /// For the audit record: WeChat's errcode, when WeChat refused.
    pub wechat_errcode: Option<i64>,
    /// For the audit record: the event this failure is, when not a failed attempt of its
    /// grant (`refresh-token-reuse`).
    pub event: Option<&'static str>,
}

impl OAuthError {
    pub fn new(kind: OAuthErrorKind, description: impl Into<String>) -> Self {
        Self {
            kind,
            description: description.into(),
            retry_after: None,
            wechat_errcode: None,
            event: None,
        }
    }

    pub fn with_wechat_errcode(mut self, errcode: Option<i64>) -> Self {
        self.wechat_errcode = errcode;
        self
    }

    pub fn as_event(mut self, event: &'static str) -> Self {
        self.event = Some(event);
        self
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::InvalidRequest, d)
    }

    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::InvalidClient, d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::InvalidGrant, d)
    }

    pub fn unavailable(d: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(OAuthErrorKind::TemporarilyUnavailable, d)
        }
    }

    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::ServerError, d)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::unavailable("the database is unavailable", 2),
            other => Self::server_error(format!("storage error: {other}")),
        }
    }
}

/// A successful token answer (RFC 6749 §5.1), snake_case as mini programs read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
}
