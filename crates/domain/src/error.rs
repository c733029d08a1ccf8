//! Errors. [`StoreError`] is what a repository reports; [`Error`] is what every use case outside
//! the token endpoint reports (the token endpoint speaks RFC 6749's [`crate::oauth::OAuthError`]).
//! The api crate turns each into HTTP in exactly one place.

use thiserror::Error;

use crate::oauth::{OAuthError, OAuthErrorKind};
use crate::values::InvalidValue;

/// The uniqueness rule a user's phone breaks: its E.164 form is another user's of the same
/// organization. Repositories name it in [`StoreError::Conflict`].
pub const USER_PHONE_RULE: &str = "user phone";

/// What a repository can report. Adapters map their driver's errors into this; no driver type
/// ever crosses the port.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A uniqueness rule was violated; the string names the rule (e.g. "user owner/name").
    #[error("{0} already exists")]
    Conflict(String),
    /// A referenced object is missing (e.g. a user's organization).
    #[error("{0} does not exist")]
    MissingReference(String),
    /// The database could not be reached or timed out; the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back into domain types.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database could not be brought up to date; the message says why and what to do.
    #[error("cannot upgrade the database: {0}")]
    Migration(String),
}

/// Why a use case refused or failed. Each kind has one meaning to a caller; the message is for
/// people and names the field when a value was wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad input: the message starts with the field it is about.
    #[error("{0}")]
    Invalid(String),
    /// Not signed in, or the credentials are not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// A presented access token is malformed, expired, revoked or not ours (RFC 6750's
    /// `invalid_token`): the client refreshes it or signs in again.
    #[error("{0}")]
    InvalidToken(String),
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The object exists already, or is still in use.
    #[error("{0}")]
    Conflict(String),
    /// Something we depend on (the database, WeChat) is down; try again after `retry_after` s.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    /// The request is larger than this server accepts of any request.
    #[error("{0}")]
    TooLarge(String),
    /// This client sent too much; try again after `retry_after` s.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Our own fault or misconfiguration.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status of an answer with this error: the one mapping, for the API's answers,
    /// the console's pages and the audit trail's records (as [`crate::oauth::OAuthErrorKind::status`]
    /// is the token endpoint's).
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Unauthenticated(_) | Self::InvalidToken(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::TooLarge(_) => 413,
            Self::TooManyRequests { .. } => 429,
            Self::Internal(_) => 500,
            Self::Unavailable { .. } => 503,
        }
    }

    pub fn invalid(m: impl Into<String>) -> Self {
        Self::Invalid(m.into())
    }

    pub fn forbidden() -> Self {
        Self::Forbidden("Unauthorized operation".into())
    }

    pub fn database_unavailable() -> Self {
        Self::Unavailable {
            message: "the database is unavailable".into(),
            retry_after: 2,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::MissingReference(what) => Self::Invalid(format!("{what} does not exist")),
            StoreError::Unavailable(_) => Self::database_unavailable(),
            StoreError::Corrupt(m) => Self::Internal(format!("stored data is corrupt: {m}")),
            StoreError::Migration(m) => Self::Internal(format!("cannot upgrade the database: {m}")),
        }
    }
}

impl From<crate::ports::PasswordError> for Error {
    fn from(e: crate::ports::PasswordError) -> Self {
        match e {
            crate::ports::PasswordError::Busy { retry_after } => Self::Unavailable {
                message: e.to_string(),
                retry_after,
            },
            crate::ports::PasswordError::Failed(m) => Self::Internal(m),
        }
    }
}

impl From<crate::ports::PasswordError> for OAuthError {
    fn from(e: crate::ports::PasswordError) -> Self {
        match e {
            crate::ports::PasswordError::Busy { retry_after } => {
                OAuthError::unavailable(e.to_string(), retry_after)
            }
            crate::ports::PasswordError::Failed(m) => OAuthError::server_error(m),
        }
    }
}

impl From<InvalidValue> for Error {
    fn from(e: InvalidValue) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// Client authentication on an `/api` route fails the way the token endpoint would, but in the
/// envelope's terms: a database outage stays an outage, never a 401.
impl From<OAuthError> for Error {
    fn from(e: OAuthError) -> Self {
        match e.kind {
            OAuthErrorKind::TemporarilyUnavailable => Self::Unavailable {
                message: e.description,
                retry_after: e.retry_after.unwrap_or(2),
            },
            OAuthErrorKind::SlowDown => Self::TooManyRequests {
                message: e.description,
                retry_after: e.retry_after.unwrap_or(1),
            },
            OAuthErrorKind::ServerError => Self::Internal(e.description),
            OAuthErrorKind::InvalidClient => Self::Unauthenticated(e.description),
            _ => Self::Invalid(e.description),
        }
    }
}
