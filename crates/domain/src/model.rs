//! Entities of SPEC §3. Fields that come from outside have been checked by the parser that built
//! the entity (management API, seed file, sign-in); the store hands them back as they were written.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Secret;

/// Casdoor fields kept without interpretation: a JSON object.
pub type Extra = serde_json::Map<String, serde_json::Value>;
use crate::values::{ClientId, CryptoAlgorithm, DisplayName, ObjectName, WebUrl, WechatId};

/// Every top-level object is owned by `admin` except providers and users, as in Casdoor.
pub const ADMIN_OWNER: &str = "admin";
pub const BUILT_IN_ORG: &str = "built-in";
pub const BUILT_IN_APP: &str = "app-built-in";
pub const BUILT_IN_CERT: &str = "cert-built-in";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub name: ObjectName,
    pub display_name: DisplayName,
    pub default_avatar: WebUrl,
    pub created_time: DateTime<Utc>,
    /// Casdoor's fields this server has no column for, kept as they were sent.
    pub extra: Extra,
}

/// One entry of an application's ordered provider list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderItem {
    #[serde(default)]
    pub owner: String,
    pub name: String,
    #[serde(default = "yes")]
    pub can_sign_up: bool,
    #[serde(default = "yes")]
    pub can_sign_in: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub name: ObjectName,
    pub display_name: DisplayName,
    pub organization: ObjectName,
    pub client_id: ClientId,
    pub client_secret: Secret,
    /// The cert that signs its tokens; `None` (Casdoor's `""`) is the built-in one.
    pub cert: Option<ObjectName>,
    pub enable_sign_up: bool,
    pub providers: Vec<ProviderItem>,
    pub grant_types: Vec<String>,
    pub token_format: String,
    pub expire_in_hours: i64,
    pub refresh_expire_in_hours: i64,
    /// Sessions one user may hold in this application at once; 0 = unlimited. A sign-in beyond
    /// it revokes the user's oldest session of the application.
    pub max_sessions_per_user: u32,
    pub created_time: DateTime<Utc>,
    /// Casdoor's fields this server has no column for, kept as they were sent.
    pub extra: Extra,
}

impl Application {
    pub const DEFAULT_EXPIRE_IN_HOURS: i64 = 168;
    pub const DEFAULT_REFRESH_EXPIRE_IN_HOURS: i64 = 720;

    /// The name of the cert that signs its tokens.
    pub fn cert_name(&self) -> &str {
        self.cert.as_deref().unwrap_or(BUILT_IN_CERT)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub owner: ObjectName,
    pub name: ObjectName,
    pub display_name: DisplayName,
    pub category: String,
    pub provider_type: String,
    pub sub_type: String,
    /// For a mini program: its APPID.
    pub client_id: String,
    /// For a mini program: its APPSECRET.
    pub client_secret: Secret,
    pub created_time: DateTime<Utc>,
    /// Casdoor's fields this server has no column for, kept as they were sent.
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub name: ObjectName,
    pub display_name: DisplayName,
    pub cert_type: String,
    pub crypto_algorithm: CryptoAlgorithm,
    pub bit_size: i32,
    /// The self-signed X.509 certificate, PEM.
    pub certificate: String,
    /// The private key, PEM (PKCS#8).
    pub private_key: Secret,
    pub created_time: DateTime<Utc>,
    /// Casdoor's fields this server has no column for, kept as they were sent.
    pub extra: Extra,
}

/// The fields a user may change on themself (SPEC §5), besides `displayName` and `avatar`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub first_name: String,
    pub last_name: String,
    pub bio: String,
    pub gender: String,
    pub language: String,
    pub location: String,
    pub region: String,
    pub homepage: WebUrl,
    pub title: String,
    pub affiliation: String,
    pub birthday: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub owner: ObjectName,
    pub name: ObjectName,
    pub user_type: String,
    pub display_name: DisplayName,
    pub avatar: WebUrl,
    pub email: String,
    /// Casdoor's `phone`: the national number.
    pub phone: String,
    /// Casdoor's `countryCode`: the ISO region (`CN`).
    pub country_code: String,
    /// The phone's E.164 form (`+8618017448610`), unique among the users of an organization;
    /// empty when the user has no phone, or one stored before it could be parsed.
    pub phone_e164: String,
    pub is_admin: bool,
    pub is_forbidden: bool,
    pub is_deleted: bool,
    pub signup_application: String,
    /// The first OpenID this user signed in with (Casdoor's `wechat` column); `None` is
    /// Casdoor's `""`.
    pub wechat: Option<WechatId>,
    pub wechat_open_id: Option<WechatId>,
    pub wechat_union_id: Option<WechatId>,
    /// argon2 PHC string; `None` for users who never had a password.
    pub password_hash: Option<Secret>,
    pub profile: Profile,
    pub created_time: DateTime<Utc>,
    pub updated_time: DateTime<Utc>,
    pub last_signin_time: Option<DateTime<Utc>>,
    /// Casdoor's fields without a column of their own (`tag`, `score`, …), kept as sent.
    pub extra: Extra,
}

