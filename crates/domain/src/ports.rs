//! The ports: what the domain needs from the outside world. Adapters implement these traits; the
//! server crate wires one implementation of each into the use cases.

use async_trait::async_trait;
use thiserror::Error;

use crate::model::{
    Application, Cert, Organization, PasswordFailures, Provider, PurgeReport, RefreshOutcome,
    RefreshToken, Revocation, SeedBundle, SeedReport, Session, SessionQuery, SessionSelector,
    SignInWrite, StoredAccessToken, TokenRecord, User, WechatIdentity, WechatUserOutcome,
};
use crate::model::{
    BindOutcome, ExportPart, Record, RecordQuery, UnbindOutcome, UserQuery, WechatSignIn,
};
use crate::values::{AppId, WechatCode};
use crate::{Secret, StoreError};

pub type StoreResult<T> = Result<T, StoreError>;

/// The most users one [`ExportPart::Users`] page holds.
pub const EXPORT_PAGE: usize = 500;

/// Builds the user a first sign-in creates; called only when no user was found.
pub type NewUser = std::sync::Arc<dyn Fn() -> User + Send + Sync>;

/// Persistence of every entity. Every method is atomic on its own.
#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// Cheap round trip to the database, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    async fn get_organization(&self, name: &str) -> StoreResult<Option<Organization>>;
    async fn list_organizations(&self) -> StoreResult<Vec<Organization>>;
    /// `Conflict` when the name is taken.
    async fn insert_organization(&self, org: &Organization) -> StoreResult<()>;
    /// `false` when there is no such organization.
    async fn update_organization(&self, org: &Organization) -> StoreResult<bool>;
    /// `Conflict` while users or applications still belong to it: nothing is orphaned.
    async fn delete_organization(&self, name: &str) -> StoreResult<bool>;

    async fn get_application(&self, name: &str) -> StoreResult<Option<Application>>;
    async fn get_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>>;
    async fn list_applications(&self, organization: Option<&str>) -> StoreResult<Vec<Application>>;
    async fn insert_application(&self, app: &Application) -> StoreResult<()>;
    async fn update_application(&self, app: &Application) -> StoreResult<bool>;
    async fn delete_application(&self, name: &str) -> StoreResult<bool>;

    /// Inserts new organizations, providers and applications in one transaction, in that
    /// order: all or nothing; any that exists already is a `Conflict` naming it.
    async fn insert_together(&self, bundle: &SeedBundle) -> StoreResult<()>;

    async fn get_provider(&self, owner: &str, name: &str) -> StoreResult<Option<Provider>>;
    async fn list_providers(&self, owner: Option<&str>) -> StoreResult<Vec<Provider>>;
    async fn insert_provider(&self, provider: &Provider) -> StoreResult<()>;
    async fn update_provider(&self, provider: &Provider) -> StoreResult<bool>;
    async fn delete_provider(&self, owner: &str, name: &str) -> StoreResult<bool>;

    async fn get_cert(&self, name: &str) -> StoreResult<Option<Cert>>;
    async fn list_certs(&self) -> StoreResult<Vec<Cert>>;
    async fn insert_cert(&self, cert: &Cert) -> StoreResult<()>;
    async fn update_cert(&self, cert: &Cert) -> StoreResult<bool>;
    async fn delete_cert(&self, name: &str) -> StoreResult<bool>;

    async fn get_user(&self, owner: &str, name: &str) -> StoreResult<Option<User>>;
    async fn get_user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// The user of `owner` whose phone's E.164 form is `e164`.
    async fn get_user_by_phone(&self, owner: &str, e164: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, owner: Option<&str>) -> StoreResult<Vec<User>>;
    /// The page of users `query` selects (over indexed columns), and how many match in all.
    async fn search_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, u64)>;
    /// The user of `owner` with this email.
    async fn get_user_by_email(&self, owner: &str, email: &str) -> StoreResult<Option<User>>;
    async fn count_users(&self, owner: &str) -> StoreResult<i64>;
    /// `Conflict` when (owner, name) or id is taken; `MissingReference` for an unknown organization.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn update_user(&self, user: &User) -> StoreResult<bool>;
    async fn delete_user(&self, owner: &str, name: &str) -> StoreResult<bool>;

    /// The user's failed password attempts in a row.
    async fn password_failures(&self, user_id: &str) -> StoreResult<PasswordFailures>;
    /// Counts one more failure at `now` in one statement (nodes counting at once lose none); a
    /// count whose last failure came before `stale_before` starts again at one. The new count.
    async fn add_password_failure(
        &self,
        user_id: &str,
        now: chrono::DateTime<chrono::Utc>,
        stale_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<PasswordFailures>;
    async fn reset_password_failures(&self, user_id: &str) -> StoreResult<()>;

    /// The cluster's access token of `appid`, if a row exists (SPEC §12).
    async fn get_access_token(&self, appid: &str) -> StoreResult<Option<StoredAccessToken>>;
    /// Takes the refresh lease of `appid` for `holder` until `until_ms` when the stored version
    /// is still `seen_version` and no live lease is held (creating the row at version 0 if
    /// missing). True when `holder` now holds it: at most one caller at a time gets true.
    async fn lease_access_token(
        &self,
        appid: &str,
        holder: &str,
        seen_version: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool>;
    /// Stores a fresh token (version + 1) and ends `holder`'s lease; `None` when `holder` no
    /// longer held it (its lease ran out and another took it): nothing is written.
    async fn put_access_token(
        &self,
        appid: &str,
        holder: &str,
        sealed: &[u8],
        refresh_at_ms: i64,
        expires_at_ms: i64,
    ) -> StoreResult<Option<i64>>;
    /// Ends `holder`'s lease without a new token (the refresh failed).
    async fn release_access_token(&self, appid: &str, holder: &str) -> StoreResult<()>;
    /// WeChat refused version `version`: it is due at once and used by nobody, if it is still
    /// the stored one (a newer version means another node already replaced it).
    async fn expire_access_token(&self, appid: &str, version: i64) -> StoreResult<bool>;

    async fn list_wechat_identities(&self) -> StoreResult<Vec<WechatIdentity>>;
    /// `iam export`'s read, one consistent snapshot handed to `part` as it is read: first
    /// [`ExportPart::Configuration`], then [`ExportPart::Users`] pages of at most
    /// [`EXPORT_PAGE`] users (never all of them in memory). `Ok(false)` when `part` answered
    /// `false` (its taker went away) and the read stopped there; it never sends `End`.
    async fn export(&self, part: Box<dyn FnMut(ExportPart) -> bool + Send>) -> StoreResult<bool>;
    async fn get_wechat_identity(
        &self,
        appid: &str,
        openid: &str,
    ) -> StoreResult<Option<WechatIdentity>>;
    /// Atomically (SPEC §4 step 6, §8.1): the user of the identity; else, when it carries a
    /// unionid, the user of its organization holding that unionid; else, when a verified phone
    /// came with the sign-in, the user of the organization holding that phone (the identity is
    /// linked to either); else, when `new_user` is given, the user it builds, created together
    /// with the identity (it is called only then). A phone held by another user than the one
    /// the identity belongs to (or is being linked to) is `PhoneConflict`, and nothing is
    /// written. Concurrent calls, for one identity or for two identities with one phone, on one
    /// process or several sharing a database, end with exactly one user.
    async fn find_or_create_wechat_user(
        &self,
        sign_in: &WechatSignIn,
        new_user: Option<NewUser>,
    ) -> StoreResult<WechatUserOutcome>;
    /// A user's WeChat identities, oldest first, each with its last sign-in.
    async fn list_user_identities(&self, user_id: &str) -> StoreResult<Vec<WechatIdentity>>;
    /// Links `identity` (its `user_id` names the user) and stores its sealed session key, in one
    /// transaction; an identity that is another user's is left alone.
    async fn bind_wechat_identity(
        &self,
        identity: &WechatIdentity,
        sealed_key: &[u8],
    ) -> StoreResult<BindOutcome>;
    /// Removes the user's identity of `appid` (the one of `openid`, when named; else the only
    /// one) and its session key, unless it is their last way in (no password and no other
    /// identity), decided under the user's row lock.
    async fn unbind_wechat_identity(
        &self,
        user_id: &str,
        appid: &str,
        openid: Option<&str>,
    ) -> StoreResult<UnbindOutcome>;
    /// Replaces the stored (already encrypted) session key of (appid, openid).
    async fn save_wechat_session(
        &self,
        appid: &str,
        openid: &str,
        sealed_key: &[u8],
    ) -> StoreResult<()>;
    async fn get_wechat_session(&self, appid: &str, openid: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Everything a successful sign-in writes, in one transaction: the user's changed profile
    /// and sign-in time, the sealed WeChat session key, the session and its first refresh token,
    /// and (with a session limit) the revocation of the user's oldest sessions of the
    /// application beyond it, whose ids are returned.
    async fn record_sign_in(&self, write: &SignInWrite) -> StoreResult<Vec<String>>;

    /// Presents the refresh token stored under `hash` for `application`, in one transaction that
    /// holds its session: a good token is marked used and `next` (whose session, application,
    /// organization, user and scope the store fills in) is stored in the same session, whose
    /// last activity and expiry move on; a used one revokes the session (reuse). Two concurrent
    /// calls with one token end with the session revoked.
    async fn rotate_refresh(
        &self,
        hash: &str,
        application: &str,
        next: &RefreshToken,
        session_expires: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<RefreshOutcome>;
    async fn get_refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshToken>>;

    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// Active sessions (not revoked, not expired at `now`), newest first, and how many match.
    async fn list_sessions(
        &self,
        query: &SessionQuery,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<(Vec<Session>, u64)>;
    /// Revokes the active sessions `which` names, recording each for the other nodes; returns
    /// the ids it revoked (none when they were already revoked).
    async fn revoke_sessions(
        &self,
        which: &SessionSelector,
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<String>>;
    /// Refuses a session-less access token by its `jti` until `expires`.
    async fn revoke_jti(
        &self,
        jti: &str,
        expires: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()>;
    /// Revocations recorded at or after `since` whose entries have not expired at `now`.
    async fn revocations_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<Revocation>>;
    /// One bounded pass of the purge: at most `batch` rows per table of expired sessions (with
    /// their refresh tokens), expired refresh tokens, revocations nobody needs any more,
    /// expired access tokens from before sessions, and audit records created before
    /// `records_before`. Idempotent; several nodes may run it.
    async fn purge(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        records_before: chrono::DateTime<chrono::Utc>,
        batch: u32,
    ) -> StoreResult<PurgeReport>;

    /// Stores audit records (a batch of the writer's, or one), in one transaction.
    async fn insert_records(&self, records: &[Record]) -> StoreResult<()>;
    /// The records `query` selects, and how many match in all.
    async fn list_records(&self, query: &RecordQuery) -> StoreResult<(Vec<Record>, u64)>;
    /// Counts of the records since `since` (of `organization`, or all) by hour (`by_day`
    /// false) or day, action, response and errcode, read over the (organization, time) index.
    async fn record_counts(
        &self,
        organization: Option<&str>,
        since: chrono::DateTime<chrono::Utc>,
        by_day: bool,
    ) -> StoreResult<Vec<crate::model::CountRow>>;
    /// The rolled-up counts of whole days from `from` on (`YYYY-MM-DD`), `new-user` included.
    async fn rollup_counts(
        &self,
        organization: Option<&str>,
        from: &str,
    ) -> StoreResult<Vec<crate::model::CountRow>>;
    /// Users created since `since`, per day (`YYYY-MM-DD`, n).
    async fn new_users_since(
        &self,
        organization: Option<&str>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<(String, u64)>>;
    /// Rolls up every day from `from` until (not including) `until` that is not rolled up yet
    /// (`YYYY-MM-DD`); several nodes may run it, each day is rolled up once. Returns how many.
    async fn roll_up_days(&self, from: &str, until: &str) -> StoreResult<u32>;
    /// Row counts of the session tables (sessions, refresh tokens, revocations, legacy tokens).
    async fn session_table_counts(&self) -> StoreResult<[u64; 4]>;

    /// An access token stored by a server from before sessions, by its hash.
    async fn get_legacy_token(&self, access_hash: &str) -> StoreResult<Option<TokenRecord>>;
    async fn revoke_legacy_token(&self, id: &str) -> StoreResult<()>;

    /// Loads seed objects in dependency order in one transaction: either all of it is applied or
    /// none. With `new_only`, existing objects are kept as they are; otherwise they are replaced.
    async fn apply_seed(&self, bundle: SeedBundle, new_only: bool) -> StoreResult<SeedReport>;
}

/// What WeChat said about a failed call: the errcode, its message and the request id WeChat's
/// support asks for. Never holds the AppSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatFault {
    pub errcode: i64,
    pub errmsg: String,
    pub rid: Option<String>,
}

impl std::fmt::Display for WechatFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.errcode, self.errmsg)
    }
}

/// Every way a call to WeChat can fail, grouped by what the caller should do about it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum WechatError {
    /// 40029: unknown, expired or foreign code. Call wx.login again.
    #[error("invalid code: {0}")]
    InvalidCode(WechatFault),
    /// 40163: the code was already exchanged.
    #[error("code already used: {0}")]
    CodeUsed(WechatFault),
    /// 40226: WeChat's risk control blocked this user.
    #[error("user blocked by wechat: {0}")]
    Blocked(WechatFault),
    /// 41008: no code reached WeChat.
    #[error("missing code: {0}")]
    MissingCode(WechatFault),
    /// 45009, 45011: quota exhausted.
    #[error("wechat rate limit: {0}")]
    RateLimited(WechatFault),
    /// -1: WeChat is busy (after our retries).
    #[error("wechat busy: {0}")]
    Busy(WechatFault),
    /// 40013, 40125, 40164, 41002, 41004, 40002: our APPID/APPSECRET/IP setup is wrong.
    #[error("wechat provider misconfigured: {0}")]
    Misconfigured(WechatFault),
    /// 40001, 40014, 42001, 41001: the access token was refused (after one refresh).
    #[error("wechat access token refused: {0}")]
    AccessToken(WechatFault),
    /// Any other errcode.
    #[error("wechat error: {0}")]
    Other(WechatFault),
    /// The request did not complete (connect failure, reset) after retries.
    #[error("wechat unreachable: {0}")]
    Transport(String),
    /// No answer within the configured timeout.
    #[error("wechat timed out")]
    Timeout,
    /// An HTTP status other than 200.
    #[error("wechat answered HTTP {0}")]
    HttpStatus(u16),
    /// A 200 whose body is not the JSON we expect.
    #[error("wechat answered a malformed body: {0}")]
    Malformed(String),
}

impl WechatError {
    /// The fault WeChat reported, if it reported one.
    pub fn fault(&self) -> Option<&WechatFault> {
        match self {
            Self::InvalidCode(f)
            | Self::CodeUsed(f)
            | Self::Blocked(f)
            | Self::MissingCode(f)
            | Self::RateLimited(f)
            | Self::Busy(f)
            | Self::Misconfigured(f)
            | Self::AccessToken(f)
            | Self::Other(f) => Some(f),
            _ => None,
        }
    }

    /// Worth asking again later (HTTP 503 to our caller), as opposed to a bad code or bad setup.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited(_)
                | Self::Busy(_)
                | Self::Transport(_)
                | Self::Timeout
                | Self::HttpStatus(_)
                | Self::Malformed(_)
        )
    }
}

