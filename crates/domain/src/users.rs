//! Bearer authentication and the user APIs (SPEC §5).

use chrono::Utc;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::StoreError;
use crate::model::{Organization, User};
use crate::ports::Claims;
use crate::service::{Iam, Principal};
use crate::values::{AvatarUrl, DisplayName, split_id};

/// Errors of the `/api` routes, each with its HTTP meaning.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::MissingReference(what) => {
                Self::BadRequest(format!("{what} does not exist"))
            }
            StoreError::Unavailable(_) => Self::Unavailable("the database is unavailable".into()),
            StoreError::Corrupt(m) => Self::Internal(format!("stored data is corrupt: {m}")),
        }
    }
}

/// Fields a user may change on themself.
pub const SELF_SERVICE_FIELDS: &[&str] = &[
    "displayName",
    "avatar",
    "firstName",
    "lastName",
    "bio",
    "gender",
    "language",
    "location",
    "region",
    "homepage",
    "title",
    "affiliation",
    "birthday",
];

/// Fields only administrators change.
pub const ADMIN_FIELDS: &[&str] = &[
    "email",
    "phone",
    "countryCode",
    "isAdmin",
    "isForbidden",
    "isDeleted",
    "password",
    "type",
    "signupApplication",
];

/// `display_name` → `displayName`; camelCase stays as it is.
pub fn to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.trim().chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn string_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::BadRequest(format!("{field} must be a string"))),
    }
}

fn bool_field(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{field} must be true or false"
        ))),
    }
}

