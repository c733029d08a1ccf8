//! The management API's rules (SPEC §6): who may manage what, secrets that are never read back
//! and kept when written back masked, references that must exist, nothing half-written.

use chrono::Utc;

use crate::model::{Application, Cert, Organization, Provider, User};
use crate::objects::{
    ApplicationInput, CertInput, MASK, OrganizationInput, ProviderInput, Purpose,
};
use crate::service::{Iam, Principal};
use crate::{Error, Secret, StoreError};

/// The management API's authorization, checked before a request body is even read, so a caller
/// who may not manage learns nothing about what a valid body would be.
pub fn require_global_admin(caller: &Principal) -> Result<(), Error> {
    if caller.is_global_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only global administrators (built-in admins or built-in applications) may do this"
                .into(),
        ))
    }
}

/// May `caller` manage the users of some organization? Decided before a body naming the
/// organization is read, so a signed-in user who administers nothing learns nothing from it.
pub fn require_some_user_admin(caller: &Principal) -> Result<(), Error> {
    match caller {
        Principal::User(u) if !u.is_admin || u.is_blocked() => Err(Error::forbidden()),
        _ => Ok(()),
    }
}

/// May `caller` manage the users of `organization`?
pub fn require_user_admin(caller: &Principal, organization: &str) -> Result<(), Error> {
    if caller.administers(organization) {
        Ok(())
    } else {
        Err(Error::forbidden())
    }
}

/// `***` (or nothing) written back means "keep what is stored".
fn keep_secret(new: &Secret, stored: &Secret) -> Secret {
    if new.expose() == MASK || new.is_empty() {
        stored.clone()
    } else {
        new.clone()
    }
}

fn conflict_as(field_error: &str) -> impl Fn(StoreError) -> Error + '_ {
    move |e| match e {
        // A clash with another object, not a malformed value: 409, as a taken name is.
        StoreError::Conflict(what) if what.contains("clientId") => {
            Error::Conflict(format!("clientId: {field_error}"))
        }
        other => other.into(),
    }
}