/// What code2Session gives for a good code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatSession {
    pub openid: crate::values::WechatId,
    /// Absent unless the mini program is bound to an Open Platform account.
    pub unionid: Option<crate::values::WechatId>,
    pub session_key: Secret,
}

/// What `getuserphonenumber` says: the number without and with its calling code, and the
/// calling code (always text, whether WeChat sent "86" or 86).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneInfo {
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: String,
}

/// Why WeChat's legacy encrypted data could not be opened.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecryptError {
    /// `encryptedData` is not base64, or not whole AES blocks.
    #[error("encryptedData: {0}")]
    Data(String),
    /// `iv` is not base64 of 16 bytes.
    #[error("iv: {0}")]
    Iv(String),
    /// The padding is wrong: the data was sealed under another session key.
    #[error("the data was not encrypted with this session key")]
    WrongKey,
}

/// The WeChat server API, as far as sign-in, phone numbers and session keys need it, and
/// WeChat's formats for data the mini program hands over (legacy encrypted data, rawData).
#[async_trait]
pub trait WechatApi: Send + Sync + 'static {
    async fn code_to_session(
        &self,
        appid: &AppId,
        secret: &Secret,
        code: &WechatCode,
    ) -> Result<WechatSession, WechatError>;

    /// `getuserphonenumber` with the app's access token; `openid` makes WeChat refuse a phone
    /// code issued to someone else.
    async fn phone_number(
        &self,
        appid: &AppId,
        secret: &Secret,
        phone_code: &str,
        openid: &str,
    ) -> Result<PhoneInfo, WechatError>;

    /// `checksession`: is `session_key` still the user's current one?
    async fn check_session(
        &self,
        appid: &AppId,
        secret: &Secret,
        openid: &str,
        session_key: &Secret,
    ) -> Result<bool, WechatError>;

    /// Fetches a fresh `stable_token` with this APPID and APPSECRET, without touching the cached
    /// one: whether WeChat accepts the credentials (the console's "Test WeChat credentials").
    async fn check_credentials(&self, appid: &AppId, secret: &Secret) -> Result<(), WechatError>;

    /// Opens legacy `encryptedData` (AES-128-CBC, PKCS#7) with the session key; the plaintext
    /// bytes, not yet parsed.
    fn decrypt(
        &self,
        session_key: &Secret,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<Vec<u8>, DecryptError>;

    /// Whether `signature` is `sha1(raw_data + session_key)`, compared in constant time.
    fn raw_data_signed(&self, raw_data: &str, session_key: &Secret, signature: &str) -> bool;
}

