//! The management API (SPEC §6): Casdoor's `get-`/`add-`/`update-`/`delete-` routes for
//! organizations, applications, providers, certs and users. Each operation authorizes the caller
//! before it reads the body, then builds the domain object through the domain's constructor.

use std::sync::Arc;

use chrono::Utc;
use iam_domain::admin::{require_global_admin, require_user_admin};
use iam_domain::model::{ADMIN_OWNER, Application, Cert, Organization, Provider, User};
use iam_domain::objects::Purpose;
use iam_domain::values::split_id;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use serde_json::{Value, json};

use crate::errors::{Envelope, Failure, Reply};
use crate::extract::{Caller, LaxJson};
use crate::state::AppState;
use crate::tags::Tag;
use crate::wire::{self, ApplicationWire, CertWire, OrganizationWire, ProviderWire, UserWire};

type Answer = Result<Reply<Envelope>, Failure>;

/// `owner/name` from `?id=`, else from the body (owner `admin` when the body has none).
fn target(
    id: &Query<Option<String>>,
    owner: Option<&str>,
    name: Option<&str>,
) -> Result<(String, String), Failure> {
    if let Some(id) = id.0.as_deref().filter(|s| !s.is_empty()) {
        let (o, n) = split_id("id", id)?;
        return Ok((o.into_string(), n.into_string()));
    }
    let owner = owner.filter(|o| !o.is_empty()).unwrap_or(ADMIN_OWNER);
    let name = iam_domain::values::ObjectName::parse("name", name.unwrap_or_default())?;
    Ok((owner.to_owned(), name.into_string()))
}

/// `owner/name` from a required `?id=`.
fn id_of(id: &Query<String>) -> Result<(String, String), Failure> {
    let (o, n) = split_id("id", &id.0)?;
    Ok((o.into_string(), n.into_string()))
}

fn list<T>(items: &[T], render: fn(&T) -> Value) -> Reply<Envelope> {
    Reply::ok(items.iter().map(render).collect(), json!(items.len()))
}

fn one<T>(item: Option<T>, render: fn(&T) -> Value) -> Reply<Envelope> {
    Reply::ok(
        item.as_ref().map(render).unwrap_or(Value::Null),
        Value::Null,
    )
}

pub struct ManagementApi;

#[OpenApi(tag = "Tag::Management")]
impl ManagementApi {
    // ---- organizations ----

