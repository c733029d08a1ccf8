//! The management API (SPEC §6): Casdoor's `get-`/`add-`/`update-`/`delete-` routes for
//! organizations, applications, providers, users and certs. Bodies are read field by field so
//! every bad value is a 400 naming its field; secrets come back as `***`.

use std::sync::Arc;

use chrono::Utc;
use iam_domain::Secret;
use iam_domain::admin::MASK;
use iam_domain::model::{
    ADMIN_OWNER, Application, Cert, Organization, Profile, Provider, ProviderItem, User,
};
use iam_domain::service::Principal;
use iam_domain::users::ApiError;
use iam_domain::values::{AvatarUrl, ClientId, CryptoAlgorithm, DisplayName, ObjectName, split_id};
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::http::{envelope_error, envelope_ok, json_object, principal, query_map, read_body};

type Obj = Map<String, Value>;

fn text(o: &Obj, field: &str) -> Result<String, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::BadRequest(format!("{field}: must be a string"))),
    }
}

fn flag(o: &Obj, field: &str) -> Result<bool, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{field}: must be true or false"
        ))),
    }
}

fn number(o: &Obj, field: &str) -> Result<Option<f64>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(ApiError::BadRequest(format!("{field}: must be a number"))),
    }
}

fn name(o: &Obj, field: &'static str) -> Result<String, ApiError> {
    ObjectName::parse(field, &text(o, field)?)
        .map(ObjectName::into_string)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

fn random_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

fn organization_from(o: &Obj) -> Result<Organization, ApiError> {
    let default_avatar = text(o, "defaultAvatar")?;
    if !default_avatar.is_empty() {
        AvatarUrl::parse("defaultAvatar", &default_avatar).map_err(bad)?;
    }
    Ok(Organization {
        name: name(o, "name")?,
        display_name: text(o, "displayName")?,
        default_avatar,
        created_time: Utc::now(),
    })
}

fn hours(o: &Obj, field: &str, default: i64) -> Result<i64, ApiError> {
    match number(o, field)? {
        None => Ok(default),
        Some(0.0) => Ok(default),
        Some(h) if h > 0.0 && h <= 87_600.0 => Ok(h.ceil() as i64),
        Some(h) => Err(ApiError::BadRequest(format!(
            "{field}: {h} is not between 0 and 87600 hours"
        ))),
    }
}

fn application_from(o: &Obj, adding: bool) -> Result<Application, ApiError> {
    let mut providers = Vec::new();
    match o.get("providers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Object(item) = item else {
                    return Err(ApiError::BadRequest(format!(
                        "providers[{i}]: must be an object"
                    )));
                };
                let n = text(item, "name")?;
                ObjectName::parse("name", &n)
                    .map_err(|e| ApiError::BadRequest(format!("providers[{i}].{e}")))?;
                let yes = |f: &str| -> Result<bool, ApiError> {
                    match item.get(f) {
                        None | Some(Value::Null) => Ok(true),
                        Some(Value::Bool(b)) => Ok(*b),
                        Some(_) => Err(ApiError::BadRequest(format!(
                            "providers[{i}].{f}: must be true or false"
                        ))),
                    }
                };
                providers.push(ProviderItem {
                    owner: text(item, "owner")?,
                    name: n,
                    can_sign_up: yes("canSignUp")?,
                    can_sign_in: yes("canSignIn")?,
                });
            }
        }
        Some(_) => return Err(ApiError::BadRequest("providers: must be a list".into())),
    }
    let grant_types = match o.get("grantTypes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(v)) => v
            .iter()
            .map(|g| {
                g.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::BadRequest("grantTypes: must be a list of strings".into())
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "grantTypes: must be a list of strings".into(),
            ));
        }
    };
    let mut client_id = text(o, "clientId")?;
    let mut client_secret = text(o, "clientSecret")?;
    if adding && client_id.is_empty() {
        client_id = random_hex(20);
    }
    if adding && client_secret.is_empty() {
        client_secret = random_hex(40);
    }
    ClientId::parse(&client_id)
        .map_err(|e| ApiError::BadRequest(format!("clientId: {}", e.reason)))?;
    let cert = text(o, "cert")?;
    if !cert.is_empty() {
        ObjectName::parse("cert", &cert).map_err(bad)?;
    }
    Ok(Application {
        name: name(o, "name")?,
        display_name: text(o, "displayName")?,
        organization: name(o, "organization")?,
        client_id,
        client_secret: Secret::new(client_secret),
        cert,
        enable_sign_up: flag(o, "enableSignUp")?,
        providers,
        grant_types,
        token_format: match text(o, "tokenFormat")? {
            f if f.is_empty() => "JWT".into(),
            f => f,
        },
        expire_in_hours: hours(o, "expireInHours", Application::DEFAULT_EXPIRE_IN_HOURS)?,
        refresh_expire_in_hours: hours(
            o,
            "refreshExpireInHours",
            Application::DEFAULT_REFRESH_EXPIRE_IN_HOURS,
        )?,
        created_time: Utc::now(),
    })
}

