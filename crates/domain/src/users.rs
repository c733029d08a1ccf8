//! Bearer authentication and the user APIs (SPEC §5).

use chrono::Utc;

use crate::Error;
use crate::model::{Organization, User};
use crate::ports::Claims;
use crate::service::{Iam, Principal};
use crate::values::{DisplayName, WebUrl, split_id};

/// SPEC §8: a phone belongs to one user of an organization.
pub const PHONE_TAKEN: &str = "the phone number is bound to another account";

impl Iam {
    /// Checks a Bearer token: signature, `exp`, `iss`, that it is an access token of one of our
    /// applications, and then, without storing access tokens (SPEC §9): a user's token must name
    /// an active session of its subject, whose user may still sign in; an application's token
    /// must not have been revoked by its `jti`. On the hot path everything comes from what this
    /// node already knows; the database is read only on a miss.
    pub async fn authenticate_bearer(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<(Principal, Claims), Error> {
        let refused = |m: &str| Error::InvalidToken(m.to_owned());
        let kid = self
            .codec
            .kid(token)
            .ok_or_else(|| refused("the access token is malformed"))?;
        let cert = self
            .cert(&kid)
            .await?
            .ok_or_else(|| refused("the access token was not signed by this server"))?;
        let claims = self
            .codec
            .verify(&cert, token, issuer)
            .map_err(|e| refused(&format!("invalid access token: {e}")))?;
        if claims.token_type != "access-token" {
            return Err(refused("not an access token"));
        }
        let audience_ok = match &claims.aud {
            serde_json::Value::Array(a) => a.iter().any(|v| v.as_str() == Some(&claims.azp)),
            serde_json::Value::String(a) => *a == claims.azp,
            _ => false,
        };
        let app = match audience_ok {
            true => self.application_by_client_id(&claims.azp).await?,
            false => None,
        }
        .ok_or_else(|| refused("the access token is not for an application of this server"))?;
        if claims.sid.is_empty() {
            // An application's own token, or a user's from before sessions.
            if claims.sub == app.client_id.as_str() && claims.owner == crate::model::ADMIN_OWNER {
                let legacy_revoked = self
                    .legacy_token(&self.codec.hash(token))
                    .await?
                    .is_some_and(|t| t.revoked);
                if legacy_revoked || self.jti_revoked(&claims.jti) {
                    return Err(refused("the access token has been revoked"));
                }
                return Ok((Principal::Application(app), claims));
            }
            let record = self
                .legacy_token(&self.codec.hash(token))
                .await?
                .filter(|t| t.user_id == claims.sub)
                .ok_or_else(|| refused("the access token is unknown"))?;
            if record.revoked || !self.session_is_active(&record.family, &claims.sub).await? {
                return Err(refused("the access token has been revoked"));
            }
        } else if !self.session_is_active(&claims.sid, &claims.sub).await? {
            return Err(refused(
                "the access token's session has ended: sign in again",
            ));
        }
        let user = self
            .user_by_id(&claims.sub)
            .await?
            .ok_or_else(|| refused("the user of this token no longer exists"))?;
        if user.is_blocked() {
            return Err(refused("the user is forbidden to sign in"));
        }
        Ok((Principal::User((*user).clone()), claims))
    }

    /// The claims of a token this server signed (expired or not yet: `None`), for revocation.
    pub(crate) async fn our_claims(
        &self,
        token: &str,
    ) -> Result<Option<Claims>, crate::StoreError> {
        let Some(kid) = self.codec.kid(token) else {
            return Ok(None);
        };
        let Some(cert) = self.cert(&kid).await? else {
            return Ok(None);
        };
        Ok(self.codec.verify(&cert, token, None).ok())
    }

    /// Client credentials presented on an `/api` call (HTTP Basic or query parameters).
    pub async fn authenticate_app(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Principal, Error> {
        self.authenticate_client(client_id, client_secret, true)
            .await
            .map(Principal::Application)
            .map_err(Error::from)
    }

    /// `POST /api/update-user`: `id` (`owner/name`), else the body's owner and name, else the
    /// caller. Returns whether anything changed.
    pub async fn update_user(
        &self,
        caller: &Principal,
        id: Option<&str>,
        body_target: Option<(&str, &str)>,
        patch: UserPatch,
        columns: Option<&str>,
    ) -> Result<bool, Error> {
        let (owner, name) = if let Some(id) = id.filter(|s| !s.is_empty()) {
            let (o, n) = split_id("id", id)?;
            (o.into_string(), n.into_string())
        } else {
            match (body_target, caller) {
                (Some((o, n)), _) if !o.is_empty() && !n.is_empty() => (o.to_owned(), n.to_owned()),
                (_, Principal::User(u)) => (u.owner.to_string(), u.name.to_string()),
                (_, Principal::Application(_)) => {
                    return Err(Error::invalid(
                        "id: owner/name of the user to update is required",
                    ));
                }
            }
        };
        let is_self = matches!(caller, Principal::User(u) if u.owner == owner && u.name == name);
        let admin = caller.administers(&owner);
        if !is_self && !admin {
            return Err(Error::forbidden());
        }
        // Which fields: `columns` when given (a protected one is refused), else every field the
        // body carries that the caller may change (the rest is ignored, as Casdoor does).
        let columns = columns.map(str::trim).filter(|c| !c.is_empty());
        let fields: Vec<UserField> = match columns {
            Some(cols) => {
                let mut v = Vec::new();
                for c in cols.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    let f = UserField::parse(c)
                        .ok_or_else(|| Error::invalid(format!("columns: unknown column {c:?}")))?;
                    if !admin && !f.is_self_service() {
                        return Err(Error::Forbidden(format!(
                            "Only admin can modify the {}",
                            f.name()
                        )));
                    }
                    v.push(f);
                }
                v
            }
            None => UserField::ALL
                .iter()
                .copied()
                .filter(|f| patch.carries(*f) && (admin || f.is_self_service()))
                .collect(),
        };
        let mut user =
            self.repo.get_user(&owner, &name).await?.ok_or_else(|| {
                Error::NotFound(format!("the user {owner}/{name} does not exist"))
            })?;
        let before = user.clone();
        // Writing 0 to the failed-password count unlocks the account (SPEC §12); the count is
        // kept apart from the user.
        let unlock = fields.contains(&UserField::SigninWrongTimes);
        if unlock && patch.signin_wrong_times.is_some_and(|n| n != 0) {
            return Err(Error::invalid(
                "signinWrongTimes: only 0 can be written: it unlocks the account",
            ));
        }
        for f in fields {
            self.apply_user_field(&mut user, f, &patch).await?;
        }
        if columns.is_none() && admin {
            crate::values::check_links(&patch.extra, crate::values::USER_LINKS)?;
            for (k, v) in &patch.extra {
                if v.is_null() {
                    user.extra.remove(k);
                } else {
                    user.extra.insert(k.clone(), v.clone());
                }
            }
        }
        // An administrator cannot lock themself out: no forbidding, deleting or demoting yourself.
        if is_self
            && ((user.is_forbidden && !before.is_forbidden)
                || (user.is_deleted && !before.is_deleted)
                || (before.is_admin && !user.is_admin))
        {
            return Err(Error::invalid(
                "isAdmin, isForbidden, isDeleted: you cannot forbid, delete or demote yourself",
            ));
        }
        if user.phone != before.phone || user.country_code != before.country_code {
            user.normalize_phone()?;
        }
        if unlock {
            self.repo.reset_password_failures(&user.id).await?;
        }
        if user == before {
            return Ok(unlock);
        }
        user.updated_time = Utc::now();
        self.repo.update_user(&user).await.map_err(|e| match e {
            // The only unique rule a changed user can break: the phone is someone else's.
            crate::StoreError::Conflict(_) => Error::Conflict(PHONE_TAKEN.into()),
            other => other.into(),
        })?;
        self.user_changed(&user.id);
        if user.is_blocked() && !before.is_blocked() {
            // Forbidden or deleted: every token of theirs stops working now.
            let which = crate::model::SessionSelector::all_of(&user.id);
            self.end_sessions(&which, "the user was forbidden").await?;
        }
        Ok(true)
    }

    async fn apply_user_field(
        &self,
        user: &mut User,
        field: UserField,
        patch: &UserPatch,
    ) -> Result<(), Error> {
        use UserField as F;
        let text = |v: &Option<String>| v.clone();
        match field {
            F::IsAdmin => user.is_admin = patch.is_admin.unwrap_or(user.is_admin),
            F::IsForbidden => user.is_forbidden = patch.is_forbidden.unwrap_or(user.is_forbidden),
            F::IsDeleted => user.is_deleted = patch.is_deleted.unwrap_or(user.is_deleted),
            F::Password => {
                // An empty password never changes one.
                if let Some(p) = patch.password.as_deref().filter(|p| !p.is_empty()) {
                    if let Some(org) = self.organization(user.owner.as_str()).await? {
                        let options = crate::password_rules::password_options(&org);
                        crate::password_rules::check_password(&options, p)?;
                    }
                    user.password_hash = Some(self.passwords.hash(p).await?);
                }
            }
            F::DisplayName => {
                // A value sent back as it is stored is kept, even one stored under an older,
                // laxer rule: Casdoor's SDKs send the whole user to change one field.
                if let Some(v) = text(&patch.display_name).filter(|v| *v != user.display_name) {
                    user.display_name = DisplayName::parse("displayName", &v)?;
                }
            }
            F::Avatar => {
                if let Some(v) = text(&patch.avatar).filter(|v| v != user.avatar.as_str()) {
                    user.avatar = WebUrl::parse("avatar", &v)?;
                }
            }
            F::Homepage => {
                if let Some(v) =
                    text(&patch.homepage).filter(|v| v != user.profile.homepage.as_str())
                {
                    user.profile.homepage = WebUrl::parse("homepage", &v)?;
                }
            }
            other => {
                let (value, slot) = match other {
                    F::Email => (&patch.email, &mut user.email),
                    F::Phone => (&patch.phone, &mut user.phone),
                    F::CountryCode => (&patch.country_code, &mut user.country_code),
                    F::Type => (&patch.user_type, &mut user.user_type),
                    F::SignupApplication => {
                        (&patch.signup_application, &mut user.signup_application)
                    }
                    F::FirstName => (&patch.first_name, &mut user.profile.first_name),
                    F::LastName => (&patch.last_name, &mut user.profile.last_name),
                    F::Bio => (&patch.bio, &mut user.profile.bio),
                    F::Gender => (&patch.gender, &mut user.profile.gender),
                    F::Language => (&patch.language, &mut user.profile.language),
                    F::Location => (&patch.location, &mut user.profile.location),
                    F::Region => (&patch.region, &mut user.profile.region),
                    F::Title => (&patch.title, &mut user.profile.title),
                    F::Affiliation => (&patch.affiliation, &mut user.profile.affiliation),
                    F::Birthday => (&patch.birthday, &mut user.profile.birthday),
                    _ => return Ok(()),
                };
                if let Some(v) = value {
                    *slot = crate::values::short_text(field.name(), v, 1000)?;
                }
            }
        }
        Ok(())
    }

    /// The caller's own user and organization (`/api/get-account`).
    pub async fn account(&self, caller: &Principal) -> Result<(User, Option<Organization>), Error> {
        match caller {
            Principal::User(u) => {
                let org = self.organization(&u.owner).await?;
                Ok((u.clone(), org.map(|o| (*o).clone())))
            }
            Principal::Application(_) => Err(Error::Invalid(
                "an application token has no account; sign a user in".into(),
            )),
        }
    }

    /// `/api/get-user?id=owner/name`: yourself, or anyone you administer. `None` when absent.
    pub async fn get_user(&self, caller: &Principal, id: &str) -> Result<Option<User>, Error> {
        let (owner, name) = split_id("id", id).map_err(|e| Error::Invalid(e.to_string()))?;
        let is_self = matches!(caller, Principal::User(u) if u.owner == owner.as_str() && u.name == name.as_str());
        if !is_self && !caller.administers(owner.as_str()) {
            return Err(Error::Forbidden("Unauthorized operation".into()));
        }
        Ok(self.repo.get_user(owner.as_str(), name.as_str()).await?)
    }
}

/// A user's field as `update-user` names it (Casdoor's camelCase; snake_case is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    DisplayName,
    Avatar,
    FirstName,
    LastName,
    Bio,
    Gender,
    Language,
    Location,
    Region,
    Homepage,
    Title,
    Affiliation,
    Birthday,
    Email,
    Phone,
    CountryCode,
    IsAdmin,
    IsForbidden,
    IsDeleted,
    Password,
    Type,
    SignupApplication,
    SigninWrongTimes,
}