impl User {
    pub const NORMAL_USER: &'static str = "normal-user";

    pub fn id_path(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// A user who may not sign in or use a token.
    pub fn is_blocked(&self) -> bool {
        self.is_forbidden || self.is_deleted
    }

    /// Sets the phone in all three forms.
    pub fn set_phone(&mut self, phone: &crate::values::Phone) {
        self.phone = phone.national().to_owned();
        self.country_code = phone.region().to_owned();
        self.phone_e164 = phone.e164().to_owned();
    }

    /// Brings `phone`, `countryCode` and the E.164 form in line after `phone` or `countryCode`
    /// was set from outside: an empty phone clears the E.164 form; any other must parse.
    pub fn normalize_phone(&mut self) -> Result<(), crate::values::InvalidValue> {
        if self.phone.trim().is_empty() {
            self.phone.clear();
            self.phone_e164.clear();
            return Ok(());
        }
        let p = crate::values::Phone::parse("phone", &self.phone, &self.country_code)?;
        self.set_phone(&p);
        Ok(())
    }

    /// Whether the user already holds this phone.
    pub fn has_phone(&self, phone: &crate::values::Phone) -> bool {
        self.phone_e164 == phone.e164()
    }
}

impl Cert {
    /// Where a rotation records how long a retired key stays in the JWKS.
    pub const PUBLISHED_UNTIL: &'static str = "publishedUntil";

    /// When a retired cert leaves the JWKS; `None` while it is (or may be) a signer.
    pub fn published_until(&self) -> Option<DateTime<Utc>> {
        self.extra
            .get(Self::PUBLISHED_UNTIL)
            .and_then(|v| v.as_str())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

/// (appid, openid) of one mini program user, and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatIdentity {
    pub appid: crate::values::AppId,
    pub openid: crate::values::WechatId,
    /// Sent by WeChat only for a mini program bound to an Open Platform account.
    pub unionid: Option<crate::values::WechatId>,
    pub organization: String,
    pub user_id: String,
    pub created_time: DateTime<Utc>,
    /// The last exchange of a code of this identity (sign-in or bind); filled when listing a
    /// user's identities, `None` elsewhere.
    pub last_signin_time: Option<DateTime<Utc>>,
}

/// Who a mini program sign-in is (SPEC §4 step 6 and §8.1): its WeChat identity, and the phone
/// WeChat verified for it in this sign-in, if the user pressed the button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatSignIn {
    pub identity: WechatIdentity,
    pub phone: Option<crate::values::Phone>,
}

/// What an atomic "find or create the user of this WeChat identity" ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per sign-in and matched at once: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum WechatUserOutcome {
    /// The identity was known; `stored_unionid` is what the identity holds (`None` when WeChat
    /// had not sent one before: the sign-in backfills it).
    Found {
        user: User,
        stored_unionid: Option<crate::values::WechatId>,
    },
    /// The identity was new, but a user of the organization held its unionid or the verified
    /// phone; the identity is now linked to them.
    Linked(User),
    /// A new user was created for the identity.
    Created(User),
    /// No user, and creating one was not allowed.
    NotFound,
    /// The verified phone belongs to another user of the organization than the identity's;
    /// nothing was written.
    PhoneConflict,
}

/// What binding a WeChat identity to a user ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    /// The identity is now the user's.
    Bound,
    /// It already was.
    AlreadyBound,
    /// It belongs to another user; nothing was written.
    OtherUser,
}

