//! The management API (SPEC §6): Casdoor's `get-`/`add-`/`update-`/`delete-` routes for
//! organizations, applications, providers, certs and users. Each operation authorizes the caller
//! before it reads the body, then builds the domain object through the domain's constructor.
//!
//! The five routes of each kind of configuration object are one shape: [`Crud`] says what each
//! does for its kind, and `crud!` writes the operations.

use std::sync::Arc;

use chrono::Utc;
use iam_domain::admin::{require_global_admin, require_some_user_admin, require_user_admin};
use iam_domain::model::{ADMIN_OWNER, Application, Cert, Organization, Provider, User};
use iam_domain::objects::Purpose;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use serde_json::{Value, json};

use iam_domain::service::{Iam, Principal};

use crate::errors::{Envelope, Failure, Reply};
use crate::extract::{Caller, LaxJson, Required};
use crate::params::ObjectId;
use crate::state::AppState;
use crate::tags::Tag;
use iam_wire::{
    self as wire, ApplicationUpdate, ApplicationWire, CertWire, OrganizationWire, ProviderWire,
    UserWire,
};

type Answer = Result<Reply<Envelope>, Failure>;

/// `owner/name` from `?id=`, else from the body (owner `admin` when the body has none).
fn target(
    id: &Query<Option<ObjectId>>,
    owner: Option<&str>,
    name: Option<&str>,
) -> Result<(String, String), Failure> {
    if let Some(id) = &id.0 {
        return Ok((id.owner.to_string(), id.name.to_string()));
    }
    let owner = owner.filter(|o| !o.is_empty()).unwrap_or(ADMIN_OWNER);
    let name = iam_domain::values::ObjectName::parse("name", name.unwrap_or_default())?;
    Ok((owner.to_owned(), name.into_string()))
}

fn list<T>(items: &[T], render: fn(&T) -> Value) -> Reply<Envelope> {
    Reply::list(items, render, items.len())
}

fn one<T>(item: Option<T>, render: fn(&T) -> Value) -> Reply<Envelope> {
    Reply::ok(
        item.as_ref().map(render).unwrap_or(Value::Null),
        Value::Null,
    )
}

/// What the five management routes do for one kind of object.
trait Crud {
    type Wire: serde::de::DeserializeOwned;
    /// What `update-` reads: the wire type, or one that requires more of it.
    type UpdateWire: serde::de::DeserializeOwned + Into<Self::Wire>;
    /// The owner and name a body names (for `update-`/`delete-` without `?id=`).
    fn key(w: &Self::Wire) -> (Option<&str>, Option<&str>);
    async fn list(iam: &Iam, caller: &Principal, filter: Option<&str>) -> Answer;
    async fn get(iam: &Iam, caller: &Principal, owner: &str, name: &str) -> Answer;
    async fn add(iam: &Iam, caller: &Principal, w: Self::Wire) -> Answer;
    async fn update(
        iam: &Iam,
        caller: &Principal,
        owner: &str,
        name: &str,
        w: Self::Wire,
    ) -> Answer;
    async fn delete(iam: &Iam, caller: &Principal, owner: &str, name: &str) -> Answer;
}

/// The body of an add or update, read only once the caller is known to be a global
/// administrator.
fn admin_body<W: serde::de::DeserializeOwned, const REQUIRED: bool>(
    caller: &Caller,
    body: &LaxJson<W, W, REQUIRED>,
) -> Result<W, Failure> {
    require_global_admin(&caller.principal)?;
    body.parse()
}

macro_rules! crud {
    ($api:ident, $kind:ty, $wire:ty, $filter:literal,
     $list:literal, $list_id:literal, $get:literal, $get_id:literal, $add:literal,
     $add_id:literal, $update:literal, $update_id:literal, $delete:literal,
     $delete_id:literal) => {
        pub struct $api;

        #[OpenApi(tag = "Tag::Management")]
        impl $api {
            /// Lists them (global administrators).
            #[oai(path = $list, method = "get", operation_id = $list_id)]
            async fn list(
                &self,
                state: Data<&Arc<AppState>>,
                caller: Caller,
                #[oai(name = $filter, validator(max_length = 100))] filter: Query<Option<String>>,
            ) -> Answer {
                let filter = filter.0.as_deref().filter(|s| !s.is_empty());
                <$kind>::list(&state.iam, &caller.principal, filter).await
            }

            /// One of them by `id=owner/name`; `data: null` when absent.
            #[oai(path = $get, method = "get", operation_id = $get_id)]
            async fn get(
                &self,
                state: Data<&Arc<AppState>>,
                caller: Caller,
                id: Query<ObjectId>,
            ) -> Answer {
                <$kind>::get(&state.iam, &caller.principal, &id.owner, &id.name).await
            }

            /// Adds one; every bad field is a 400 naming it, and nothing is half-written.
            #[oai(path = $add, method = "post", operation_id = $add_id)]
            async fn add(
                &self,
                state: Data<&Arc<AppState>>,
                caller: Caller,
                body: Required<$wire>,
            ) -> Answer {
                let w = admin_body(&caller, &body)?;
                <$kind>::add(&state.iam, &caller.principal, w).await
            }

            /// Updates one (`?id=`, else the body's owner/name); `***` keeps a stored secret.
            #[oai(path = $update, method = "post", operation_id = $update_id)]
            async fn update(
                &self,
                state: Data<&Arc<AppState>>,
                caller: Caller,
                id: Query<Option<ObjectId>>,
                body: Required<<$kind as Crud>::UpdateWire>,
            ) -> Answer {
                let w: $wire = admin_body(&caller, &body)?.into();
                let (owner, name) = <$kind>::key(&w);
                let (o, n) = target(&id, owner, name)?;
                <$kind>::update(&state.iam, &caller.principal, &o, &n, w).await
            }

            /// Deletes one (`?id=`, else the body's owner/name); 409 while it is still in use.
            #[oai(path = $delete, method = "post", operation_id = $delete_id)]
            async fn delete(
                &self,
                state: Data<&Arc<AppState>>,
                caller: Caller,
                id: Query<Option<ObjectId>>,
                body: LaxJson<$wire>,
            ) -> Answer {
                require_global_admin(&caller.principal)?;
                let w = body.parse()?;
                let (owner, name) = <$kind>::key(&w);
                let (o, n) = target(&id, owner, name)?;
                <$kind>::delete(&state.iam, &caller.principal, &o, &n).await
            }
        }
    };
}