impl UserField {
    pub const ALL: &'static [UserField] = &[
        Self::DisplayName,
        Self::Avatar,
        Self::FirstName,
        Self::LastName,
        Self::Bio,
        Self::Gender,
        Self::Language,
        Self::Location,
        Self::Region,
        Self::Homepage,
        Self::Title,
        Self::Affiliation,
        Self::Birthday,
        Self::Email,
        Self::Phone,
        Self::CountryCode,
        Self::IsAdmin,
        Self::IsForbidden,
        Self::IsDeleted,
        Self::Password,
        Self::Type,
        Self::SignupApplication,
        Self::SigninWrongTimes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::DisplayName => "displayName",
            Self::Avatar => "avatar",
            Self::FirstName => "firstName",
            Self::LastName => "lastName",
            Self::Bio => "bio",
            Self::Gender => "gender",
            Self::Language => "language",
            Self::Location => "location",
            Self::Region => "region",
            Self::Homepage => "homepage",
            Self::Title => "title",
            Self::Affiliation => "affiliation",
            Self::Birthday => "birthday",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CountryCode => "countryCode",
            Self::IsAdmin => "isAdmin",
            Self::IsForbidden => "isForbidden",
            Self::IsDeleted => "isDeleted",
            Self::Password => "password",
            Self::Type => "type",
            Self::SignupApplication => "signupApplication",
            Self::SigninWrongTimes => "signinWrongTimes",
        }
    }

    /// Casdoor's camelCase (`displayName`) or its snake_case column (`display_name`), as the
    /// OpenAPI pattern of `update-user`'s `columns` lists them.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| {
            let name = f.name();
            s == name || snake_case(name).eq(s.chars())
        })
    }

    /// What a user may change on themself (SPEC §5).
    pub fn is_self_service(self) -> bool {
        matches!(
            self,
            Self::DisplayName
                | Self::Avatar
                | Self::FirstName
                | Self::LastName
                | Self::Bio
                | Self::Gender
                | Self::Language
                | Self::Location
                | Self::Region
                | Self::Homepage
                | Self::Title
                | Self::Affiliation
                | Self::Birthday
        )
    }
}