/// What unbinding a WeChat identity ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbindOutcome {
    /// The identity (this openid) and its session key are gone.
    Unbound(String),
    /// The user holds no identity of that mini program (with that openid, when one is named).
    NotBound,
    /// No openid was named and the user holds several identities of that mini program (one
    /// linked by phone, say): these openids; nothing was written.
    Several(Vec<String>),
    /// It is the user's last way in (no password, no other identity); nothing was written.
    LastWayIn,
}

/// A user's failed password attempts in a row (Casdoor's `signinWrongTimes` and
/// `lastSigninWrongTime`): what the lockout counts (SPEC §12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordFailures {
    pub wrong_times: u32,
    pub last_wrong_time: Option<DateTime<Utc>>,
}

/// The cluster's WeChat access token of one appid as the database holds it (SPEC §12): sealed,
/// versioned (every refresh adds one), with the refresh lease one node at a time holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccessToken {
    /// Sealed; `None` before the first refresh.
    pub sealed: Option<Vec<u8>>,
    pub version: i64,
    /// Unix milliseconds: after `refresh_at` a node refreshes it, after `expires_at` nobody
    /// uses it (both 0 once WeChat refused it).
    pub refresh_at: i64,
    pub expires_at: i64,
}

/// One sign-in of a user (mini program, password) and the refresh chain that follows it (SPEC §9).
/// Its id is the `sid` claim of every access and ID token issued in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub organization: String,
    pub application: String,
    pub user_id: String,
    /// The user's name, for Casdoor's session shape.
    pub user_name: String,
    pub created_time: DateTime<Utc>,
    /// The sign-in or the latest refresh.
    pub last_active_time: DateTime<Utc>,
    /// When the last token issued in it expires; past it the session is over.
    pub expires_time: DateTime<Utc>,
    pub client_ip: String,
    pub user_agent: String,
    pub revoked_time: Option<DateTime<Utc>>,
    pub revoked_reason: String,
}

impl Session {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_time.is_none() && self.expires_time > now
    }
}

/// An opaque refresh token, stored by its SHA-256 hash. Each is used once: refreshing marks it
/// used and issues the next one in the same session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub hash: String,
    pub session_id: String,
    pub application: String,
    pub organization: String,
    pub user_id: String,
    pub scope: String,
    pub created_time: DateTime<Utc>,
    pub expires_time: DateTime<Utc>,
    pub used: bool,
}

/// What a sign-in changes on its user's row. A returning user who sends no new profile moves
/// two timestamps, and the store writes only those: no index of the users table is touched
/// (a whole-row update rewrote an entry in every one of its eight indexes per sign-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserTouch {
    /// Nothing (the user was created by this very sign-in, before it).
    Nothing,
    /// `lastSigninTime` and `updatedTime` of this user become this instant.
    SignedIn { user_id: String, at: DateTime<Utc> },
    /// The profile changed too (display name, avatar, unionid, phone): the whole row.
    Profile(Box<User>),
    /// A first sign-in: the user and their WeChat identity are inserted in the sign-in's own
    /// transaction. A uniqueness conflict means another sign-in created them first (the same
    /// identity, the name, or the phone): nothing is written, and the sign-in is done again.
    Create {
        user: Box<User>,
        identity: Box<WechatIdentity>,
    },
}

/// Everything a successful sign-in writes, in one transaction.
#[derive(Debug, Clone)]
pub struct SignInWrite {
    /// What the sign-in changes on the user's row.
    pub user: UserTouch,
    /// (appid, openid, sealed session key) of a mini program sign-in.
    pub wechat_key: Option<(crate::values::AppId, crate::values::WechatId, Vec<u8>)>,
    /// (appid, openid, unionid): a unionid WeChat sent that the stored identity lacked.
    pub identity_unionid: Option<(
        crate::values::AppId,
        crate::values::WechatId,
        crate::values::WechatId,
    )>,
    pub session: Session,
    pub refresh: RefreshToken,
    /// The application's `maxSessionsPerUser` (0 = unlimited): beyond it the user's oldest
    /// sessions of the application are revoked.
    pub max_sessions: u32,
    /// The sign-in's audit record (SPEC §10), written in the same transaction.
    pub record: Option<Record>,
}

