//! Row structs, one per table, and their conversion to and from domain entities. A row that
//! cannot be read back (bad time, bad JSON) is reported as `StoreError::Corrupt`, never a panic.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use iam_domain::model::{
    Application, Cert, Organization, Profile, Provider, RefreshToken, Session, TokenRecord, User,
    WechatIdentity,
};
use iam_domain::values::{
    AppId, ClientId, CryptoAlgorithm, DisplayName, ObjectName, WebUrl, WechatId,
};
use iam_domain::{Secret, StoreError};

use crate::schema::*;

pub fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(what: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{what}: bad time {s:?}: {e}")))
}

/// A listing's LIMIT and OFFSET as SQL takes them: "no limit" (0) is the largest one, since
/// SQLite takes an OFFSET only after a LIMIT, and a count past any table (a page number of 18
/// digits times its size) is that largest one too, never wrapped negative — a negative OFFSET
/// is an error on PostgreSQL and the first page on SQLite.
pub fn sql_window(limit: u64, offset: u64) -> (i64, i64) {
    let bound = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let limit = if limit == 0 { i64::MAX } else { bound(limit) };
    (limit, bound(offset))
}

/// Casdoor's fields without a column of their own, stored as a JSON object.
fn extra(what: &str, s: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what} extra fields: {e}")))
}

/// A stored name, read back into its value type.
fn value(what: &str, s: String) -> Result<ObjectName, StoreError> {
    ObjectName::parse("name", &s).map_err(|e| StoreError::Corrupt(format!("{what} {s:?}: {e}")))
}

fn client_id(s: String) -> Result<ClientId, StoreError> {
    ClientId::parse(&s).map_err(|e| StoreError::Corrupt(format!("application clientId: {e}")))
}

fn parse_opt_ts(what: &str, s: Option<&str>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| parse_ts(what, s)).transpose()
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Debug, Clone)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub name: String,
    pub owner: String,
    pub display_name: String,
    pub default_avatar: String,
    pub created_time: String,
    pub extra: String,
}

impl From<&Organization> for OrganizationRow {
    fn from(o: &Organization) -> Self {
        Self {
            name: o.name.to_string(),
            owner: "admin".into(),
            display_name: o.display_name.to_string(),
            default_avatar: o.default_avatar.to_string(),
            created_time: ts(&o.created_time),
            extra: serde_json::Value::Object(o.extra.clone()).to_string(),
        }
    }
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = StoreError;
    fn try_from(r: OrganizationRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("organization", &r.created_time)?,
            extra: extra("organization", &r.extra)?,
            name: value("organization", r.name)?,
            display_name: DisplayName::stored(r.display_name),
            default_avatar: WebUrl::stored(r.default_avatar),
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Debug, Clone)]
#[diesel(table_name = certs)]
pub struct CertRow {
    pub name: String,
    pub owner: String,
    pub display_name: String,
    pub cert_type: String,
    pub crypto_algorithm: String,
    pub bit_size: i32,
    pub certificate: String,
    pub private_key: String,
    pub created_time: String,
    pub extra: String,
}

impl From<&Cert> for CertRow {
    fn from(c: &Cert) -> Self {
        Self {
            name: c.name.to_string(),
            owner: "admin".into(),
            display_name: c.display_name.to_string(),
            cert_type: c.cert_type.clone(),
            crypto_algorithm: c.crypto_algorithm.as_str().into(),
            bit_size: c.bit_size,
            certificate: c.certificate.clone(),
            private_key: c.private_key.expose().to_owned(),
            created_time: ts(&c.created_time),
            extra: serde_json::Value::Object(c.extra.clone()).to_string(),
        }
    }
}

