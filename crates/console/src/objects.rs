//! Applications, providers, organizations and certs: lists and edit forms (global
//! administrators). A form is turned into the same domain input the management API builds, so
//! the API's validation applies and its message appears beside the field; secrets are shown as
//! `***`, and `***` sent back keeps the stored one.

use std::sync::Arc;

use askama::Template;
use iam_domain::Error;
use iam_domain::model::{Application, Cert, Organization, Provider};
use iam_domain::objects::{
    ApplicationInput, CertInput, MASK, OrganizationInput, ProviderInput, ProviderItemInput,
};
use iam_domain::service::Principal;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use crate::Console;
use crate::page::{self, Admin, Fields, Frame, Posted, field, see_other, when};

/// The kinds of object these pages edit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Applications,
    Providers,
    Organizations,
    Certs,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "applications" => Self::Applications,
            "providers" => Self::Providers,
            "organizations" => Self::Organizations,
            "certs" => Self::Certs,
            _ => return None,
        })
    }

    fn path(self) -> &'static str {
        match self {
            Self::Applications => "applications",
            Self::Providers => "providers",
            Self::Organizations => "organizations",
            Self::Certs => "certs",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Applications => "Applications",
            Self::Providers => "Providers",
            Self::Organizations => "Organizations",
            Self::Certs => "Certs",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Applications => "application",
            Self::Providers => "provider",
            Self::Organizations => "organization",
            Self::Certs => "cert",
        }
    }
}

pub struct ListRow {
    pub href: String,
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "objects.html")]
struct ListPage {
    frame: Frame,
    headers: Vec<&'static str>,
    rows: Vec<ListRow>,
    note: &'static str,
}

/// One field of an edit form.
pub struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    /// `text`, `password`, `checkbox`, `number` or `readonly` (shown, never sent).
    pub kind: &'static str,
    pub hint: &'static str,
    pub error: Option<String>,
}

impl FormField {
    fn new(name: &'static str, label: &'static str, value: impl Into<String>) -> Self {
        Self {
            name,
            label,
            value: value.into(),
            kind: "text",
            hint: "",
            error: None,
        }
    }

    fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    pub fn checked(&self) -> bool {
        self.value == "true"
    }
}

#[derive(Template)]
#[template(path = "object.html")]
struct EditPage {
    frame: Frame,
    action: String,
    back: String,
    back_label: &'static str,
    fields: Vec<FormField>,
    form_error: Option<String>,
    notice: Option<String>,
}

fn masked(has_secret: bool) -> String {
    if has_secret {
        MASK.to_owned()
    } else {
        String::new()
    }
}