/// What presenting a refresh token ended with, decided inside one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per refresh and matched at once: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum RefreshOutcome {
    /// The token was good: it is now used, `next` is stored in the session, which is returned.
    Rotated(Session, RefreshToken),
    /// No such token for this application.
    Unknown,
    /// Its session was revoked.
    Revoked,
    /// It or its session expired.
    Expired,
    /// It had been used before: someone holds a copy. Its session is now revoked.
    Reused(String),
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub organization: Option<String>,
    pub user_id: Option<String>,
    pub application: Option<String>,
    /// From this row on, at most `limit` rows (0 = no limit).
    pub offset: u64,
    pub limit: u64,
}

/// Which sessions to revoke.
#[derive(Debug, Clone)]
pub enum SessionSelector {
    One(String),
    /// Every active session of a user, or of a user in one application.
    User {
        user_id: String,
        application: Option<String>,
    },
}

impl SessionSelector {
    /// Every active session of the user, in every application.
    pub fn all_of(user_id: &str) -> Self {
        Self::User {
            user_id: user_id.to_owned(),
            application: None,
        }
    }
}

/// A revocation other nodes must learn of: a session, or a session-less token by its `jti`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revocation {
    Session(String),
    Jti(String, DateTime<Utc>),
}

/// How many rows one purge pass deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub revocations: u64,
    pub legacy_tokens: u64,
    /// Audit records older than the retention.
    pub records: u64,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.sessions + self.refresh_tokens + self.revocations + self.legacy_tokens + self.records
    }
}

/// An access token stored by a server from before sessions (its JWT has no `sid`). Accepted
/// until it expires unless revoked; nothing new is written in this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub application: String,
    pub organization: String,
    /// Empty for application (client credentials) tokens.
    pub user_id: String,
    pub access_token_hash: String,
    pub refresh_token_hash: Option<String>,
    /// Every token minted by refreshing shares the family of the first one, so reuse of a rotated
    /// refresh token can revoke the whole chain.
    pub family: String,
    pub scope: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub created_time: DateTime<Utc>,
    pub revoked: bool,
    pub refresh_used: bool,
}

/// The objects of an `init_data.json`, already parsed, loaded in dependency order.
#[derive(Debug, Clone, Default)]
pub struct SeedBundle {
    pub organizations: Vec<Organization>,
    pub providers: Vec<Provider>,
    pub applications: Vec<Application>,
    pub users: Vec<User>,
    pub certs: Vec<Cert>,
    /// The users' WeChat identities (an `iam export` carries them).
    pub identities: Vec<WechatIdentity>,
}

/// What `iam export` reads, in the order it is written: the configuration, the users a page
/// at a time, then the end. An export that never saw [`ExportPart::End`] is incomplete.
#[derive(Debug, Clone)]
pub enum ExportPart {
    /// Organizations, certs, providers and applications (a bundle with no users).
    Configuration(SeedBundle),
    /// Users in (owner, name) order, with every WeChat identity of these users.
    Users {
        users: Vec<User>,
        identities: Vec<WechatIdentity>,
    },
    /// Everything was read.
    End,
}

impl SeedBundle {
    pub fn is_empty(&self) -> bool {
        self.organizations.is_empty()
            && self.providers.is_empty()
            && self.applications.is_empty()
            && self.users.is_empty()
            && self.certs.is_empty()
            && self.identities.is_empty()
    }
}

/// How many objects a seed run wrote and how many it left alone because they existed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub created: usize,
    pub replaced: usize,
    pub kept: usize,
}

/// One audit record (SPEC §10), in Casdoor's Record shape. Never holds a code, token, secret,
/// password, session key or whole phone number: builders scrub what they put in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Assigned by the database; 0 before it is stored.
    pub id: i64,
    /// A UUID.
    pub name: String,
    pub created_time: DateTime<Utc>,
    /// The organization it concerns (Casdoor's `owner` and `organization`).
    pub organization: String,
    pub client_ip: String,
    /// The user's name (Casdoor's `user`), or the application's for its own calls.
    pub user_name: String,
    pub user_id: String,
    pub method: String,
    pub request_uri: String,
    /// What happened: `signin-wechat-miniprogram`, `refresh-token-reuse`, `update-user`, …
    pub action: String,
    pub language: String,
    /// What it was done to (`owner/name` of the object), when not the user.
    pub object: String,
    /// `ok`, or the error code.
    pub response: String,
    pub status_code: i32,
    /// WeChat's errcode when WeChat refused; 0 otherwise.
    pub wechat_errcode: i64,
    /// JSON: the error's description, the WeChat errcode, the user agent.
    pub detail: String,
    pub user_agent: String,
    pub is_triggered: bool,
    /// Set when an administrator added it through `add-record`: who did.
    pub added_by: String,
}