fn provider_from(o: &Obj) -> Result<Provider, ApiError> {
    let owner = match text(o, "owner")? {
        s if s.is_empty() => ADMIN_OWNER.to_owned(),
        s => ObjectName::parse("owner", &s).map_err(bad)?.into_string(),
    };
    Ok(Provider {
        owner,
        name: name(o, "name")?,
        display_name: text(o, "displayName")?,
        category: match text(o, "category")? {
            c if c.is_empty() => "OAuth".into(),
            c => c,
        },
        provider_type: text(o, "type")?,
        sub_type: text(o, "subType")?,
        client_id: text(o, "clientId")?,
        client_secret: Secret::new(text(o, "clientSecret")?),
        created_time: Utc::now(),
    })
}

fn cert_from(o: &Obj) -> Result<Cert, ApiError> {
    let alg = CryptoAlgorithm::parse(&text(o, "cryptoAlgorithm")?).map_err(bad)?;
    let cert_type = match text(o, "type")? {
        t if t.is_empty() || t == "x509" => "x509".to_owned(),
        t => {
            return Err(ApiError::BadRequest(format!(
                "type: {t:?} is not supported (x509)"
            )));
        }
    };
    Ok(Cert {
        name: name(o, "name")?,
        display_name: text(o, "displayName")?,
        cert_type,
        crypto_algorithm: alg,
        bit_size: number(o, "bitSize")?
            .map(|b| b as i32)
            .unwrap_or(match alg {
                CryptoAlgorithm::Rs256 => 2048,
                CryptoAlgorithm::Es256 => 256,
            }),
        certificate: text(o, "certificate")?,
        private_key: Secret::new(text(o, "privateKey")?),
        created_time: Utc::now(),
    })
}

fn user_from(o: &Obj) -> Result<User, ApiError> {
    let display_name = text(o, "displayName")?;
    DisplayName::parse("displayName", &display_name).map_err(bad)?;
    let avatar = text(o, "avatar")?;
    if !avatar.is_empty() {
        AvatarUrl::parse("avatar", &avatar).map_err(bad)?;
    }
    let now = Utc::now();
    Ok(User {
        id: String::new(),
        owner: name(o, "owner")?,
        name: name(o, "name")?,
        user_type: match text(o, "type")? {
            t if t.is_empty() => User::NORMAL_USER.into(),
            t => t,
        },
        display_name,
        avatar,
        email: text(o, "email")?,
        phone: text(o, "phone")?,
        country_code: text(o, "countryCode")?,
        is_admin: flag(o, "isAdmin")?,
        is_forbidden: flag(o, "isForbidden")?,
        is_deleted: false,
        signup_application: text(o, "signupApplication")?,
        wechat: String::new(),
        wechat_open_id: String::new(),
        wechat_union_id: String::new(),
        password_hash: None,
        profile: Profile {
            first_name: text(o, "firstName")?,
            last_name: text(o, "lastName")?,
            bio: text(o, "bio")?,
            gender: text(o, "gender")?,
            language: text(o, "language")?,
            location: text(o, "location")?,
            region: text(o, "region")?,
            homepage: text(o, "homepage")?,
            title: text(o, "title")?,
            affiliation: text(o, "affiliation")?,
            birthday: text(o, "birthday")?,
        },
        created_time: now,
        updated_time: now,
        last_signin_time: None,
    })
}

/// `owner/name` from `?id=`, else from the body.
fn target(req: &Request, body: &Obj) -> Result<(String, String), ApiError> {
    let q = query_map(req);
    if let Some(id) = q.get("id").filter(|s| !s.is_empty()) {
        let (o, n) = split_id("id", id).map_err(bad)?;
        return Ok((o.into_string(), n.into_string()));
    }
    let owner = match text(body, "owner")? {
        o if o.is_empty() => ADMIN_OWNER.to_owned(),
        o => o,
    };
    Ok((owner, name(body, "name")?))
}