/// The kinds of configuration object.
pub struct Organizations;
pub struct Applications;
pub struct Providers;
pub struct Certs;

impl Crud for Organizations {
    type Wire = OrganizationWire;
    type UpdateWire = OrganizationWire;
    fn key(w: &OrganizationWire) -> (Option<&str>, Option<&str>) {
        (None, Some(w.name.as_str()))
    }
    async fn list(iam: &Iam, caller: &Principal, _owner: Option<&str>) -> Answer {
        Ok(list(
            &iam.admin_list_organizations(caller).await?,
            wire::organization,
        ))
    }
    async fn get(iam: &Iam, caller: &Principal, _: &str, name: &str) -> Answer {
        let org = iam.admin_get_organization(caller, name).await?;
        Ok(one(org, wire::organization))
    }
    async fn add(iam: &Iam, caller: &Principal, w: OrganizationWire) -> Answer {
        let org = Organization::from_input(w.into_input(), Utc::now())?;
        iam.admin_add_organization(caller, org).await?;
        Ok(Reply::affected(true))
    }
    async fn update(
        iam: &Iam,
        caller: &Principal,
        _: &str,
        name: &str,
        w: OrganizationWire,
    ) -> Answer {
        Ok(Reply::affected(
            iam.admin_update_organization(caller, name, w.into_input())
                .await?,
        ))
    }
    async fn delete(iam: &Iam, caller: &Principal, _: &str, name: &str) -> Answer {
        Ok(Reply::affected(
            iam.admin_delete_organization(caller, name).await?,
        ))
    }
}

impl Crud for Applications {
    type Wire = ApplicationWire;
    type UpdateWire = ApplicationUpdate;
    fn key(w: &ApplicationWire) -> (Option<&str>, Option<&str>) {
        (None, Some(w.name.as_str()))
    }
    async fn list(iam: &Iam, caller: &Principal, organization: Option<&str>) -> Answer {
        let apps = iam.admin_list_applications(caller, organization).await?;
        Ok(list(&apps, wire::application))
    }
    async fn get(iam: &Iam, caller: &Principal, _: &str, name: &str) -> Answer {
        let app = iam.admin_get_application(caller, name).await?;
        Ok(one(app, wire::application))
    }
    async fn add(iam: &Iam, caller: &Principal, w: ApplicationWire) -> Answer {
        let app = Application::from_input(w.into_input(), Purpose::Create, Utc::now())?;
        iam.admin_add_application(caller, app).await?;
        Ok(Reply::affected(true))
    }
    async fn update(
        iam: &Iam,
        caller: &Principal,
        _: &str,
        name: &str,
        w: ApplicationWire,
    ) -> Answer {
        Ok(Reply::affected(
            iam.admin_update_application(caller, name, w.into_input())
                .await?,
        ))
    }
    async fn delete(iam: &Iam, caller: &Principal, _: &str, name: &str) -> Answer {
        Ok(Reply::affected(
            iam.admin_delete_application(caller, name).await?,
        ))
    }
}