async fn list_rows(
    console: &Console,
    caller: &Principal,
    kind: Kind,
) -> Result<(Vec<&'static str>, Vec<ListRow>), Error> {
    let iam = &console.iam;
    Ok(match kind {
        Kind::Applications => (
            vec!["Name", "Organization", "Client id", "Providers", "Sign-up"],
            iam.admin_list_applications(caller, None)
                .await?
                .into_iter()
                .map(|a| ListRow {
                    href: format!("/console/applications/{}", a.name),
                    cells: vec![
                        a.name.to_string(),
                        a.organization.to_string(),
                        a.client_id.to_string(),
                        a.providers
                            .iter()
                            .map(|p| p.name.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                        if a.enable_sign_up { "on" } else { "off" }.into(),
                    ],
                })
                .collect(),
        ),
        Kind::Providers => (
            vec!["Owner/name", "Display name", "Type", "APPID / client id"],
            iam.admin_list_providers(caller, None)
                .await?
                .into_iter()
                .map(|p| ListRow {
                    href: format!("/console/providers/{}/{}", p.owner, p.name),
                    cells: vec![
                        format!("{}/{}", p.owner, p.name),
                        p.display_name.to_string(),
                        format!("{} {}", p.provider_type, p.sub_type)
                            .trim()
                            .to_owned(),
                        p.client_id.clone(),
                    ],
                })
                .collect(),
        ),
        Kind::Organizations => (
            vec!["Name", "Display name", "Created"],
            iam.admin_list_organizations(caller)
                .await?
                .into_iter()
                .map(|o| ListRow {
                    href: format!("/console/organizations/{}", o.name),
                    cells: vec![
                        o.name.to_string(),
                        o.display_name.to_string(),
                        when(&o.created_time),
                    ],
                })
                .collect(),
        ),
        Kind::Certs => (
            vec!["Name", "Display name", "Algorithm", "Bits", "Created"],
            iam.admin_list_certs(caller)
                .await?
                .into_iter()
                .map(|c| ListRow {
                    href: format!("/console/certs/{}", c.name),
                    cells: vec![
                        c.name.to_string(),
                        c.display_name.to_string(),
                        c.crypto_algorithm.as_str().to_owned(),
                        c.bit_size.to_string(),
                        when(&c.created_time),
                    ],
                })
                .collect(),
        ),
    })
}

#[handler]
pub async fn list(
    admin: Admin,
    Path(kind): Path<String>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let Some(kind) = Kind::parse(&kind) else {
        return page::message_page(StatusCode::NOT_FOUND, "There is no such page.");
    };
    let (headers, rows) = match list_rows(console, &admin.principal, kind).await {
        Ok(r) => r,
        Err(e) => return page::failure(&e),
    };
    let note = match kind {
        Kind::Applications => "To add a mini program's application, use “Connect a mini program”.",
        Kind::Certs => {
            "Signing keys are generated by the server; rotate them with the management API."
        }
        _ => "",
    };
    page::render(&ListPage {
        frame: admin.frame(kind.title(), kind.path()),
        headers,
        rows,
        note,
    })
}

/// What an edit page is about: the stored object, found by the path's name.
enum Stored {
    Application(Application),
    Provider(Provider),
    Organization(Organization),
    Cert(Cert),
}

async fn load(
    console: &Console,
    caller: &Principal,
    kind: Kind,
    name: &str,
) -> Result<Stored, Error> {
    let iam = &console.iam;
    let missing = || Error::NotFound(format!("There is no {} {name}.", kind.singular()));
    Ok(match kind {
        Kind::Applications => Stored::Application(
            iam.admin_get_application(caller, name)
                .await?
                .ok_or_else(missing)?,
        ),
        Kind::Providers => {
            let (owner, pname) = name.split_once('/').ok_or_else(missing)?;
            Stored::Provider(
                iam.admin_get_provider(caller, owner, pname)
                    .await?
                    .ok_or_else(missing)?,
            )
        }
        Kind::Organizations => Stored::Organization(
            iam.admin_get_organization(caller, name)
                .await?
                .ok_or_else(missing)?,
        ),
        Kind::Certs => Stored::Cert(
            iam.admin_get_cert(caller, name)
                .await?
                .ok_or_else(missing)?,
        ),
    })
}

fn fields_of(stored: &Stored) -> Vec<FormField> {
    match stored {
        Stored::Application(a) => vec![
            FormField::new("name", "Name", a.name.to_string()).kind("readonly"),
            FormField::new("organization", "Organization", a.organization.to_string())
                .kind("readonly"),
            FormField::new("clientId", "Client id", a.client_id.to_string()).kind("readonly"),
            FormField::new("displayName", "Display name", a.display_name.to_string()),
            FormField::new(
                "clientSecret",
                "Client secret",
                masked(!a.client_secret.is_empty()),
            )
            .kind("password")
            .hint("Shown as ***. Leave it to keep the stored secret, or type a new one."),
            FormField::new(
                "enableSignUp",
                "New users may sign up",
                a.enable_sign_up.to_string(),
            )
            .kind("checkbox"),
            FormField::new(
                "providers",
                "Providers",
                a.providers
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .hint("Provider names, comma-separated, in the order sign-in tries them."),
            FormField::new("grantTypes", "Grant types", a.grant_types.join(", "))
                .hint("Comma-separated."),
            FormField::new(
                "expireInHours",
                "Access token lifetime (hours)",
                a.expire_in_hours.to_string(),
            )
            .kind("number"),
            FormField::new(
                "refreshExpireInHours",
                "Refresh token lifetime (hours)",
                a.refresh_expire_in_hours.to_string(),
            )
            .kind("number"),
            FormField::new(
                "maxSessionsPerUser",
                "Sessions per user (0: unlimited)",
                a.max_sessions_per_user.to_string(),
            )
            .kind("number"),
        ],
        Stored::Provider(p) => vec![
            FormField::new("name", "Owner/name", format!("{}/{}", p.owner, p.name))
                .kind("readonly"),
            FormField::new(
                "type",
                "Type",
                format!("{} {}", p.provider_type, p.sub_type)
                    .trim()
                    .to_owned(),
            )
            .kind("readonly"),
            FormField::new("displayName", "Display name", p.display_name.to_string()),
            FormField::new("clientId", "APPID / client id", p.client_id.clone()),
            FormField::new(
                "clientSecret",
                "APPSECRET / client secret",
                masked(!p.client_secret.is_empty()),
            )
            .kind("password")
            .hint("Shown as ***. Leave it to keep the stored secret, or paste a new one."),
        ],
        Stored::Organization(o) => vec![
            FormField::new("name", "Name", o.name.to_string()).kind("readonly"),
            FormField::new("displayName", "Display name", o.display_name.to_string()),
            FormField::new(
                "defaultAvatar",
                "Default avatar URL",
                o.default_avatar.to_string(),
            )
            .hint("An http(s) URL, or empty."),
        ],
        Stored::Cert(c) => vec![
            FormField::new("name", "Name", c.name.to_string()).kind("readonly"),
            FormField::new(
                "algorithm",
                "Algorithm",
                format!("{} ({} bits)", c.crypto_algorithm.as_str(), c.bit_size),
            )
            .kind("readonly"),
            FormField::new("displayName", "Display name", c.display_name.to_string()),
            FormField::new("privateKey", "Private key", MASK).kind("readonly"),
        ],
    }
}

/// Saves a form through the management use cases; `Ok(true)` when something changed.
async fn save_form(
    console: &Console,
    caller: &Principal,
    stored: Stored,
    f: &Fields,
) -> Result<bool, Error> {
    let iam = &console.iam;
    let number = |name: &'static str| -> Result<Option<f64>, Error> {
        let v = field(f, name).trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<f64>()
            .map(Some)
            .map_err(|_| Error::Invalid(format!("{name}: {v:?} is not a number")))
    };
    let listed = |name: &str| -> Vec<String> {
        field(f, name)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match stored {
        Stored::Application(a) => {
            let sessions = number("maxSessionsPerUser")?;
            if sessions.is_some_and(|n| n.fract() != 0.0) {
                return Err(Error::invalid("maxSessionsPerUser: must be a whole number"));
            }
            let input = ApplicationInput {
                name: a.name.to_string(),
                display_name: field(f, "displayName").trim().to_owned(),
                organization: a.organization.to_string(),
                client_id: a.client_id.to_string(),
                client_secret: field(f, "clientSecret").trim().to_owned(),
                cert: a.cert.as_deref().unwrap_or_default().to_owned(),
                enable_sign_up: field(f, "enableSignUp") == "true",
                providers: listed("providers")
                    .into_iter()
                    .map(|name| {
                        let kept = a.providers.iter().find(|p| p.name == name);
                        ProviderItemInput {
                            owner: kept.map(|p| p.owner.clone()).unwrap_or_default(),
                            can_sign_up: kept.map(|p| p.can_sign_up),
                            can_sign_in: kept.map(|p| p.can_sign_in),
                            name,
                        }
                    })
                    .collect(),
                grant_types: listed("grantTypes"),
                token_format: a.token_format.clone(),
                expire_in_hours: number("expireInHours")?,
                refresh_expire_in_hours: number("refreshExpireInHours")?,
                max_sessions_per_user: sessions.map(|n| n as i64),
                extra: a.extra.clone(),
            };
            iam.admin_update_application(caller, a.name.as_str(), input)
                .await
        }
        Stored::Provider(p) => {
            let input = ProviderInput {
                owner: p.owner.to_string(),
                name: p.name.to_string(),
                display_name: field(f, "displayName").trim().to_owned(),
                category: p.category.clone(),
                provider_type: p.provider_type.clone(),
                sub_type: p.sub_type.clone(),
                client_id: field(f, "clientId").trim().to_owned(),
                client_secret: field(f, "clientSecret").trim().to_owned(),
                extra: p.extra.clone(),
            };
            iam.admin_update_provider(caller, p.owner.as_str(), p.name.as_str(), input)
                .await
        }
        Stored::Organization(o) => {
            let input = OrganizationInput {
                name: o.name.to_string(),
                display_name: field(f, "displayName").trim().to_owned(),
                default_avatar: field(f, "defaultAvatar").trim().to_owned(),
                extra: o.extra.clone(),
            };
            iam.admin_update_organization(caller, o.name.as_str(), input)
                .await
        }
        Stored::Cert(c) => {
            let input = CertInput {
                name: c.name.to_string(),
                display_name: field(f, "displayName").trim().to_owned(),
                cert_type: c.cert_type.clone(),
                crypto_algorithm: c.crypto_algorithm.as_str().to_owned(),
                bit_size: Some(i64::from(c.bit_size)),
                certificate: c.certificate.clone(),
                private_key: MASK.to_owned(),
                extra: c.extra.clone(),
            };
            iam.admin_update_cert(caller, c.name.as_str(), input).await
        }
    }
}

fn edit_page(
    admin: &Admin,
    kind: Kind,
    name: &str,
    mut fields: Vec<FormField>,
    error: Option<&Error>,
    notice: Option<String>,
) -> Response {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let mut form_error = None;
    if let Some(e) = error {
        match page::split_error(e, &names) {
            (Some(name), reason) => {
                if let Some(f) = fields.iter_mut().find(|f| f.name == name) {
                    f.error = Some(reason);
                }
            }
            (None, message) => form_error = Some(message),
        }
    }
    let status = error.map(page::status_of).unwrap_or(StatusCode::OK);
    page::render_status(
        &EditPage {
            frame: admin.frame(format!("{} {name}", capital(kind.singular())), kind.path()),
            action: format!("/console/{}/{name}", kind.path()),
            back: format!("/console/{}", kind.path()),
            back_label: kind.title(),
            fields,
            form_error,
            notice,
        },
        status,
    )
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[handler]
pub async fn edit_page_handler(
    req: &Request,
    admin: Admin,
    Path((kind, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let Some(kind) = Kind::parse(&kind) else {
        return page::message_page(StatusCode::NOT_FOUND, "There is no such page.");
    };
    let stored = match load(console, &admin.principal, kind, &name).await {
        Ok(s) => s,
        Err(e) => return page::failure(&e),
    };
    let notice = (field(&page::query_fields(req), "done") == "saved").then(|| "Saved.".to_owned());
    edit_page(&admin, kind, &name, fields_of(&stored), None, notice)
}

#[handler]
pub async fn save(
    req: &Request,
    Posted { admin, form }: Posted,
    Path((kind, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let Some(kind) = Kind::parse(&kind) else {
        return page::message_page(StatusCode::NOT_FOUND, "There is no such page.");
    };
    let stored = match load(console, &admin.principal, kind, &name).await {
        Ok(s) => s,
        Err(e) => return page::failure(&e),
    };
    let mut fields = fields_of(&stored);
    let result = save_form(console, &admin.principal, stored, &form).await;
    let action = format!("update-{}", kind.singular());
    page::record(console, &admin, req, &action, result.as_ref().map(|_| ()));
    match result {
        Ok(_) => see_other(&format!("/console/{}/{name}?done=saved", kind.path())),
        Err(e) => {
            // Show what was sent, never a secret.
            for f in fields.iter_mut().filter(|f| f.kind != "readonly") {
                f.value = match f.kind {
                    "password" => MASK.to_owned(),
                    "checkbox" => (field(&form, f.name) == "true").to_string(),
                    _ => field(&form, f.name).to_owned(),
                };
            }
            edit_page(&admin, kind, &name, fields, Some(&e), None)
        }
    }
}