fn id_param(req: &Request) -> Result<(String, String), ApiError> {
    let q = query_map(req);
    let id = q
        .get("id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest("id: owner/name is required".into()))?;
    let (o, n) = split_id("id", id).map_err(bad)?;
    Ok((o.into_string(), n.into_string()))
}

fn affected(changed: bool) -> Response {
    envelope_ok(
        json!(if changed { "Affected" } else { "Unaffected" }),
        Value::Null,
    )
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| envelope_error(&e))
}

async fn caller_and_body(
    state: &AppState,
    req: &Request,
    body: Body,
) -> Result<(Principal, Obj), ApiError> {
    let caller = principal(state, req).await?;
    let bytes = read_body(body).await?;
    Ok((caller, json_object(&bytes)?))
}

pub fn application_json(a: &Application) -> Value {
    json!({
        "owner": ADMIN_OWNER,
        "name": a.name,
        "createdTime": crate::json::time(&a.created_time),
        "displayName": a.display_name,
        "organization": a.organization,
        "clientId": a.client_id,
        "clientSecret": if a.client_secret.is_empty() { "" } else { MASK },
        "cert": a.cert,
        "enableSignUp": a.enable_sign_up,
        "providers": a.providers,
        "grantTypes": a.grant_types,
        "tokenFormat": a.token_format,
        "expireInHours": a.expire_in_hours,
        "refreshExpireInHours": a.refresh_expire_in_hours,
    })
}

pub fn provider_json(p: &Provider) -> Value {
    json!({
        "owner": p.owner,
        "name": p.name,
        "createdTime": crate::json::time(&p.created_time),
        "displayName": p.display_name,
        "category": p.category,
        "type": p.provider_type,
        "subType": p.sub_type,
        "clientId": p.client_id,
        "clientSecret": if p.client_secret.is_empty() { "" } else { MASK },
    })
}

pub fn cert_json(c: &Cert) -> Value {
    json!({
        "owner": ADMIN_OWNER,
        "name": c.name,
        "createdTime": crate::json::time(&c.created_time),
        "displayName": c.display_name,
        "scope": "JWT",
        "type": c.cert_type,
        "cryptoAlgorithm": c.crypto_algorithm.as_str(),
        "bitSize": c.bit_size,
        "certificate": c.certificate,
        "privateKey": MASK,
    })
}

// ---- organizations ----

#[handler]
pub async fn get_organizations(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let orgs = state.iam.admin_list_organizations(&caller).await?;
            Ok(envelope_ok(
                orgs.iter().map(crate::json::organization).collect(),
                json!(orgs.len()),
            ))
        }
        .await,
    )
}

#[handler]
pub async fn get_organization(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let (_, n) = id_param(req)?;
            let org = state.iam.admin_get_organization(&caller, &n).await?;
            Ok(envelope_ok(
                org.as_ref()
                    .map(crate::json::organization)
                    .unwrap_or(Value::Null),
                Value::Null,
            ))
        }
        .await,
    )
}

#[handler]
pub async fn add_organization(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            state
                .iam
                .admin_add_organization(&caller, organization_from(&o)?)
                .await?;
            Ok(affected(true))
        }
        .await,
    )
}

#[handler]
pub async fn update_organization(
    state: Data<&Arc<AppState>>,
    req: &Request,
    body: Body,
) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (_, n) = target(req, &o)?;
            let changed = state
                .iam
                .admin_update_organization(&caller, &n, organization_from(&o)?)
                .await?;
            Ok(affected(changed))
        }
        .await,
    )
}

#[handler]
pub async fn delete_organization(
    state: Data<&Arc<AppState>>,
    req: &Request,
    body: Body,
) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (_, n) = target(req, &o)?;
            Ok(affected(
                state.iam.admin_delete_organization(&caller, &n).await?,
            ))
        }
        .await,
    )
}

// ---- applications ----

#[handler]
pub async fn get_applications(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let q = query_map(req);
            let org = q
                .get("organization")
                .filter(|s| !s.is_empty())
                .map(String::as_str);
            let apps = state.iam.admin_list_applications(&caller, org).await?;
            Ok(envelope_ok(
                apps.iter().map(application_json).collect(),
                json!(apps.len()),
            ))
        }
        .await,
    )
}

#[handler]
pub async fn get_application(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let (_, n) = id_param(req)?;
            let app = state.iam.admin_get_application(&caller, &n).await?;
            Ok(envelope_ok(
                app.as_ref().map(application_json).unwrap_or(Value::Null),
                Value::Null,
            ))
        }
        .await,
    )
}