impl Crud for Providers {
    type Wire = ProviderWire;
    type UpdateWire = ProviderWire;
    fn key(w: &ProviderWire) -> (Option<&str>, Option<&str>) {
        (w.owner.as_deref(), Some(w.name.as_str()))
    }
    /// An owner's providers come with the shared ones (owned by `admin`), as Casdoor lists them.
    async fn list(iam: &Iam, caller: &Principal, owner: Option<&str>) -> Answer {
        Ok(list(
            &iam.admin_list_providers(caller, owner).await?,
            wire::provider,
        ))
    }
    async fn get(iam: &Iam, caller: &Principal, owner: &str, name: &str) -> Answer {
        let p = iam.admin_get_provider(caller, owner, name).await?;
        Ok(one(p, wire::provider))
    }
    async fn add(iam: &Iam, caller: &Principal, w: ProviderWire) -> Answer {
        let p = Provider::from_input(w.into_input(), Utc::now())?;
        iam.admin_add_provider(caller, p).await?;
        Ok(Reply::affected(true))
    }
    async fn update(
        iam: &Iam,
        caller: &Principal,
        owner: &str,
        name: &str,
        w: ProviderWire,
    ) -> Answer {
        Ok(Reply::affected(
            iam.admin_update_provider(caller, owner, name, w.into_input())
                .await?,
        ))
    }
    async fn delete(iam: &Iam, caller: &Principal, owner: &str, name: &str) -> Answer {
        Ok(Reply::affected(
            iam.admin_delete_provider(caller, owner, name).await?,
        ))
    }
}

impl Crud for Certs {
    type Wire = CertWire;
    type UpdateWire = CertWire;
    fn key(w: &CertWire) -> (Option<&str>, Option<&str>) {
        (None, Some(w.name.as_str()))
    }
    async fn list(iam: &Iam, caller: &Principal, _owner: Option<&str>) -> Answer {
        Ok(list(&iam.admin_list_certs(caller).await?, wire::cert))
    }
    /// Certs are found by name alone, whatever owner the id names.
    async fn get(iam: &Iam, caller: &Principal, _: &str, name: &str) -> Answer {
        Ok(one(iam.admin_get_cert(caller, name).await?, wire::cert))
    }
    async fn add(iam: &Iam, caller: &Principal, w: CertWire) -> Answer {
        let (cert, generate) = Cert::from_input(w.into_input(), Purpose::Create, Utc::now())?;
        iam.admin_add_cert(caller, cert, generate).await?;
        Ok(Reply::affected(true))
    }
    async fn update(iam: &Iam, caller: &Principal, _: &str, name: &str, w: CertWire) -> Answer {
        Ok(Reply::affected(
            iam.admin_update_cert(caller, name, w.into_input()).await?,
        ))
    }
    async fn delete(iam: &Iam, caller: &Principal, _: &str, name: &str) -> Answer {
        Ok(Reply::affected(iam.admin_delete_cert(caller, name).await?))
    }
}

crud!(
    OrganizationApi,
    Organizations,
    OrganizationWire,
    "owner",
    "/api/get-organizations",
    "get-organizations",
    "/api/get-organization",
    "get-organization",
    "/api/add-organization",
    "add-organization",
    "/api/update-organization",
    "update-organization",
    "/api/delete-organization",
    "delete-organization"
);
crud!(
    ApplicationApi,
    Applications,
    ApplicationWire,
    "organization",
    "/api/get-applications",
    "get-applications",
    "/api/get-application",
    "get-application",
    "/api/add-application",
    "add-application",
    "/api/update-application",
    "update-application",
    "/api/delete-application",
    "delete-application"
);
crud!(
    ProviderApi,
    Providers,
    ProviderWire,
    "owner",
    "/api/get-providers",
    "get-providers",
    "/api/get-provider",
    "get-provider",
    "/api/add-provider",
    "add-provider",
    "/api/update-provider",
    "update-provider",
    "/api/delete-provider",
    "delete-provider"
);
crud!(
    CertApi,
    Certs,
    CertWire,
    "owner",
    "/api/get-certs",
    "get-certs",
    "/api/get-cert",
    "get-cert",
    "/api/add-cert",
    "add-cert",
    "/api/update-cert",
    "update-cert",
    "/api/delete-cert",
    "delete-cert"
);

/// Casdoor's other listing routes, and the users an administrator adds and deletes.
pub struct ManagementApi;

#[OpenApi(tag = "Tag::Management")]
impl ManagementApi {
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
        Applications::list(&state.iam, &caller.principal, Some(&organization.0)).await
    }

    /// Every cert, as Casdoor's `get-global-certs` lists them.
    #[oai(
        path = "/api/get-global-certs",
        method = "get",
        operation_id = "get-global-certs"
    )]
    async fn get_global_certs(&self, state: Data<&Arc<AppState>>, caller: Caller) -> Answer {
        Certs::list(&state.iam, &caller.principal, None).await
    }

    /// Adds a user to an organization you administer.
    #[oai(path = "/api/add-user", method = "post", operation_id = "add-user")]
    async fn add_user(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: Required<UserWire>,
    ) -> Answer {
        require_some_user_admin(&caller.principal)?;
        let w = body.parse()?;
        require_user_admin(&caller.principal, w.owner.as_str())?;
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
        id: Query<Option<ObjectId>>,
        body: LaxJson<UserWire>,
    ) -> Answer {
        require_some_user_admin(&caller.principal)?;
        let w = body.parse()?;
        let (o, n) = target(&id, Some(w.owner.as_str()), Some(w.name.as_str()))?;
        let done = state
            .iam
            .admin_delete_user(&caller.principal, &o, &n)
            .await?;
        Ok(Reply::affected(done))
    }
}