impl Iam {
    /// A configuration write has returned (committed or failed): forget what the cache holds,
    /// so no sign-in on this node uses the old object. Clearing only after the write means a
    /// concurrent sign-in cannot put the old object back in between.
    pub(crate) fn written<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.cache.clear();
        result
    }

    /// Names of the applications matching `pred`: what still uses a provider or a cert.
    async fn applications_where(
        &self,
        pred: impl Fn(&Application) -> bool,
    ) -> Result<Vec<String>, Error> {
        Ok(self
            .repo
            .list_applications(None)
            .await?
            .into_iter()
            .filter(|a| pred(a))
            .map(|a| a.name.into_string())
            .collect())
    }

    pub async fn admin_list_organizations(
        &self,
        caller: &Principal,
    ) -> Result<Vec<Organization>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.list_organizations().await?)
    }

    pub async fn admin_get_organization(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Option<Organization>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.get_organization(name).await?)
    }

    pub async fn admin_add_organization(
        &self,
        caller: &Principal,
        mut org: Organization,
    ) -> Result<(), Error> {
        require_global_admin(caller)?;
        org.name.check_new("name")?;
        org.created_time = Utc::now();
        self.written(self.repo.insert_organization(&org).await)
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    Error::Conflict(format!("organization {:?} already exists", org.name))
                }
                other => other.into(),
            })
    }

    pub async fn admin_update_organization(
        &self,
        caller: &Principal,
        name: &str,
        mut input: OrganizationInput,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        let stored = self
            .repo
            .get_organization(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("organization {name:?} does not exist")))?;
        let kept = sent_back(&mut input.display_name, &stored.display_name);
        let kept_avatar = sent_back(&mut input.default_avatar, &stored.default_avatar);
        let mut org = Organization::from_input(input, Utc::now())?;
        org.display_name = kept.unwrap_or(org.display_name);
        org.default_avatar = kept_avatar.unwrap_or(org.default_avatar);
        if org.name != name {
            return Err(Error::Invalid(
                "name: organizations cannot be renamed".into(),
            ));
        }
        org.created_time = stored.created_time;
        if org == stored {
            return Ok(false);
        }
        Ok(self.written(self.repo.update_organization(&org).await)?)
    }

    pub async fn admin_delete_organization(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        if name == crate::model::BUILT_IN_ORG {
            return Err(Error::Invalid(
                "name: the built-in organization cannot be deleted".into(),
            ));
        }
        if self.repo.get_organization(name).await?.is_none() {
            return Ok(false);
        }
        // Its providers go with it, so none may still be listed by an application (as
        // delete-provider refuses one that is).
        let users = self
            .applications_where(|a| {
                a.providers.iter().any(|i| {
                    i.owner == name || (i.owner.is_empty() && name == crate::model::ADMIN_OWNER)
                })
            })
            .await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "organization {name:?} owns providers listed by applications {users:?}; remove them from those first"
            )));
        }
        self.written(self.repo.delete_organization(name).await)
            .map_err(|e| match e {
                StoreError::Conflict(what) => Error::Conflict(format!(
                    "{what} cannot be deleted: delete or move them first"
                )),
                other => other.into(),
            })
    }

    pub async fn admin_list_applications(
        &self,
        caller: &Principal,
        organization: Option<&str>,
    ) -> Result<Vec<Application>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.list_applications(organization).await?)
    }

    pub async fn admin_get_application(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Option<Application>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.get_application(name).await?)
    }

    async fn check_application(&self, app: &Application) -> Result<(), Error> {
        if self
            .repo
            .get_organization(&app.organization)
            .await?
            .is_none()
        {
            return Err(Error::Invalid(format!(
                "organization: {:?} does not exist",
                app.organization
            )));
        }
        if app.client_secret.is_empty() {
            return Err(Error::Invalid("clientSecret: is required".into()));
        }
        Ok(())
    }

    pub async fn admin_add_application(
        &self,
        caller: &Principal,
        mut app: Application,
    ) -> Result<(), Error> {
        require_global_admin(caller)?;
        app.name.check_new("name")?;
        if app.client_secret.expose() == MASK {
            return Err(Error::Invalid(
                "clientSecret: \"***\" is not a secret".into(),
            ));
        }
        self.check_application(&app).await?;
        if self.repo.get_application(&app.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "application {:?} already exists",
                app.name
            )));
        }
        app.created_time = Utc::now();
        self.written(self.repo.insert_application(&app).await)
            .map_err(conflict_as("is already taken by another application"))
    }

    pub async fn admin_update_application(
        &self,
        caller: &Principal,
        name: &str,
        mut input: ApplicationInput,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        let stored = self
            .repo
            .get_application(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("application {name:?} does not exist")))?;
        let kept = sent_back(&mut input.display_name, &stored.display_name);
        let mut app = Application::from_input(input, Purpose::Update, Utc::now())?;
        app.display_name = kept.unwrap_or(app.display_name);
        if app.name != name {
            return Err(Error::Invalid(
                "name: applications cannot be renamed".into(),
            ));
        }
        app.client_secret = keep_secret(&app.client_secret, &stored.client_secret);
        app.created_time = stored.created_time;
        self.check_application(&app).await?;
        if app == stored {
            return Ok(false);
        }
        self.written(self.repo.update_application(&app).await)
            .map_err(conflict_as("is already taken by another application"))
    }

    pub async fn admin_delete_application(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        if name == crate::model::BUILT_IN_APP {
            return Err(Error::Invalid(
                "name: app-built-in cannot be deleted".into(),
            ));
        }
        Ok(self.written(self.repo.delete_application(name).await)?)
    }

    pub async fn admin_list_providers(
        &self,
        caller: &Principal,
        owner: Option<&str>,
    ) -> Result<Vec<Provider>, Error> {
        require_global_admin(caller)?;
        let mut providers = self.repo.list_providers(owner).await?;
        // Casdoor lists the shared providers (owned by `admin`) with an organization's own.
        if owner.is_some_and(|o| o != crate::model::ADMIN_OWNER) {
            providers.extend(
                self.repo
                    .list_providers(Some(crate::model::ADMIN_OWNER))
                    .await?,
            );
        }
        Ok(providers)
    }

    pub async fn admin_get_provider(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
    ) -> Result<Option<Provider>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.get_provider(owner, name).await?)
    }

    pub async fn admin_add_provider(
        &self,
        caller: &Principal,
        mut p: Provider,
    ) -> Result<(), Error> {
        require_global_admin(caller)?;
        p.name.check_new("name")?;
        p.check_complete()?;
        if p.owner != crate::model::ADMIN_OWNER
            && self.repo.get_organization(&p.owner).await?.is_none()
        {
            return Err(Error::Invalid(format!(
                "owner: organization {:?} does not exist",
                p.owner
            )));
        }
        p.created_time = Utc::now();
        self.written(self.repo.insert_provider(&p).await)
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    Error::Conflict(format!("provider {}/{} already exists", p.owner, p.name))
                }
                other => other.into(),
            })
    }

    pub async fn admin_update_provider(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
        mut input: ProviderInput,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        let stored =
            self.repo.get_provider(owner, name).await?.ok_or_else(|| {
                Error::NotFound(format!("provider {owner}/{name} does not exist"))
            })?;
        let kept = sent_back(&mut input.display_name, &stored.display_name);
        let mut p = Provider::from_input(input, Utc::now())?;
        p.display_name = kept.unwrap_or(p.display_name);
        if p.owner != owner || p.name != name {
            return Err(Error::Invalid(
                "name: providers cannot be renamed or moved".into(),
            ));
        }
        p.client_secret = keep_secret(&p.client_secret, &stored.client_secret);
        p.created_time = stored.created_time;
        p.check_complete()?;
        if p == stored {
            return Ok(false);
        }
        Ok(self.written(self.repo.update_provider(&p).await)?)
    }

    pub async fn admin_delete_provider(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        let users = self
            .applications_where(|a| {
                a.providers
                    .iter()
                    .any(|i| i.name == name && (i.owner.is_empty() || i.owner == owner))
            })
            .await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "provider {owner}/{name} is listed by applications {users:?}; remove it from them first"
            )));
        }
        Ok(self.written(self.repo.delete_provider(owner, name).await)?)
    }

    pub async fn admin_list_certs(&self, caller: &Principal) -> Result<Vec<Cert>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.list_certs().await?)
    }

    pub async fn admin_get_cert(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Option<Cert>, Error> {
        require_global_admin(caller)?;
        Ok(self.repo.get_cert(name).await?)
    }

    /// A cert with no certificate and key gets a fresh pair; a given pair must be usable.
    /// Generates the key pair of a cert sent without one (the same for the API and the seed
    /// file), and checks that a given pair is usable.
    pub fn complete_cert(&self, cert: Cert, generate: bool) -> Result<Cert, Error> {
        let cert = if generate {
            let g = self
                .codec
                .generate_cert(&cert.name, cert.crypto_algorithm)
                .map_err(|e| Error::Internal(e.to_string()))?;
            Cert {
                certificate: g.certificate,
                private_key: g.private_key,
                bit_size: g.bit_size,
                ..cert
            }
        } else {
            cert
        };
        if cert.private_key.expose() == MASK {
            return Err(Error::invalid("privateKey: \"***\" is not a key"));
        }
        self.codec
            .jwk(&cert)
            .map_err(|e| Error::Invalid(format!("certificate, privateKey: unusable: {e}")))?;
        Ok(cert)
    }

    pub async fn admin_add_cert(
        &self,
        caller: &Principal,
        cert: Cert,
        generate: bool,
    ) -> Result<(), Error> {
        require_global_admin(caller)?;
        cert.name.check_new("name")?;
        let mut cert = self.complete_cert(cert, generate)?;
        cert.created_time = Utc::now();
        self.written(self.repo.insert_cert(&cert).await)
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    Error::Conflict(format!("cert {:?} already exists", cert.name))
                }
                other => other.into(),
            })
    }

    pub async fn admin_update_cert(
        &self,
        caller: &Principal,
        name: &str,
        mut input: CertInput,
    ) -> Result<bool, Error> {
        require_global_admin(caller)?;
        let stored = self
            .repo
            .get_cert(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("cert {name:?} does not exist")))?;
        let kept = sent_back(&mut input.display_name, &stored.display_name);
        let (mut cert, _) = Cert::from_input(input, Purpose::Update, Utc::now())?;
        cert.display_name = kept.unwrap_or(cert.display_name);
        if cert.name != name {
            return Err(Error::Invalid("name: certs cannot be renamed".into()));
        }
        cert.private_key = keep_secret(&cert.private_key, &stored.private_key);
        if cert.certificate.is_empty() {
            cert.certificate = stored.certificate.clone();
        }
        cert.created_time = stored.created_time;
        self.codec
            .jwk(&cert)
            .map_err(|e| Error::Invalid(format!("certificate, privateKey: unusable: {e}")))?;
        if cert == stored {
            return Ok(false);
        }
        Ok(self.written(self.repo.update_cert(&cert).await)?)
    }

    pub async fn admin_delete_cert(&self, caller: &Principal, name: &str) -> Result<bool, Error> {
        require_global_admin(caller)?;
        if name == crate::model::BUILT_IN_CERT {
            return Err(Error::Invalid(
                "name: cert-built-in cannot be deleted".into(),
            ));
        }
        let users = self.applications_where(|a| a.cert_name() == name).await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "cert {name:?} signs the tokens of applications {users:?}"
            )));
        }
        Ok(self.written(self.repo.delete_cert(name).await)?)
    }

    /// Adds a user to an organization the caller administers.
    pub async fn admin_add_user(
        &self,
        caller: &Principal,
        mut user: User,
        password: Option<&str>,
    ) -> Result<(), Error> {
        if !caller.administers(&user.owner) {
            return Err(Error::Forbidden("Unauthorized operation".into()));
        }
        user.name.check_new("name")?;
        let Some(org) = self.repo.get_organization(&user.owner).await? else {
            return Err(Error::Invalid(format!(
                "owner: organization {:?} does not exist",
                user.owner
            )));
        };
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            crate::password_rules::check_password(
                &crate::password_rules::password_options(&org),
                p,
            )?;
            user.password_hash = Some(self.passwords.hash(p).await?);
        }
        let now = Utc::now();
        user.created_time = now;
        user.updated_time = now;
        user.id = uuid::Uuid::new_v4().to_string();
        self.cache.user_totals.clear();
        self.repo.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(rule) if rule == crate::error::USER_PHONE_RULE => {
                Error::Conflict(format!("phone: {}", crate::users::PHONE_TAKEN))
            }
            StoreError::Conflict(_) => {
                Error::Conflict(format!("user {}/{} already exists", user.owner, user.name))
            }
            other => other.into(),
        })
    }

    pub async fn admin_delete_user(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
    ) -> Result<bool, Error> {
        if !caller.administers(owner) {
            return Err(Error::Forbidden("Unauthorized operation".into()));
        }
        if owner == crate::model::BUILT_IN_ORG && name == "admin" {
            return Err(Error::Invalid(
                "name: built-in/admin cannot be deleted".into(),
            ));
        }
        let Some(user) = self.repo.get_user(owner, name).await? else {
            return Ok(false);
        };
        // Sessions first: a token must not outlive its user by a moment.
        let which = crate::model::SessionSelector::all_of(&user.id);
        self.end_sessions(&which, "the user was deleted").await?;
        let deleted = self.repo.delete_user(owner, name).await?;
        self.cache.user_totals.clear();
        self.user_changed(&user.id);
        Ok(deleted)
    }
}

