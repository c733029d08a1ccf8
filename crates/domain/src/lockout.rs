//! Password checks under the lockout (SPEC §12): after `failedSigninLimit` failures in a row
//! (the application's, default 5) an account is locked for `failedSigninFrozenTime` minutes
//! (default 15), whether or not the next password is right. The count lives in the database, so
//! the lockout holds across nodes. An unknown user costs the same argon2 verification as a known
//! one, so timing does not tell who exists.

use chrono::{DateTime, Duration, Utc};

use crate::model::{Application, PasswordFailures, User};
use crate::oauth::OAuthError;
use crate::service::Iam;

pub const DEFAULT_FAILED_SIGNIN_LIMIT: u32 = 5;
pub const DEFAULT_FAILED_SIGNIN_FROZEN_MINUTES: i64 = 15;

/// How many failures lock an account, and for how long: the application's Casdoor fields
/// `failedSigninLimit` and `failedSigninFrozenTime` (minutes); absent, zero or nonsense means
/// Casdoor's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub limit: u32,
    pub frozen: Duration,
}

impl LockoutPolicy {
    pub fn of(app: &Application) -> Self {
        let positive = |key: &str| {
            app.extra
                .get(key)
                .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
                .filter(|n| *n > 0)
        };
        Self {
            limit: positive("failedSigninLimit")
                .map(|n| n.min(1_000) as u32)
                .unwrap_or(DEFAULT_FAILED_SIGNIN_LIMIT),
            frozen: Duration::minutes(
                positive("failedSigninFrozenTime")
                    .map(|n| n.min(525_600))
                    .unwrap_or(DEFAULT_FAILED_SIGNIN_FROZEN_MINUTES),
            ),
        }
    }

    /// Whole minutes the account stays locked (at least 1), or `None` when it is not locked.
    pub fn minutes_left(&self, f: &PasswordFailures, now: DateTime<Utc>) -> Option<i64> {
        let last = f.last_wrong_time?;
        if f.wrong_times < self.limit {
            return None;
        }
        let left = last + self.frozen - now;
        (left > Duration::zero()).then(|| (left.num_seconds() + 59) / 60)
    }
}

impl Iam {
    /// Casdoor's `POST /api/set-password`: a user changes their own password with the old one;
    /// an administrator of the user's organization sets another's without. A wrong old password
    /// counts toward the lockout like a failed sign-in. The organization's password rules apply.
    pub async fn set_user_password(
        &self,
        caller: &crate::service::Principal,
        owner: &str,
        name: &str,
        old_password: &str,
        new_password: &str,
    ) -> Result<(), crate::Error> {
        use crate::Error;
        let user =
            self.repo.get_user(owner, name).await?.ok_or_else(|| {
                Error::NotFound(format!("the user {owner}/{name} does not exist"))
            })?;
        let is_self = matches!(caller, crate::service::Principal::User(u) if u.id == user.id);
        let admin = caller.administers(owner);
        if !is_self && !admin {
            return Err(Error::forbidden());
        }
        if new_password.is_empty() {
            return Err(Error::invalid("newPassword: is required"));
        }
        // Your own password needs the old one, administrator or not: a stolen token alone must
        // not be able to take the account over.
        if is_self {
            if old_password.is_empty() {
                return Err(Error::invalid("oldPassword: is required"));
            }
            let app = self.lockout_application(&user).await?;
            self.check_password(&app, owner, name, old_password)
                .await
                .map_err(|e| match e.event {
                    Some(_) => Error::Invalid(format!("oldPassword: {}", e.description)),
                    None if e.kind == crate::oauth::OAuthErrorKind::InvalidGrant => {
                        Error::invalid("oldPassword: the old password is wrong")
                    }
                    None => e.into(),
                })?;
        }
        if let Some(org) = self.organization(owner).await? {
            let options = crate::password_rules::password_options(&org);
            crate::password_rules::check_password(&options, new_password).map_err(|e| {
                Error::Invalid(e.to_string().replacen("password:", "newPassword:", 1))
            })?;
        }
        let mut changed = user;
        changed.password_hash = Some(self.passwords.hash(new_password).await?);
        changed.updated_time = Utc::now();
        self.repo.update_user(&changed).await?;
        self.user_changed(&changed.id);
        Ok(())
    }

    /// Casdoor's `POST /api/check-user-password`: whether `password` is the user's, for an
    /// administrator of the user's organization (an application's backend). Counts toward the
    /// lockout like a sign-in.
    pub async fn check_user_password(
        &self,
        caller: &crate::service::Principal,
        owner: &str,
        name: &str,
        password: &str,
    ) -> Result<(), crate::Error> {
        if !caller.administers(owner) {
            return Err(crate::Error::forbidden());
        }
        let user = self.repo.get_user(owner, name).await?;
        let app = match &user {
            Some(u) => self.lockout_application(u).await?,
            None => self.built_in_application().await?,
        };
        self.check_password(&app, owner, name, password)
            .await
            .map(|_| ())
            .map_err(|e| match e.kind {
                crate::oauth::OAuthErrorKind::InvalidGrant => {
                    crate::Error::Invalid(format!("password: {}", e.description))
                }
                _ => e.into(),
            })
    }