/// Which records to read: always one organization or all (global administrators), newest first
/// unless `sort` says otherwise.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub organization: Option<String>,
    pub user_name: Option<String>,
    pub action: Option<String>,
    pub response: Option<String>,
    /// Casdoor's `field`/`value`: one more column, matched exactly (checked by the caller).
    pub field: Option<(RecordField, String)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub sort: Option<(RecordField, bool)>,
    pub offset: u64,
    /// 0 = no limit.
    pub limit: u64,
}

/// The record columns one may filter or sort by: a closed list, so no text reaches SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordField {
    Name,
    CreatedTime,
    Organization,
    ClientIp,
    User,
    Method,
    RequestUri,
    Action,
    Object,
    Response,
    StatusCode,
}

impl RecordField {
    pub const ALL: [Self; 11] = [
        Self::Name,
        Self::CreatedTime,
        Self::Organization,
        Self::ClientIp,
        Self::User,
        Self::Method,
        Self::RequestUri,
        Self::Action,
        Self::Object,
        Self::Response,
        Self::StatusCode,
    ];

    /// Casdoor's camelCase names, and the snake_case spellings of its columns.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Self::Name,
            "createdTime" | "created_time" => Self::CreatedTime,
            "organization" | "owner" => Self::Organization,
            "clientIp" | "client_ip" => Self::ClientIp,
            "user" => Self::User,
            "method" => Self::Method,
            "requestUri" | "request_uri" => Self::RequestUri,
            "action" => Self::Action,
            "object" => Self::Object,
            "response" => Self::Response,
            "statusCode" | "status_code" => Self::StatusCode,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::CreatedTime => "createdTime",
            Self::Organization => "organization",
            Self::ClientIp => "clientIp",
            Self::User => "user",
            Self::Method => "method",
            Self::RequestUri => "requestUri",
            Self::Action => "action",
            Self::Object => "object",
            Self::Response => "response",
            Self::StatusCode => "statusCode",
        }
    }
}

/// How `get-users` may search (SPEC §10): by prefix, except an openid, which is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSearch {
    Name,
    DisplayName,
    /// The national number (`138…`), or the E.164 form when the value starts with `+`.
    Phone,
    Email,
    /// An openid of any of the user's mini programs, exactly.
    Wechat,
    WechatUnionId,
}

impl UserSearch {
    /// Casdoor's camelCase names and the snake_case spellings of its columns.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Self::Name,
            "displayName" | "display_name" => Self::DisplayName,
            "phone" => Self::Phone,
            "email" => Self::Email,
            "wechat" | "wechatOpenId" | "wechat_open_id" | "openid" => Self::Wechat,
            "wechatUnionId" | "wechat_union_id" | "unionid" => Self::WechatUnionId,
            _ => return None,
        })
    }
}

/// What `get-users` may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    CreatedTime,
    Name,
    DisplayName,
    LastSigninTime,
    UpdatedTime,
}

impl UserSort {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "createdTime" | "created_time" => Self::CreatedTime,
            "name" => Self::Name,
            "displayName" | "display_name" => Self::DisplayName,
            "lastSigninTime" | "last_signin_time" => Self::LastSigninTime,
            "updatedTime" | "updated_time" => Self::UpdatedTime,
            _ => return None,
        })
    }
}

/// Which users to list: one organization or all, one search, one order, one page.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub owner: Option<String>,
    pub search: Option<(UserSearch, String)>,
    /// The column and whether ascending; default: oldest first, then by name.
    pub sort: Option<(UserSort, bool)>,
    pub offset: u64,
    /// 0 = no limit.
    pub limit: u64,
    /// The caller knows the total already: do not count (the answer's total is then 0).
    pub skip_total: bool,
    /// Only forbidden (`Some(true)`) or only allowed (`Some(false)`) users.
    pub forbidden: Option<bool>,
}

/// One cell of the dashboard's counts: records of `action` with `response` (and WeChat's
/// `errcode`) in the hour or day `bucket` (`2026-11-30T09` or `2026-11-30`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub bucket: String,
    pub action: String,
    pub response: String,
    pub errcode: i64,
    pub n: u64,
}