#[handler]
pub async fn add_application(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            state
                .iam
                .admin_add_application(&caller, application_from(&o, true)?)
                .await?;
            Ok(affected(true))
        }
        .await,
    )
}

#[handler]
pub async fn update_application(
    state: Data<&Arc<AppState>>,
    req: &Request,
    body: Body,
) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (_, n) = target(req, &o)?;
            let changed = state
                .iam
                .admin_update_application(&caller, &n, application_from(&o, false)?)
                .await?;
            Ok(affected(changed))
        }
        .await,
    )
}

#[handler]
pub async fn delete_application(
    state: Data<&Arc<AppState>>,
    req: &Request,
    body: Body,
) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (_, n) = target(req, &o)?;
            Ok(affected(
                state.iam.admin_delete_application(&caller, &n).await?,
            ))
        }
        .await,
    )
}

// ---- providers ----

#[handler]
pub async fn get_providers(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let q = query_map(req);
            let owner = q.get("owner").filter(|s| !s.is_empty()).map(String::as_str);
            let ps = state.iam.admin_list_providers(&caller, owner).await?;
            Ok(envelope_ok(
                ps.iter().map(provider_json).collect(),
                json!(ps.len()),
            ))
        }
        .await,
    )
}

#[handler]
pub async fn get_provider(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let (o, n) = id_param(req)?;
            let p = state.iam.admin_get_provider(&caller, &o, &n).await?;
            Ok(envelope_ok(
                p.as_ref().map(provider_json).unwrap_or(Value::Null),
                Value::Null,
            ))
        }
        .await,
    )
}

#[handler]
pub async fn add_provider(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            state
                .iam
                .admin_add_provider(&caller, provider_from(&o)?)
                .await?;
            Ok(affected(true))
        }
        .await,
    )
}

#[handler]
pub async fn update_provider(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (owner, n) = target(req, &o)?;
            let changed = state
                .iam
                .admin_update_provider(&caller, &owner, &n, provider_from(&o)?)
                .await?;
            Ok(affected(changed))
        }
        .await,
    )
}

#[handler]
pub async fn delete_provider(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (owner, n) = target(req, &o)?;
            Ok(affected(
                state.iam.admin_delete_provider(&caller, &owner, &n).await?,
            ))
        }
        .await,
    )
}

// ---- certs ----

#[handler]
pub async fn get_certs(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let cs = state.iam.admin_list_certs(&caller).await?;
            Ok(envelope_ok(
                cs.iter().map(cert_json).collect(),
                json!(cs.len()),
            ))
        }
        .await,
    )
}

#[handler]
pub async fn get_cert(state: Data<&Arc<AppState>>, req: &Request) -> Response {
    respond(
        async {
            let caller = principal(&state, req).await?;
            let (_, n) = id_param(req)?;
            let c = state.iam.admin_get_cert(&caller, &n).await?;
            Ok(envelope_ok(
                c.as_ref().map(cert_json).unwrap_or(Value::Null),
                Value::Null,
            ))
        }
        .await,
    )
}

#[handler]
pub async fn add_cert(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            state.iam.admin_add_cert(&caller, cert_from(&o)?).await?;
            Ok(affected(true))
        }
        .await,
    )
}

#[handler]
pub async fn update_cert(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (_, n) = target(req, &o)?;
            let changed = state
                .iam
                .admin_update_cert(&caller, &n, cert_from(&o)?)
                .await?;
            Ok(affected(changed))
        }
        .await,
    )
}

#[handler]
pub async fn delete_cert(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (_, n) = target(req, &o)?;
            Ok(affected(state.iam.admin_delete_cert(&caller, &n).await?))
        }
        .await,
    )
}

// ---- users ----

#[handler]
pub async fn add_user(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let password = text(&o, "password")?;
            state
                .iam
                .admin_add_user(&caller, user_from(&o)?, Some(&password))
                .await?;
            Ok(affected(true))
        }
        .await,
    )
}

#[handler]
pub async fn delete_user(state: Data<&Arc<AppState>>, req: &Request, body: Body) -> Response {
    respond(
        async {
            let (caller, o) = caller_and_body(&state, req, body).await?;
            let (owner, n) = target(req, &o)?;
            Ok(affected(
                state.iam.admin_delete_user(&caller, &owner, &n).await?,
            ))
        }
        .await,
    )
}