impl Iam {
    /// Checks a Bearer token: signature, `exp`, `iss`, that it is an access token we issued and
    /// did not revoke, and that its user still exists and may sign in.
    pub async fn authenticate_bearer(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<(Principal, Claims), ApiError> {
        let unauthorized = |m: &str| ApiError::Unauthorized(m.to_owned());
        let kid = self
            .codec
            .kid(token)
            .ok_or_else(|| unauthorized("the access token is malformed"))?;
        let cert = self
            .cert(&kid)
            .await?
            .ok_or_else(|| unauthorized("the access token was not signed by this server"))?;
        let claims = self
            .codec
            .verify(&cert, token, issuer)
            .map_err(|e| ApiError::Unauthorized(format!("invalid access token: {e}")))?;
        if claims.token_type != "access-token" {
            return Err(unauthorized("not an access token"));
        }
        let record = self
            .repo
            .get_token_by_access_hash(&self.codec.hash(token))
            .await?
            .ok_or_else(|| unauthorized("the access token is unknown"))?;
        if record.revoked {
            return Err(unauthorized("the access token has been revoked"));
        }
        if record.user_id.is_empty() {
            let app = self
                .repo
                .get_application(&record.application)
                .await?
                .ok_or_else(|| unauthorized("the application of this token no longer exists"))?;
            return Ok((Principal::Application(app), claims));
        }
        let user = self
            .repo
            .get_user_by_id(&record.user_id)
            .await?
            .ok_or_else(|| unauthorized("the user of this token no longer exists"))?;
        if user.is_blocked() {
            return Err(unauthorized("the user is forbidden to sign in"));
        }
        Ok((Principal::User(user), claims))
    }

    /// Client credentials presented on an `/api` call (HTTP Basic or query parameters).
    pub async fn authenticate_app(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Principal, ApiError> {
        self.authenticate_client(client_id, client_secret, true)
            .await
            .map(Principal::Application)
            .map_err(|e| ApiError::Unauthorized(e.description))
    }

    /// `POST /api/update-user`. Returns whether anything changed.
    pub async fn update_user(
        &self,
        caller: &Principal,
        id: Option<&str>,
        body: &Map<String, Value>,
        columns: Option<&str>,
    ) -> Result<bool, ApiError> {
        // The target: ?id=, else the body's owner+name, else the caller.
        let (owner, name) = if let Some(id) = id.filter(|s| !s.is_empty()) {
            let (o, n) = split_id("id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            (o.into_string(), n.into_string())
        } else {
            match (string_field(body, "owner")?, string_field(body, "name")?) {
                (Some(o), Some(n)) if !o.is_empty() && !n.is_empty() => (o, n),
                _ => match caller {
                    Principal::User(u) => (u.owner.clone(), u.name.clone()),
                    Principal::Application(_) => {
                        return Err(ApiError::BadRequest(
                            "id (owner/name) of the user to update is required".into(),
                        ));
                    }
                },
            }
        };
        let is_self = matches!(caller, Principal::User(u) if u.owner == owner && u.name == name);
        let admin = caller.administers(&owner);
        if !is_self && !admin {
            return Err(ApiError::Forbidden("Unauthorized operation".into()));
        }
        let mut user =
            self.repo.get_user(&owner, &name).await?.ok_or_else(|| {
                ApiError::NotFound(format!("the user {owner}/{name} does not exist"))
            })?;

        let fields: Vec<String> = match columns.map(str::trim).filter(|c| !c.is_empty()) {
            Some(cols) => {
                let mut v = Vec::new();
                for c in cols.split(',').map(to_camel).filter(|c| !c.is_empty()) {
                    if !SELF_SERVICE_FIELDS.contains(&c.as_str())
                        && !ADMIN_FIELDS.contains(&c.as_str())
                    {
                        return Err(ApiError::BadRequest(format!("unknown column {c:?}")));
                    }
                    if !admin && !SELF_SERVICE_FIELDS.contains(&c.as_str()) {
                        return Err(ApiError::Forbidden(format!(
                            "Only admin can modify the {c}"
                        )));
                    }
                    v.push(c);
                }
                v
            }
            None => body
                .keys()
                .map(|k| to_camel(k))
                .filter(|k| {
                    SELF_SERVICE_FIELDS.contains(&k.as_str())
                        || (admin && ADMIN_FIELDS.contains(&k.as_str()))
                })
                .collect(),
        };
        // Accept snake_case keys in the body too.
        let body: Map<String, Value> = body.iter().map(|(k, v)| (to_camel(k), v.clone())).collect();

        let before = user.clone();
        for f in &fields {
            let f = f.as_str();
            match f {
                "isAdmin" | "isForbidden" | "isDeleted" => {
                    if let Some(b) = bool_field(&body, f)? {
                        match f {
                            "isAdmin" => user.is_admin = b,
                            "isForbidden" => user.is_forbidden = b,
                            _ => user.is_deleted = b,
                        }
                    }
                }
                "password" => {
                    if let Some(p) = string_field(&body, f)?.filter(|p| !p.is_empty()) {
                        let hash = self.passwords.hash(&p).await.map_err(ApiError::Internal)?;
                        user.password_hash = Some(hash);
                    }
                }
                _ => {
                    let Some(v) = string_field(&body, f)? else {
                        continue;
                    };
                    match f {
                        "displayName" => {
                            user.display_name = DisplayName::parse("displayName", &v)
                                .map_err(|e| ApiError::BadRequest(e.to_string()))?
                                .into_string();
                        }
                        "avatar" => {
                            if !v.is_empty() {
                                AvatarUrl::parse("avatar", &v)
                                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                            }
                            user.avatar = v;
                        }
                        "email" => user.email = v,
                        "phone" => user.phone = v,
                        "countryCode" => user.country_code = v,
                        "type" => user.user_type = v,
                        "signupApplication" => user.signup_application = v,
                        other => {
                            if v.chars().count() > 1000 {
                                return Err(ApiError::BadRequest(format!(
                                    "{other} is longer than 1000 characters"
                                )));
                            }
                            let p = &mut user.profile;
                            let slot = match other {
                                "firstName" => &mut p.first_name,
                                "lastName" => &mut p.last_name,
                                "bio" => &mut p.bio,
                                "gender" => &mut p.gender,
                                "language" => &mut p.language,
                                "location" => &mut p.location,
                                "region" => &mut p.region,
                                "homepage" => &mut p.homepage,
                                "title" => &mut p.title,
                                "affiliation" => &mut p.affiliation,
                                "birthday" => &mut p.birthday,
                                _ => continue,
                            };
                            *slot = v;
                        }
                    }
                }
            }
        }
        // An administrator cannot lock themself out: no forbidding, deleting or demoting yourself.
        if is_self
            && ((user.is_forbidden && !before.is_forbidden)
                || (user.is_deleted && !before.is_deleted)
                || (before.is_admin && !user.is_admin))
        {
            return Err(ApiError::BadRequest(
                "isAdmin, isForbidden, isDeleted: you cannot forbid, delete or demote yourself"
                    .into(),
            ));
        }
        if user == before {
            return Ok(false);
        }
        user.updated_time = Utc::now();
        self.repo.update_user(&user).await?;
        Ok(true)
    }

    /// The caller's own user and organization (`/api/get-account`).
    pub async fn account(
        &self,
        caller: &Principal,
    ) -> Result<(User, Option<Organization>), ApiError> {
        match caller {
            Principal::User(u) => {
                let org = self.repo.get_organization(&u.owner).await?;
                Ok((u.clone(), org))
            }
            Principal::Application(_) => Err(ApiError::BadRequest(
                "an application token has no account; sign a user in".into(),
            )),
        }
    }

    /// `/api/get-user?id=owner/name`: yourself, or anyone you administer. `None` when absent.
    pub async fn get_user(&self, caller: &Principal, id: &str) -> Result<Option<User>, ApiError> {
        let (owner, name) = split_id("id", id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let is_self = matches!(caller, Principal::User(u) if u.owner == owner.as_str() && u.name == name.as_str());
        if !is_self && !caller.administers(owner.as_str()) {
            return Err(ApiError::Forbidden("Unauthorized operation".into()));
        }
        Ok(self.repo.get_user(owner.as_str(), name.as_str()).await?)
    }

    /// `/api/get-users?owner=`: the users of an organization you administer.
    pub async fn get_users(&self, caller: &Principal, owner: &str) -> Result<Vec<User>, ApiError> {
        if owner.is_empty() {
            return Err(ApiError::BadRequest("owner is required".into()));
        }
        if !caller.administers(owner) {
            return Err(ApiError::Forbidden("Unauthorized operation".into()));
        }
        Ok(self.repo.list_users(Some(owner)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case() {
        assert_eq!(to_camel("display_name"), "displayName");
        assert_eq!(to_camel("displayName"), "displayName");
        assert_eq!(to_camel(" is_admin "), "isAdmin");
    }
}