impl TryFrom<CertRow> for Cert {
    type Error = StoreError;
    fn try_from(r: CertRow) -> Result<Self, StoreError> {
        Ok(Self {
            crypto_algorithm: CryptoAlgorithm::parse(&r.crypto_algorithm)
                .map_err(|e| StoreError::Corrupt(format!("cert {}: {e}", r.name)))?,
            created_time: parse_ts("cert", &r.created_time)?,
            extra: extra("cert", &r.extra)?,
            name: value("cert", r.name)?,
            display_name: DisplayName::stored(r.display_name),
            cert_type: r.cert_type,
            bit_size: r.bit_size,
            certificate: r.certificate,
            private_key: Secret::new(r.private_key),
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Debug, Clone)]
#[diesel(table_name = providers)]
pub struct ProviderRow {
    pub owner: String,
    pub name: String,
    pub display_name: String,
    pub category: String,
    pub provider_type: String,
    pub sub_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub created_time: String,
    pub extra: String,
}

impl From<&Provider> for ProviderRow {
    fn from(p: &Provider) -> Self {
        Self {
            owner: p.owner.to_string(),
            name: p.name.to_string(),
            display_name: p.display_name.to_string(),
            category: p.category.clone(),
            provider_type: p.provider_type.clone(),
            sub_type: p.sub_type.clone(),
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.expose().to_owned(),
            created_time: ts(&p.created_time),
            extra: serde_json::Value::Object(p.extra.clone()).to_string(),
        }
    }
}

impl TryFrom<ProviderRow> for Provider {
    type Error = StoreError;
    fn try_from(r: ProviderRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("provider", &r.created_time)?,
            extra: extra("provider", &r.extra)?,
            owner: value("provider owner", r.owner)?,
            name: value("provider", r.name)?,
            display_name: DisplayName::stored(r.display_name),
            category: r.category,
            provider_type: r.provider_type,
            sub_type: r.sub_type,
            client_id: r.client_id,
            client_secret: Secret::new(r.client_secret),
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Debug, Clone)]
#[diesel(table_name = applications)]
pub struct ApplicationRow {
    pub name: String,
    pub owner: String,
    pub display_name: String,
    pub organization: String,
    pub client_id: String,
    pub client_secret: String,
    pub cert: String,
    pub enable_sign_up: bool,
    pub providers: String,
    pub grant_types: String,
    pub token_format: String,
    pub expire_in_hours: i64,
    pub refresh_expire_in_hours: i64,
    pub max_sessions_per_user: i32,
    pub created_time: String,
    pub extra: String,
}

impl TryFrom<&Application> for ApplicationRow {
    type Error = StoreError;
    fn try_from(a: &Application) -> Result<Self, StoreError> {
        Ok(Self {
            name: a.name.to_string(),
            owner: "admin".into(),
            display_name: a.display_name.to_string(),
            organization: a.organization.to_string(),
            client_id: a.client_id.to_string(),
            client_secret: a.client_secret.expose().to_owned(),
            cert: a.cert.as_deref().unwrap_or_default().to_owned(),
            enable_sign_up: a.enable_sign_up,
            providers: to_json(&a.providers)?,
            grant_types: to_json(&a.grant_types)?,
            token_format: a.token_format.clone(),
            expire_in_hours: a.expire_in_hours,
            refresh_expire_in_hours: a.refresh_expire_in_hours,
            max_sessions_per_user: a.max_sessions_per_user as i32,
            created_time: ts(&a.created_time),
            extra: serde_json::Value::Object(a.extra.clone()).to_string(),
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl TryFrom<ApplicationRow> for Application {
    type Error = StoreError;
    fn try_from(r: ApplicationRow) -> Result<Self, StoreError> {
        let corrupt =
            |e: serde_json::Error| StoreError::Corrupt(format!("application {}: {e}", r.name));
        Ok(Self {
            providers: serde_json::from_str(&r.providers).map_err(corrupt)?,
            grant_types: serde_json::from_str(&r.grant_types).map_err(corrupt)?,
            created_time: parse_ts("application", &r.created_time)?,
            extra: extra("application", &r.extra)?,
            name: value("application", r.name)?,
            display_name: DisplayName::stored(r.display_name),
            organization: value("application organization", r.organization)?,
            client_id: client_id(r.client_id)?,
            client_secret: Secret::new(r.client_secret),
            cert: match r.cert.as_str() {
                "" => None,
                _ => Some(value("application cert", r.cert)?),
            },
            enable_sign_up: r.enable_sign_up,
            token_format: r.token_format,
            expire_in_hours: r.expire_in_hours,
            refresh_expire_in_hours: r.refresh_expire_in_hours,
            max_sessions_per_user: r.max_sessions_per_user.max(0) as u32,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Debug, Clone)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct UserRow {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub user_type: String,
    pub display_name: String,
    pub avatar: String,
    pub email: String,
    pub phone: String,
    pub country_code: String,
    /// NULL when the user has no parsed phone: NULLs never collide in the unique index.
    pub phone_e164: Option<String>,
    pub is_admin: bool,
    pub is_forbidden: bool,
    pub is_deleted: bool,
    pub signup_application: String,
    pub wechat: String,
    pub wechat_open_id: String,
    pub wechat_union_id: String,
    pub password_hash: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub bio: String,
    pub gender: String,
    pub language: String,
    pub location: String,
    pub region: String,
    pub homepage: String,
    pub title: String,
    pub affiliation: String,
    pub birthday: String,
    pub created_time: String,
    pub updated_time: String,
    pub last_signin_time: Option<String>,
    pub extra: String,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        let p = &u.profile;
        Self {
            id: u.id.clone(),
            owner: u.owner.to_string(),
            name: u.name.to_string(),
            user_type: u.user_type.clone(),
            display_name: u.display_name.to_string(),
            avatar: u.avatar.to_string(),
            email: u.email.clone(),
            phone: u.phone.clone(),
            country_code: u.country_code.clone(),
            phone_e164: (!u.phone_e164.is_empty()).then(|| u.phone_e164.clone()),
            is_admin: u.is_admin,
            is_forbidden: u.is_forbidden,
            is_deleted: u.is_deleted,
            signup_application: u.signup_application.clone(),
            wechat: u.wechat.as_deref().unwrap_or_default().to_owned(),
            wechat_open_id: u.wechat_open_id.as_deref().unwrap_or_default().to_owned(),
            wechat_union_id: u.wechat_union_id.as_deref().unwrap_or_default().to_owned(),
            password_hash: u.password_hash.as_ref().map(|h| h.expose().to_owned()),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            bio: p.bio.clone(),
            gender: p.gender.clone(),
            language: p.language.clone(),
            location: p.location.clone(),
            region: p.region.clone(),
            homepage: p.homepage.to_string(),
            title: p.title.clone(),
            affiliation: p.affiliation.clone(),
            birthday: p.birthday.clone(),
            created_time: ts(&u.created_time),
            updated_time: ts(&u.updated_time),
            last_signin_time: u.last_signin_time.as_ref().map(ts),
            extra: serde_json::Value::Object(u.extra.clone()).to_string(),
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("user", &r.created_time)?,
            updated_time: parse_ts("user", &r.updated_time)?,
            last_signin_time: parse_opt_ts("user", r.last_signin_time.as_deref())?,
            extra: extra("user", &r.extra)?,
            owner: value("user owner", r.owner)?,
            name: value("user", r.name)?,
            display_name: DisplayName::stored(r.display_name),
            id: r.id,
            user_type: r.user_type,
            avatar: WebUrl::stored(r.avatar),
            email: r.email,
            phone: r.phone,
            country_code: r.country_code,
            phone_e164: r.phone_e164.unwrap_or_default(),
            is_admin: r.is_admin,
            is_forbidden: r.is_forbidden,
            is_deleted: r.is_deleted,
            signup_application: r.signup_application,
            wechat: WechatId::stored(r.wechat),
            wechat_open_id: WechatId::stored(r.wechat_open_id),
            wechat_union_id: WechatId::stored(r.wechat_union_id),
            password_hash: r.password_hash.map(Secret::new),
            profile: Profile {
                first_name: r.first_name,
                last_name: r.last_name,
                bio: r.bio,
                gender: r.gender,
                language: r.language,
                location: r.location,
                region: r.region,
                homepage: WebUrl::stored(r.homepage),
                title: r.title,
                affiliation: r.affiliation,
                birthday: r.birthday,
            },
        })
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = wechat_identities)]
pub struct IdentityRow {
    pub appid: String,
    pub openid: String,
    pub unionid: String,
    pub organization: String,
    pub user_id: String,
    pub created_time: String,
}

impl From<&WechatIdentity> for IdentityRow {
    fn from(i: &WechatIdentity) -> Self {
        Self {
            appid: i.appid.to_string(),
            openid: i.openid.to_string(),
            unionid: i.unionid.as_deref().unwrap_or_default().to_owned(),
            organization: i.organization.clone(),
            user_id: i.user_id.clone(),
            created_time: ts(&i.created_time),
        }
    }
}

/// A stored unionid (empty: none); one that is not an id is a corrupt row.
pub(crate) fn stored_unionid(s: &str) -> Result<Option<WechatId>, StoreError> {
    WechatId::parse_optional("unionid", s)
        .map_err(|e| StoreError::Corrupt(format!("wechat identity {e}")))
}

impl TryFrom<IdentityRow> for WechatIdentity {
    type Error = StoreError;
    fn try_from(r: IdentityRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("wechat identity", &r.created_time)?,
            appid: AppId::parse(&r.appid)
                .map_err(|e| StoreError::Corrupt(format!("wechat identity appid: {e}")))?,
            openid: WechatId::parse("openid", &r.openid)
                .map_err(|e| StoreError::Corrupt(format!("wechat identity {e}")))?,
            unionid: stored_unionid(&r.unionid)?,
            organization: r.organization,
            user_id: r.user_id,
            last_signin_time: None,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = tokens)]
pub struct TokenRow {
    pub id: String,
    pub application: String,
    pub organization: String,
    pub user_id: String,
    pub access_token_hash: String,
    pub refresh_token_hash: Option<String>,
    pub family: String,
    pub scope: String,
    pub token_type: String,
    pub expires_at: String,
    pub refresh_expires_at: Option<String>,
    pub created_time: String,
    pub revoked: bool,
    pub refresh_used: bool,
}

impl From<&TokenRecord> for TokenRow {
    fn from(t: &TokenRecord) -> Self {
        Self {
            id: t.id.clone(),
            application: t.application.clone(),
            organization: t.organization.clone(),
            user_id: t.user_id.clone(),
            access_token_hash: t.access_token_hash.clone(),
            refresh_token_hash: t.refresh_token_hash.clone(),
            family: t.family.clone(),
            scope: t.scope.clone(),
            token_type: t.token_type.clone(),
            expires_at: ts(&t.expires_at),
            refresh_expires_at: t.refresh_expires_at.as_ref().map(ts),
            created_time: ts(&t.created_time),
            revoked: t.revoked,
            refresh_used: t.refresh_used,
        }
    }
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(Self {
            expires_at: parse_ts("token", &r.expires_at)?,
            refresh_expires_at: parse_opt_ts("token", r.refresh_expires_at.as_deref())?,
            created_time: parse_ts("token", &r.created_time)?,
            id: r.id,
            application: r.application,
            organization: r.organization,
            user_id: r.user_id,
            access_token_hash: r.access_token_hash,
            refresh_token_hash: r.refresh_token_hash,
            family: r.family,
            scope: r.scope,
            token_type: r.token_type,
            revoked: r.revoked,
            refresh_used: r.refresh_used,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub organization: String,
    pub application: String,
    pub user_id: String,
    pub user_name: String,
    pub created_time: String,
    pub last_active_time: String,
    pub expires_time: String,
    pub client_ip: String,
    pub user_agent: String,
    pub revoked_time: Option<String>,
    pub revoked_reason: String,
}

impl From<&Session> for SessionRow {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.clone(),
            organization: s.organization.clone(),
            application: s.application.clone(),
            user_id: s.user_id.clone(),
            user_name: s.user_name.clone(),
            created_time: ts(&s.created_time),
            last_active_time: ts(&s.last_active_time),
            expires_time: ts(&s.expires_time),
            client_ip: s.client_ip.clone(),
            user_agent: s.user_agent.clone(),
            revoked_time: s.revoked_time.as_ref().map(ts),
            revoked_reason: s.revoked_reason.clone(),
        }
    }
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("session", &r.created_time)?,
            last_active_time: parse_ts("session", &r.last_active_time)?,
            expires_time: parse_ts("session", &r.expires_time)?,
            revoked_time: parse_opt_ts("session", r.revoked_time.as_deref())?,
            id: r.id,
            organization: r.organization,
            application: r.application,
            user_id: r.user_id,
            user_name: r.user_name,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            revoked_reason: r.revoked_reason,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub hash: String,
    pub session_id: String,
    pub application: String,
    pub organization: String,
    pub user_id: String,
    pub scope: String,
    pub created_time: String,
    pub expires_time: String,
    pub used: bool,
}

impl From<&RefreshToken> for RefreshRow {
    fn from(t: &RefreshToken) -> Self {
        Self {
            hash: t.hash.clone(),
            session_id: t.session_id.clone(),
            application: t.application.clone(),
            organization: t.organization.clone(),
            user_id: t.user_id.clone(),
            scope: t.scope.clone(),
            created_time: ts(&t.created_time),
            expires_time: ts(&t.expires_time),
            used: t.used,
        }
    }
}

impl TryFrom<RefreshRow> for RefreshToken {
    type Error = StoreError;
    fn try_from(r: RefreshRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("refresh token", &r.created_time)?,
            expires_time: parse_ts("refresh token", &r.expires_time)?,
            hash: r.hash,
            session_id: r.session_id,
            application: r.application,
            organization: r.organization,
            user_id: r.user_id,
            scope: r.scope,
            used: r.used,
        })
    }
}

#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = revocations)]
pub struct NewRevocationRow {
    pub kind: String,
    pub subject: String,
    pub expires_time: String,
    pub created_time: String,
}