/// Claims of our JWTs (SPEC §5). The same struct serves access and ID tokens; fields that do not
/// apply are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// A list for access tokens, a string for ID tokens (both are valid JWT forms).
    pub aud: serde_json::Value,
    pub azp: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(rename = "tokenType")]
    pub token_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// The session of a user token (SPEC §9); absent on application tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "displayName", default)]
    pub display_name: String,
    #[serde(default)]
    pub avatar: String,
    /// OIDC names for ID tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preferred_username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub picture: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued by {0}")]
    WrongIssuer(String),
    #[error("cannot use the cert: {0}")]
    Key(String),
}

/// Signing and verifying JWTs with a cert, and the opaque-token helpers that go with them.
pub trait TokenCodec: Send + Sync + 'static {
    fn sign(&self, cert: &Cert, claims: &Claims) -> Result<String, TokenError>;
    /// The `kid` of a token's header, without verifying anything.
    fn kid(&self, token: &str) -> Option<String>;
    /// Checks signature, `exp`, `nbf` and, when given, `iss`.
    fn verify(&self, cert: &Cert, token: &str, issuer: Option<&str>) -> Result<Claims, TokenError>;
    /// A new self-signed cert with a fresh key (RSA 2048 for RS256, P-256 for ES256).
    fn generate_cert(
        &self,
        name: &crate::values::ObjectName,
        alg: crate::values::CryptoAlgorithm,
    ) -> Result<Cert, TokenError>;
    /// The public JWKS entry of a cert (`kid`, `alg`, `use`, `x5c` and the key itself).
    fn jwk(&self, cert: &Cert) -> Result<serde_json::Value, TokenError>;
    /// A new opaque token (refresh tokens): 256 random bits, URL-safe.
    fn random_token(&self) -> String;
    /// The SHA-256 hex digest under which a raw token is stored.
    fn hash(&self, raw: &str) -> String;
}