/// `countryCode` → `country_code`, one character at a time.
fn snake_case(camel: &str) -> impl Iterator<Item = char> + '_ {
    camel.chars().flat_map(|c| {
        let lower = c.to_ascii_lowercase();
        (c.is_ascii_uppercase().then_some('_').into_iter()).chain(std::iter::once(lower))
    })
}

/// The fields an `update-user` body carries; `None` is "not sent".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub avatar: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub bio: Option<String>,
    pub gender: Option<String>,
    pub language: Option<String>,
    pub location: Option<String>,
    pub region: Option<String>,
    pub homepage: Option<String>,
    pub title: Option<String>,
    pub affiliation: Option<String>,
    pub birthday: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country_code: Option<String>,
    pub is_admin: Option<bool>,
    pub is_forbidden: Option<bool>,
    pub is_deleted: Option<bool>,
    pub password: Option<String>,
    pub user_type: Option<String>,
    pub signup_application: Option<String>,
    /// Casdoor's failed-password count: an administrator writes 0 to unlock the account.
    pub signin_wrong_times: Option<i64>,
    /// Casdoor's fields without a column (`tag`, `score`, …): each one sent is set, `null`
    /// removes it. An administrator's, without `columns`; a user's own are ignored, as Casdoor
    /// ignores what a user may not change.
    pub extra: crate::model::Extra,
}