    /// Every organization (global administrators).
    #[oai(
        path = "/api/get-organizations",
        method = "get",
        operation_id = "get-organizations"
    )]
    async fn get_organizations(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// Always `admin`; accepted for Casdoor's clients.
        #[oai(validator(max_length = 100))]
        owner: Query<Option<String>>,
    ) -> Answer {
        let _ = owner;
        let orgs = state
            .iam
            .admin_list_organizations(&caller.principal)
            .await?;
        Ok(list(&orgs, wire::organization))
    }

    /// The organizations' names, as Casdoor's `get-organization-names` lists them.
    #[oai(
        path = "/api/get-organization-names",
        method = "get",
        operation_id = "get-organization-names"
    )]
    async fn get_organization_names(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
    ) -> Answer {
        let _ = owner;
        let orgs = state
            .iam
            .admin_list_organizations(&caller.principal)
            .await?;
        Ok(list(
            &orgs,
            |o| json!({"owner": ADMIN_OWNER, "name": o.name, "displayName": o.display_name}),
        ))
    }

    /// One organization by `id=admin/name`; `data: null` when absent.
    #[oai(
        path = "/api/get-organization",
        method = "get",
        operation_id = "get-organization"
    )]
    async fn get_organization(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<String>,
    ) -> Answer {
        let (_, n) = id_of(&id)?;
        let org = state
            .iam
            .admin_get_organization(&caller.principal, &n)
            .await?;
        Ok(one(org, wire::organization))
    }

    /// Adds one; every bad field is a 400 naming it, and nothing is half-written.
    #[oai(
        path = "/api/add-organization",
        method = "post",
        operation_id = "add-organization"
    )]
    async fn add_organization(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: LaxJson<OrganizationWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        wire::refuse_unstored(&w.other)?;
        let org = Organization::from_input(w.into_input(), Utc::now())?;
        state
            .iam
            .admin_add_organization(&caller.principal, org)
            .await?;
        Ok(Reply::affected(true))
    }

    /// Updates one (`?id=`, else the body's name).
    #[oai(
        path = "/api/update-organization",
        method = "post",
        operation_id = "update-organization"
    )]
    async fn update_organization(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<OrganizationWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (_, n) = target(&id, None, w.name.as_deref())?;
        wire::refuse_unstored(&w.other)?;
        let org = Organization::from_input(w.into_input(), Utc::now())?;
        let changed = state
            .iam
            .admin_update_organization(&caller.principal, &n, org)
            .await?;
        Ok(Reply::affected(changed))
    }

    /// Deletes one (`?id=`, else the body's name); 409 while users or applications remain.
    #[oai(
        path = "/api/delete-organization",
        method = "post",
        operation_id = "delete-organization"
    )]
    async fn delete_organization(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<OrganizationWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (_, n) = target(&id, None, w.name.as_deref())?;
        let done = state
            .iam
            .admin_delete_organization(&caller.principal, &n)
            .await?;
        Ok(Reply::affected(done))
    }

    // ---- applications ----

    /// Every application, or those of one `organization` (global administrators).
    #[oai(
        path = "/api/get-applications",
        method = "get",
        operation_id = "get-applications"
    )]
    async fn get_applications(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] organization: Query<Option<String>>,
    ) -> Answer {
        let org = organization.0.as_deref().filter(|s| !s.is_empty());
        let apps = state
            .iam
            .admin_list_applications(&caller.principal, org)
            .await?;
        Ok(list(&apps, wire::application))
    }

    /// The applications of one organization (Casdoor's `get-organization-applications`).
    #[oai(
        path = "/api/get-organization-applications",
        method = "get",
        operation_id = "get-organization-applications"
    )]
    async fn get_organization_applications(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
        #[oai(validator(max_length = 100))] organization: Query<String>,
    ) -> Answer {
        let _ = owner;
        let apps = state
            .iam
            .admin_list_applications(&caller.principal, Some(&organization.0))
            .await?;
        Ok(list(&apps, wire::application))
    }

    /// One application by `id=admin/name`; `data: null` when absent.
    #[oai(
        path = "/api/get-application",
        method = "get",
        operation_id = "get-application"
    )]
    async fn get_application(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<String>,
    ) -> Answer {
        let (_, n) = id_of(&id)?;
        let app = state
            .iam
            .admin_get_application(&caller.principal, &n)
            .await?;
        Ok(one(app, wire::application))
    }

    /// Adds one; a missing client id and secret are generated.
    #[oai(
        path = "/api/add-application",
        method = "post",
        operation_id = "add-application"
    )]
    async fn add_application(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: LaxJson<ApplicationWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        wire::refuse_unstored(&w.other)?;
        let app = Application::from_input(w.into_input(), Purpose::Create, Utc::now())?;
        state
            .iam
            .admin_add_application(&caller.principal, app)
            .await?;
        Ok(Reply::affected(true))
    }

    /// Updates one (`?id=`, else the body's name); `***` keeps the stored secret.
    #[oai(
        path = "/api/update-application",
        method = "post",
        operation_id = "update-application"
    )]
    async fn update_application(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<ApplicationWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (_, n) = target(&id, None, w.name.as_deref())?;
        wire::refuse_unstored(&w.other)?;
        let app = Application::from_input(w.into_input(), Purpose::Update, Utc::now())?;
        let changed = state
            .iam
            .admin_update_application(&caller.principal, &n, app)
            .await?;
        Ok(Reply::affected(changed))
    }

    /// Deletes one (`?id=`, else the body's name).
    #[oai(
        path = "/api/delete-application",
        method = "post",
        operation_id = "delete-application"
    )]
    async fn delete_application(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<ApplicationWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (_, n) = target(&id, None, w.name.as_deref())?;
        let done = state
            .iam
            .admin_delete_application(&caller.principal, &n)
            .await?;
        Ok(Reply::affected(done))
    }

    // ---- providers ----

    /// Every provider, or those of `owner` together with the shared ones (owned by `admin`), as
    /// Casdoor lists them.
    #[oai(
        path = "/api/get-providers",
        method = "get",
        operation_id = "get-providers"
    )]
    async fn get_providers(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
    ) -> Answer {
        let owner = owner.0.as_deref().filter(|s| !s.is_empty());
        let ps = state
            .iam
            .admin_list_providers(&caller.principal, owner)
            .await?;
        Ok(list(&ps, wire::provider))
    }

    /// One provider by `id=owner/name`; `data: null` when absent.
    #[oai(
        path = "/api/get-provider",
        method = "get",
        operation_id = "get-provider"
    )]
    async fn get_provider(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<String>,
    ) -> Answer {
        let (o, n) = id_of(&id)?;
        let p = state
            .iam
            .admin_get_provider(&caller.principal, &o, &n)
            .await?;
        Ok(one(p, wire::provider))
    }

    /// Adds one; a WeChat provider needs its APPID and APPSECRET.
    #[oai(
        path = "/api/add-provider",
        method = "post",
        operation_id = "add-provider"
    )]
    async fn add_provider(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: LaxJson<ProviderWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        wire::refuse_unstored(&w.other)?;
        let p = Provider::from_input(w.into_input(), Utc::now())?;
        state.iam.admin_add_provider(&caller.principal, p).await?;
        Ok(Reply::affected(true))
    }

    /// Updates one (`?id=`, else the body's owner/name); `***` keeps the stored secret.
    #[oai(
        path = "/api/update-provider",
        method = "post",
        operation_id = "update-provider"
    )]
    async fn update_provider(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<ProviderWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (o, n) = target(&id, w.owner.as_deref(), w.name.as_deref())?;
        wire::refuse_unstored(&w.other)?;
        let p = Provider::from_input(w.into_input(), Utc::now())?;
        let changed = state
            .iam
            .admin_update_provider(&caller.principal, &o, &n, p)
            .await?;
        Ok(Reply::affected(changed))
    }

    /// Deletes one (`?id=`, else the body's owner/name); 409 while an application lists it.
    #[oai(
        path = "/api/delete-provider",
        method = "post",
        operation_id = "delete-provider"
    )]
    async fn delete_provider(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<ProviderWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (o, n) = target(&id, w.owner.as_deref(), w.name.as_deref())?;
        let done = state
            .iam
            .admin_delete_provider(&caller.principal, &o, &n)
            .await?;
        Ok(Reply::affected(done))
    }

    // ---- certs ----

    /// Every cert (global administrators).
    #[oai(path = "/api/get-certs", method = "get", operation_id = "get-certs")]
    async fn get_certs(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
    ) -> Answer {
        let _ = owner;
        let cs = state.iam.admin_list_certs(&caller.principal).await?;
        Ok(list(&cs, wire::cert))
    }

    /// Every cert, as Casdoor's `get-global-certs` lists them.
    #[oai(
        path = "/api/get-global-certs",
        method = "get",
        operation_id = "get-global-certs"
    )]
    async fn get_global_certs(&self, state: Data<&Arc<AppState>>, caller: Caller) -> Answer {
        let cs = state.iam.admin_list_certs(&caller.principal).await?;
        Ok(list(&cs, wire::cert))
    }

    /// One cert by `id=owner/name` (found by name alone); `data: null` when absent.
    #[oai(path = "/api/get-cert", method = "get", operation_id = "get-cert")]
    async fn get_cert(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<String>,
    ) -> Answer {
        let (_, n) = id_of(&id)?;
        let c = state.iam.admin_get_cert(&caller.principal, &n).await?;
        Ok(one(c, wire::cert))
    }

    /// Adds one; with no certificate and key a fresh pair is generated.
    #[oai(path = "/api/add-cert", method = "post", operation_id = "add-cert")]
    async fn add_cert(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: LaxJson<CertWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        wire::refuse_unstored(&w.other)?;
        let (cert, generate) = Cert::from_input(w.into_input(), Purpose::Create, Utc::now())?;
        state
            .iam
            .admin_add_cert(&caller.principal, cert, generate)
            .await?;
        Ok(Reply::affected(true))
    }

    /// Updates one (`?id=`, else the body's name); `***` keeps the stored key.
    #[oai(
        path = "/api/update-cert",
        method = "post",
        operation_id = "update-cert"
    )]
    async fn update_cert(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<CertWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (_, n) = target(&id, None, w.name.as_deref())?;
        wire::refuse_unstored(&w.other)?;
        let (cert, _) = Cert::from_input(w.into_input(), Purpose::Update, Utc::now())?;
        let changed = state
            .iam
            .admin_update_cert(&caller.principal, &n, cert)
            .await?;
        Ok(Reply::affected(changed))
    }

    /// Deletes one (`?id=`, else the body's name); 409 while an application signs with it.
    #[oai(
        path = "/api/delete-cert",
        method = "post",
        operation_id = "delete-cert"
    )]
    async fn delete_cert(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<CertWire>,
    ) -> Answer {
        require_global_admin(&caller.principal)?;
        let w = body.parse()?;
        let (_, n) = target(&id, None, w.name.as_deref())?;
        let done = state.iam.admin_delete_cert(&caller.principal, &n).await?;
        Ok(Reply::affected(done))
    }

    // ---- users ----

    /// Adds a user to an organization you administer.
    #[oai(path = "/api/add-user", method = "post", operation_id = "add-user")]
    async fn add_user(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: LaxJson<UserWire>,
    ) -> Answer {
        let w = body.parse()?;
        require_user_admin(&caller.principal, w.owner.as_deref().unwrap_or_default())?;
        let (input, password) = w.into_input();
        let user = User::from_input(input, Utc::now())?;
        state
            .iam
            .admin_add_user(&caller.principal, user, password.as_deref())
            .await?;
        Ok(Reply::affected(true))
    }

    /// Deletes a user of an organization you administer (`?id=`, else the body's owner/name).
    #[oai(
        path = "/api/delete-user",
        method = "post",
        operation_id = "delete-user"
    )]
    async fn delete_user(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 201, pattern = r"^[^/\s]+/[^/\s]+$"))] id: Query<
            Option<String>,
        >,
        body: LaxJson<UserWire>,
    ) -> Answer {
        let w = body.parse()?;
        let (o, n) = target(&id, w.owner.as_deref(), w.name.as_deref())?;
        let done = state
            .iam
            .admin_delete_user(&caller.principal, &o, &n)
            .await?;
        Ok(Reply::affected(done))
    }
}
