//! Built-in objects that exist on every server (SPEC §6).

use chrono::{DateTime, Utc};

use crate::Secret;
use crate::model::{
    Application, BUILT_IN_APP, BUILT_IN_CERT, BUILT_IN_ORG, Organization, Profile, User,
};
use crate::values::{ClientId, DisplayName, ObjectName};

pub fn built_in_organization(now: DateTime<Utc>) -> Organization {
    Organization {
        name: ObjectName::literal(BUILT_IN_ORG),
        display_name: "Built-in Organization".into(),
        default_avatar: String::new(),
        created_time: now,
        extra: Default::default(),
    }
}

/// The application of the built-in organization; its client credentials act as a global
/// administrator for the management API.
pub fn built_in_application(
    client_id: ClientId,
    client_secret: Secret,
    now: DateTime<Utc>,
) -> Application {
    Application {
        name: ObjectName::literal(BUILT_IN_APP),
        display_name: "App Built-in".into(),
        organization: ObjectName::literal(BUILT_IN_ORG),
        client_id,
        client_secret,
        cert: BUILT_IN_CERT.into(),
        enable_sign_up: false,
        providers: Vec::new(),
        grant_types: vec![
            "password".into(),
            "client_credentials".into(),
            "refresh_token".into(),
        ],
        token_format: "JWT".into(),
        expire_in_hours: Application::DEFAULT_EXPIRE_IN_HOURS,
        refresh_expire_in_hours: Application::DEFAULT_REFRESH_EXPIRE_IN_HOURS,
        created_time: now,
        extra: Default::default(),
    }
}

/// `built-in/admin`, a global administrator. The password hash is made by the caller (the
/// hashing crate is an adapter concern).
pub fn built_in_admin(id: String, password_hash: Secret, now: DateTime<Utc>) -> User {
    User {
        id,
        owner: ObjectName::literal(BUILT_IN_ORG),
        name: ObjectName::literal("admin"),
        user_type: User::NORMAL_USER.into(),
        display_name: DisplayName::literal("Admin"),
        avatar: String::new(),
        email: String::new(),
        phone: String::new(),
        country_code: String::new(),
        is_admin: true,
        is_forbidden: false,
        is_deleted: false,
        signup_application: BUILT_IN_APP.into(),
        wechat: String::new(),
        wechat_open_id: String::new(),
        wechat_union_id: String::new(),
        password_hash: Some(password_hash),
        profile: Profile::default(),
        created_time: now,
        updated_time: now,
        last_signin_time: None,
    }
}

/// The objects of an `init_data.json` as they were sent, in the file's order.
#[derive(Debug, Clone, Default)]
pub struct SeedInputs {
    pub organizations: Vec<crate::objects::OrganizationInput>,
    pub providers: Vec<crate::objects::ProviderInput>,
    pub applications: Vec<crate::objects::ApplicationInput>,
    /// Each user with the password to set, if any.
    pub users: Vec<(crate::objects::UserInput, Option<String>)>,
    pub certs: Vec<crate::objects::CertInput>,
}

fn at(kind: &str, index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{kind}[{index}]")
    } else {
        format!("{kind}[{index}] {name:?}")
    }
}

impl crate::service::Iam {
    /// Builds the seed file's objects with the same constructors the management API uses, so the
    /// two can never disagree. Nothing is written; an error names the object.
    pub async fn build_seed(&self, inputs: SeedInputs) -> Result<crate::model::SeedBundle, String> {
        use crate::model::{Application, Cert, Organization, Provider, User};
        use crate::objects::Purpose;
        let now = Utc::now();
        let mut b = crate::model::SeedBundle::default();
        for (i, o) in inputs.organizations.into_iter().enumerate() {
            let here = at("organizations", i, &o.name);
            b.organizations
                .push(Organization::from_input(o, now).map_err(|e| format!("{here}: {e}"))?);
        }
        for (i, c) in inputs.certs.into_iter().enumerate() {
            let here = at("certs", i, &c.name);
            let (cert, generate) =
                Cert::from_input(c, Purpose::Create, now).map_err(|e| format!("{here}: {e}"))?;
            b.certs.push(
                self.complete_cert(cert, generate)
                    .map_err(|e| format!("{here}: {e}"))?,
            );
        }
        for (i, p) in inputs.providers.into_iter().enumerate() {
            let here = at("providers", i, &p.name);
            let p = Provider::from_input(p, now).map_err(|e| format!("{here}: {e}"))?;
            p.check_complete().map_err(|e| format!("{here}: {e}"))?;
            b.providers.push(p);
        }
        for (i, a) in inputs.applications.into_iter().enumerate() {
            let here = at("applications", i, &a.name);
            b.applications.push(
                Application::from_input(a, Purpose::Create, now)
                    .map_err(|e| format!("{here}: {e}"))?,
            );
        }
        for (i, (u, password)) in inputs.users.into_iter().enumerate() {
            let here = at("users", i, &u.name);
            let mut user = User::from_input(u, now).map_err(|e| format!("{here}: {e}"))?;
            if let Some(p) = password.filter(|p| !p.is_empty()) {
                user.password_hash = Some(
                    self.passwords
                        .hash(&p)
                        .await
                        .map_err(|e| format!("{here}: password: {e}"))?,
                );
            }
            b.users.push(user);
        }
        Ok(b)
    }

    /// Writes a seed bundle in one transaction (see [`crate::ports::Repository::apply_seed`]).
    pub async fn apply_seed(
        &self,
        bundle: &crate::model::SeedBundle,
        new_only: bool,
    ) -> Result<crate::model::SeedReport, crate::StoreError> {
        let r = self.repo.apply_seed(bundle, new_only).await;
        self.cache.clear();
        r
    }
}