/// Seals session keys at rest (AES-GCM or similar), bound to (appid, openid).
pub trait SessionSealer: Send + Sync + 'static {
    fn seal(&self, appid: &str, openid: &str, session_key: &Secret) -> Result<Vec<u8>, String>;
    /// The secret sealed under (`appid`, `openid`); fails for another key or other context.
    fn open(&self, appid: &str, openid: &str, sealed: &[u8]) -> Result<Secret, String>;
}

/// A WeChat access token shared by every node (SPEC §12): what the WeChat adapter's token
/// cache asks before it calls `stable_token` itself.
#[derive(Debug, Clone)]
pub struct SharedToken {
    pub token: Secret,
    pub version: i64,
    /// Unix milliseconds.
    pub refresh_at: i64,
    pub expires_at: i64,
}

/// The cluster's access tokens: read, leased for refresh by one node at a time, replaced,
/// expired by version. Errors are the database's, in words.
#[async_trait]
pub trait SharedAccessTokens: Send + Sync + 'static {
    async fn load(&self, appid: &str) -> Result<Option<SharedToken>, String>;
    /// True when this node may refresh `appid` now (nobody else holds the lease and the
    /// version is still `seen_version`); the lease lasts `lease_ms`.
    async fn lease(&self, appid: &str, seen_version: i64, lease_ms: i64) -> Result<bool, String>;
    /// Stores the token this node fetched under its lease; its version, or `None` when the
    /// lease had run out (nothing stored).
    async fn store(
        &self,
        appid: &str,
        token: &Secret,
        refresh_at: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, String>;
    async fn release(&self, appid: &str) -> Result<(), String>;
    /// WeChat refused `version`; true when this call marked it (the first to notice).
    async fn expire(&self, appid: &str, version: i64) -> Result<bool, String>;
}

