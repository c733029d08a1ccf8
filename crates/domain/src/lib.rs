//! The domain of the identity server.
//!
//! Everything here is pure: no web framework, no database, no HTTP client, no JWT library. Adapters
//! implement the port traits in [`ports`]; the use cases ([`service::Iam`] and its `grants` and
//! `users` parts) only talk to those traits. Values that come from outside are parsed into types
//! of [`values`] that cannot hold a bad value.

pub mod access_tokens;
pub mod admin;
pub mod cache;
pub mod console;
pub mod dashboard;
pub mod directory;
pub mod error;
pub mod grants;
pub mod identities;
pub mod lockout;
pub mod model;
pub mod network;
pub mod oauth;
pub mod objects;
pub mod password_rules;
pub mod phone;
pub mod ports;
pub mod records;
pub mod secret;
pub mod seed;
pub mod service;
pub mod sessions;
pub mod users;
pub mod values;

pub use error::{Error, StoreError};
pub use secret::Secret;