    /// Whose lockout policy applies outside a sign-in: the user's sign-up application, else
    /// `app-built-in`.
    async fn lockout_application(&self, user: &User) -> Result<Application, crate::StoreError> {
        if !user.signup_application.is_empty()
            && let Some(app) = self.repo.get_application(&user.signup_application).await?
        {
            return Ok(app);
        }
        self.built_in_application().await
    }

    async fn built_in_application(&self) -> Result<Application, crate::StoreError> {
        self.repo
            .get_application(crate::model::BUILT_IN_APP)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt("app-built-in does not exist".into()))
    }
}

/// Casdoor's message for a locked account.
pub fn locked_message(minutes: i64) -> String {
    format!(
        "You have entered the wrong password or code too many times, please wait for {minutes} minutes and try again"
    )
}

impl Iam {
    /// The user `owner/name` when `password` is theirs and the account is not locked by
    /// `app`'s policy. A failure is counted (and, at the limit, locks the account); a success
    /// clears the count. Unknown users, users without a password and wrong passwords all answer
    /// the same, after the same argon2 work.
    pub(crate) async fn check_password(
        &self,
        app: &Application,
        owner: &str,
        name: &str,
        password: &str,
    ) -> Result<User, OAuthError> {
        let wrong = || OAuthError::invalid_grant("invalid username or password");
        let policy = LockoutPolicy::of(app);
        let now = Utc::now();
        let Some(user) = self.repo.get_user(owner, name).await? else {
            self.passwords
                .verify(password, &self.passwords.dummy_hash())
                .await?;
            return Err(wrong());
        };
        let failures = self.repo.password_failures(&user.id).await?;
        if let Some(minutes) = policy.minutes_left(&failures, now) {
            return Err(
                OAuthError::invalid_grant(locked_message(minutes)).as_event("signin-locked")
            );
        }
        let right = match &user.password_hash {
            Some(hash) => self.passwords.verify(password, hash).await?,
            None => {
                self.passwords
                    .verify(password, &self.passwords.dummy_hash())
                    .await?;
                false
            }
        };
        if !right {
            let counted = self
                .repo
                .add_password_failure(&user.id, Utc::now(), Utc::now() - policy.frozen)
                .await?;
            if let Some(minutes) = policy.minutes_left(&counted, Utc::now()) {
                return Err(
                    OAuthError::invalid_grant(locked_message(minutes)).as_event("signin-locked")
                );
            }
            return Err(wrong());
        }
        if failures.wrong_times > 0 {
            self.repo.reset_password_failures(&user.id).await?;
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(extra: serde_json::Value) -> Application {
        let mut a = crate::seed::built_in_application(
            crate::values::ClientId::parse("c").expect("client id"),
            crate::Secret::new("s"),
            Utc::now(),
        );
        a.extra = extra.as_object().cloned().unwrap_or_default();
        a
    }

    #[test]
    fn the_policy_is_the_applications_or_casdoors_default() {
        let d = LockoutPolicy::of(&app(serde_json::json!({})));
        assert_eq!((d.limit, d.frozen), (5, Duration::minutes(15)));
        let p = LockoutPolicy::of(&app(
            serde_json::json!({"failedSigninLimit": 3, "failedSigninFrozenTime": "2"}),
        ));
        assert_eq!((p.limit, p.frozen), (3, Duration::minutes(2)));
        let z = LockoutPolicy::of(&app(serde_json::json!({"failedSigninLimit": 0})));
        assert_eq!(z.limit, 5);
    }

    #[test]
    fn locked_at_the_limit_until_the_frozen_time_has_passed() {
        let p = LockoutPolicy {
            limit: 5,
            frozen: Duration::minutes(15),
        };
        let now = Utc::now();
        let at = |n, ago| PasswordFailures {
            wrong_times: n,
            last_wrong_time: Some(now - Duration::seconds(ago)),
        };
        assert_eq!(p.minutes_left(&at(4, 0), now), None);
        assert_eq!(p.minutes_left(&at(5, 0), now), Some(15));
        assert_eq!(p.minutes_left(&at(5, 60 * 14 + 30), now), Some(1));
        assert_eq!(p.minutes_left(&at(7, 60 * 15), now), None);
        assert_eq!(p.minutes_left(&PasswordFailures::default(), now), None);
    }
}
