//! The management API's rules (SPEC §6): who may manage what, secrets that are never read back
//! and kept when written back masked, references that must exist, nothing half-written.

use chrono::Utc;

use crate::model::{Application, Cert, Organization, Provider, User};
use crate::service::{Iam, Principal};
use crate::users::ApiError;
use crate::values::is_mini_program_type;
use crate::{Secret, StoreError};

/// What secrets look like on the way out, and what keeps them on the way back in.
pub const MASK: &str = "***";

fn require_global_admin(caller: &Principal) -> Result<(), ApiError> {
    if caller.is_global_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only global administrators (built-in admins or built-in applications) may do this"
                .into(),
        ))
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

fn conflict_as(field_error: &str) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict(what) if what.contains("clientId") => {
            ApiError::BadRequest(format!("clientId: {field_error}"))
        }
        other => other.into(),
    }
}

impl Iam {
    /// Names of the applications matching `pred`: what still uses a provider or a cert.
    async fn applications_where(
        &self,
        pred: impl Fn(&Application) -> bool,
    ) -> Result<Vec<String>, ApiError> {
        Ok(self
            .repo
            .list_applications(None)
            .await?
            .into_iter()
            .filter(|a| pred(a))
            .map(|a| a.name)
            .collect())
    }

    pub async fn admin_list_organizations(
        &self,
        caller: &Principal,
    ) -> Result<Vec<Organization>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.list_organizations().await?)
    }

    pub async fn admin_get_organization(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Option<Organization>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.get_organization(name).await?)
    }

    pub async fn admin_add_organization(
        &self,
        caller: &Principal,
        mut org: Organization,
    ) -> Result<(), ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        org.created_time = Utc::now();
        self.repo
            .insert_organization(&org)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ApiError::Conflict(format!("organization {:?} already exists", org.name))
                }
                other => other.into(),
            })
    }

    pub async fn admin_update_organization(
        &self,
        caller: &Principal,
        name: &str,
        mut org: Organization,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        let stored =
            self.repo.get_organization(name).await?.ok_or_else(|| {
                ApiError::NotFound(format!("organization {name:?} does not exist"))
            })?;
        if org.name != name {
            return Err(ApiError::BadRequest(
                "name: organizations cannot be renamed".into(),
            ));
        }
        org.created_time = stored.created_time;
        if org == stored {
            return Ok(false);
        }
        Ok(self.repo.update_organization(&org).await?)
    }

    pub async fn admin_delete_organization(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        if name == crate::model::BUILT_IN_ORG {
            return Err(ApiError::BadRequest(
                "name: the built-in organization cannot be deleted".into(),
            ));
        }
        self.repo
            .delete_organization(name)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(what) => ApiError::Conflict(format!(
                    "{what} cannot be deleted: delete or move them first"
                )),
                other => other.into(),
            })
    }

    pub async fn admin_list_applications(
        &self,
        caller: &Principal,
        organization: Option<&str>,
    ) -> Result<Vec<Application>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.list_applications(organization).await?)
    }

    pub async fn admin_get_application(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Option<Application>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.get_application(name).await?)
    }

    async fn check_application(&self, app: &Application) -> Result<(), ApiError> {
        if self
            .repo
            .get_organization(&app.organization)
            .await?
            .is_none()
        {
            return Err(ApiError::BadRequest(format!(
                "organization: {:?} does not exist",
                app.organization
            )));
        }
        if app.client_secret.is_empty() {
            return Err(ApiError::BadRequest("clientSecret: is required".into()));
        }
        Ok(())
    }

    pub async fn admin_add_application(
        &self,
        caller: &Principal,
        mut app: Application,
    ) -> Result<(), ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        if app.client_secret.expose() == MASK {
            return Err(ApiError::BadRequest(
                "clientSecret: \"***\" is not a secret".into(),
            ));
        }
        self.check_application(&app).await?;
        if self.repo.get_application(&app.name).await?.is_some() {
            return Err(ApiError::Conflict(format!(
                "application {:?} already exists",
                app.name
            )));
        }
        app.created_time = Utc::now();
        self.repo
            .insert_application(&app)
            .await
            .map_err(conflict_as("is already taken by another application"))
    }

    pub async fn admin_update_application(
        &self,
        caller: &Principal,
        name: &str,
        mut app: Application,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        let stored =
            self.repo.get_application(name).await?.ok_or_else(|| {
                ApiError::NotFound(format!("application {name:?} does not exist"))
            })?;
        if app.name != name {
            return Err(ApiError::BadRequest(
                "name: applications cannot be renamed".into(),
            ));
        }
        app.client_secret = keep_secret(&app.client_secret, &stored.client_secret);
        app.created_time = stored.created_time;
        self.check_application(&app).await?;
        if app == stored {
            return Ok(false);
        }
        self.repo
            .update_application(&app)
            .await
            .map_err(conflict_as("is already taken by another application"))
    }

    pub async fn admin_delete_application(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        if name == crate::model::BUILT_IN_APP {
            return Err(ApiError::BadRequest(
                "name: app-built-in cannot be deleted".into(),
            ));
        }
        Ok(self.repo.delete_application(name).await?)
    }

    pub async fn admin_list_providers(
        &self,
        caller: &Principal,
        owner: Option<&str>,
    ) -> Result<Vec<Provider>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.list_providers(owner).await?)
    }

    pub async fn admin_get_provider(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
    ) -> Result<Option<Provider>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.get_provider(owner, name).await?)
    }

    fn check_provider(p: &Provider) -> Result<(), ApiError> {
        if p.provider_type.is_empty() {
            return Err(ApiError::BadRequest("type: is required".into()));
        }
        if is_mini_program_type(&p.provider_type) {
            if p.client_id.is_empty() {
                return Err(ApiError::BadRequest(
                    "clientId: the mini program's APPID is required for a WeChat provider".into(),
                ));
            }
            crate::values::AppId::parse(&p.client_id)
                .map_err(|e| ApiError::BadRequest(format!("clientId: {}", e.reason)))?;
            if p.client_secret.is_empty() || p.client_secret.expose() == MASK {
                return Err(ApiError::BadRequest(
                    "clientSecret: the mini program's APPSECRET is required for a WeChat provider"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    pub async fn admin_add_provider(
        &self,
        caller: &Principal,
        mut p: Provider,
    ) -> Result<(), ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        Self::check_provider(&p)?;
        if p.owner != crate::model::ADMIN_OWNER
            && self.repo.get_organization(&p.owner).await?.is_none()
        {
            return Err(ApiError::BadRequest(format!(
                "owner: organization {:?} does not exist",
                p.owner
            )));
        }
        p.created_time = Utc::now();
        self.repo.insert_provider(&p).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::Conflict(format!("provider {}/{} already exists", p.owner, p.name))
            }
            other => other.into(),
        })
    }

    pub async fn admin_update_provider(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
        mut p: Provider,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        let stored =
            self.repo.get_provider(owner, name).await?.ok_or_else(|| {
                ApiError::NotFound(format!("provider {owner}/{name} does not exist"))
            })?;
        if p.owner != owner || p.name != name {
            return Err(ApiError::BadRequest(
                "name: providers cannot be renamed or moved".into(),
            ));
        }
        p.client_secret = keep_secret(&p.client_secret, &stored.client_secret);
        p.created_time = stored.created_time;
        Self::check_provider(&p)?;
        if p == stored {
            return Ok(false);
        }
        Ok(self.repo.update_provider(&p).await?)
    }

    pub async fn admin_delete_provider(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        let users = self
            .applications_where(|a| {
                a.providers
                    .iter()
                    .any(|i| i.name == name && (i.owner.is_empty() || i.owner == owner))
            })
            .await?;
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "provider {owner}/{name} is listed by applications {users:?}; remove it from them first"
            )));
        }
        Ok(self.repo.delete_provider(owner, name).await?)
    }

    pub async fn admin_list_certs(&self, caller: &Principal) -> Result<Vec<Cert>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.list_certs().await?)
    }

    pub async fn admin_get_cert(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Option<Cert>, ApiError> {
        require_global_admin(caller)?;
        Ok(self.repo.get_cert(name).await?)
    }

    /// A cert with no certificate and key gets a fresh pair; a given pair must be usable.
    pub async fn admin_add_cert(&self, caller: &Principal, cert: Cert) -> Result<(), ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        let mut cert = match (cert.certificate.is_empty(), cert.private_key.is_empty()) {
            (true, true) => {
                let mut g = self
                    .codec
                    .generate_cert(&cert.name, cert.crypto_algorithm)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                g.display_name = cert.display_name.clone();
                g
            }
            (false, false) => cert,
            _ => {
                return Err(ApiError::BadRequest(
                    "certificate, privateKey: give both, or neither to generate them".into(),
                ));
            }
        };
        if cert.private_key.expose() == MASK {
            return Err(ApiError::BadRequest(
                "privateKey: \"***\" is not a key".into(),
            ));
        }
        self.codec
            .jwk(&cert)
            .map_err(|e| ApiError::BadRequest(format!("certificate, privateKey: unusable: {e}")))?;
        cert.created_time = Utc::now();
        self.repo.insert_cert(&cert).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::Conflict(format!("cert {:?} already exists", cert.name))
            }
            other => other.into(),
        })
    }

    pub async fn admin_update_cert(
        &self,
        caller: &Principal,
        name: &str,
        mut cert: Cert,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        let stored = self
            .repo
            .get_cert(name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("cert {name:?} does not exist")))?;
        if cert.name != name {
            return Err(ApiError::BadRequest("name: certs cannot be renamed".into()));
        }
        cert.private_key = keep_secret(&cert.private_key, &stored.private_key);
        if cert.certificate.is_empty() {
            cert.certificate = stored.certificate.clone();
        }
        cert.created_time = stored.created_time;
        self.codec
            .jwk(&cert)
            .map_err(|e| ApiError::BadRequest(format!("certificate, privateKey: unusable: {e}")))?;
        if cert == stored {
            return Ok(false);
        }
        Ok(self.repo.update_cert(&cert).await?)
    }

    pub async fn admin_delete_cert(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<bool, ApiError> {
        require_global_admin(caller)?;
        self.cache.clear();
        if name == crate::model::BUILT_IN_CERT {
            return Err(ApiError::BadRequest(
                "name: cert-built-in cannot be deleted".into(),
            ));
        }
        let users = self.applications_where(|a| a.cert == name).await?;
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "cert {name:?} signs the tokens of applications {users:?}"
            )));
        }
        Ok(self.repo.delete_cert(name).await?)
    }

    /// Adds a user to an organization the caller administers.
    pub async fn admin_add_user(
        &self,
        caller: &Principal,
        mut user: User,
        password: Option<&str>,
    ) -> Result<(), ApiError> {
        if !caller.administers(&user.owner) {
            return Err(ApiError::Forbidden("Unauthorized operation".into()));
        }
        if self.repo.get_organization(&user.owner).await?.is_none() {
            return Err(ApiError::BadRequest(format!(
                "owner: organization {:?} does not exist",
                user.owner
            )));
        }
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            user.password_hash = Some(self.passwords.hash(p).await.map_err(ApiError::Internal)?);
        }
        let now = Utc::now();
        user.created_time = now;
        user.updated_time = now;
        user.id = uuid::Uuid::new_v4().to_string();
        self.repo.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::Conflict(format!("user {}/{} already exists", user.owner, user.name))
            }
            other => other.into(),
        })
    }

    pub async fn admin_delete_user(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        if !caller.administers(owner) {
            return Err(ApiError::Forbidden("Unauthorized operation".into()));
        }
        if owner == crate::model::BUILT_IN_ORG && name == "admin" {
            return Err(ApiError::BadRequest(
                "name: built-in/admin cannot be deleted".into(),
            ));
        }
        Ok(self.repo.delete_user(owner, name).await?)
    }
}