/// The operator's commands (`iam admin`, `iam app`): they run on the server's machine, so they
/// need no caller; what they do is the same as the API's.
impl Iam {
    /// Sets a user's password (the operator forgot it, or a first start's was lost).
    pub async fn set_password(&self, owner: &str, name: &str, password: &str) -> Result<(), Error> {
        if password.is_empty() {
            return Err(Error::invalid("password: is required"));
        }
        let mut user =
            self.repo.get_user(owner, name).await?.ok_or_else(|| {
                Error::NotFound(format!("the user {owner}/{name} does not exist"))
            })?;
        user.password_hash = Some(self.passwords.hash(password).await?);
        user.updated_time = Utc::now();
        self.repo.update_user(&user).await?;
        self.user_changed(&user.id);
        Ok(())
    }

    /// An application's client id and secret, for the operator's eyes.
    pub async fn client_credentials(&self, name: &str) -> Result<(String, Secret), Error> {
        let app = self
            .repo
            .get_application(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("application {name:?} does not exist")))?;
        Ok((app.client_id.to_string(), app.client_secret))
    }

    /// Gives an application a new random client secret; the old one stops working at once.
    pub async fn rotate_client_secret(&self, name: &str) -> Result<Secret, Error> {
        let mut app = self
            .repo
            .get_application(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("application {name:?} does not exist")))?;
        let secret = Secret::new(crate::objects::random_hex(40));
        app.client_secret = secret.clone();
        self.written(self.repo.update_application(&app).await)?;
        Ok(secret)
    }

    /// Signing-key rotation: a new cert (same algorithm, a new name, so a new `kid`) signs for
    /// every application the old one signed for, in one transaction. The old cert stays, so
    /// tokens it signed keep verifying, and stays in the JWKS until the longest-lived of them
    /// has expired. Returns the new cert's name.
    pub async fn rotate_signing_cert(&self, name: &str) -> Result<String, Error> {
        let mut old = self
            .repo
            .get_cert(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("cert {name:?} does not exist")))?;
        let now = Utc::now();
        // cert-built-in → cert-built-in-20261125120000; a rotated name keeps its base.
        let base = match name.rsplit_once('-') {
            Some((b, ts)) if ts.len() == 14 && ts.bytes().all(|c| c.is_ascii_digit()) => b,
            _ => name,
        };
        let new_name = crate::values::ObjectName::parse(
            "name",
            &format!("{base}-{}", now.format("%Y%m%d%H%M%S")),
        )?;
        let mut new = self
            .codec
            .generate_cert(&new_name, old.crypto_algorithm)
            .map_err(|e| Error::Internal(e.to_string()))?;
        new.display_name = old.display_name.clone();
        let signs_with_old = |a: &Application| a.cert_name() == name;
        let mut apps: Vec<Application> = self
            .repo
            .list_applications(None)
            .await?
            .into_iter()
            .filter(|a| signs_with_old(a))
            .collect();
        let longest = apps
            .iter()
            .map(|a| a.expire_in_hours)
            .max()
            .unwrap_or(Application::DEFAULT_EXPIRE_IN_HOURS);
        for a in &mut apps {
            a.cert = Some(new_name.clone());
        }
        old.extra.insert(
            Cert::PUBLISHED_UNTIL.into(),
            (now + chrono::Duration::hours(longest))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .into(),
        );
        let bundle = crate::model::SeedBundle {
            certs: vec![new, old],
            applications: apps,
            ..Default::default()
        };
        self.written(self.repo.apply_seed(bundle, false).await)?;
        Ok(new_name.into_string())
    }
}

/// A value (a display name, a URL) sent back as it is stored is kept, even one stored under an
/// older, laxer rule: Casdoor's SDKs and the console send the whole object to change one field.
/// Empties `sent`, so the constructor has nothing to refuse, and answers the stored value to put
/// back; a changed value is left to meet today's rule.
fn sent_back<T: AsRef<str> + Clone>(sent: &mut String, stored: &T) -> Option<T> {
    (!sent.is_empty() && sent.as_str() == stored.as_ref()).then(|| {
        sent.clear();
        stored.clone()
    })
}
