//! Errors shared by every port. Use cases have their own enums built on top of these.

use thiserror::Error;

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
}