impl UserPatch {
    pub fn carries(&self, f: UserField) -> bool {
        use UserField as F;
        match f {
            F::DisplayName => self.display_name.is_some(),
            F::Avatar => self.avatar.is_some(),
            F::FirstName => self.first_name.is_some(),
            F::LastName => self.last_name.is_some(),
            F::Bio => self.bio.is_some(),
            F::Gender => self.gender.is_some(),
            F::Language => self.language.is_some(),
            F::Location => self.location.is_some(),
            F::Region => self.region.is_some(),
            F::Homepage => self.homepage.is_some(),
            F::Title => self.title.is_some(),
            F::Affiliation => self.affiliation.is_some(),
            F::Birthday => self.birthday.is_some(),
            F::Email => self.email.is_some(),
            F::Phone => self.phone.is_some(),
            F::CountryCode => self.country_code.is_some(),
            F::IsAdmin => self.is_admin.is_some(),
            F::IsForbidden => self.is_forbidden.is_some(),
            F::IsDeleted => self.is_deleted.is_some(),
            F::Password => self.password.is_some(),
            F::Type => self.user_type.is_some(),
            F::SignupApplication => self.signup_application.is_some(),
            F::SigninWrongTimes => self.signin_wrong_times.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names() {
        assert_eq!(
            UserField::parse("display_name"),
            Some(UserField::DisplayName)
        );
        assert_eq!(
            UserField::parse("displayName"),
            Some(UserField::DisplayName)
        );
        assert_eq!(UserField::parse("is_admin"), Some(UserField::IsAdmin));
        assert_eq!(UserField::parse("nope"), None);
        assert_eq!(
            UserField::parse("country_code"),
            Some(UserField::CountryCode)
        );
        // Only the two spellings the OpenAPI pattern lists.
        assert_eq!(UserField::parse("DisplayName"), None);
        assert_eq!(UserField::parse("display__name"), None);
        for f in UserField::ALL {
            assert_eq!(UserField::parse(f.name()), Some(*f));
        }
    }
}