/// Password hashing (argon2), slow by design: implementations run it off the async workers.
/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Every hashing slot stayed busy for the bounded wait (SPEC §12): retry after
    /// `retry_after` seconds.
    #[error("too many passwords are being checked at once; retry in {retry_after} s")]
    Busy { retry_after: u64 },
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    async fn hash(&self, password: &str) -> Result<Secret, PasswordError>;
    /// Whether `password` matches `hash` (`false` for a hash that cannot be read).
    async fn verify(&self, password: &str, hash: &Secret) -> Result<bool, PasswordError>;
    /// A hash of no one's password with the same cost as a real one: verifying against it
    /// makes an unknown user cost what a known one costs.
    fn dummy_hash(&self) -> Secret;
}

/// Where audit records go that are not written in a use case's own transaction (failed
/// sign-ins, refreshes, management writes): a bounded queue that must never block the caller
/// (it drops, and counts the drop, when full).
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    fn record(&self, record: Record);
    /// Returns once every record queued before the call is written (or found unwritable): a
    /// server stopping gracefully loses none.
    async fn flush(&self);
}

/// Counters the use cases report to (the API crate turns them into metrics).
pub trait Events: Send + Sync + 'static {
    fn signin(&self, result: &str);
    fn user_created(&self);
    /// Rows a purge pass deleted from `table`.
    fn purged(&self, table: &str, rows: u64);
}
