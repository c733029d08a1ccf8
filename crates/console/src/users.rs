//! Users: a paged, searchable list and one user's page (profile, forbid or allow, linked
//! identities, sessions, recent records).

use std::sync::Arc;

use askama::Template;
use iam_domain::Error;
use iam_domain::console::UserFilter;
use iam_domain::model::{Record, Session, User, UserSearch};
use iam_domain::records::RecordParams;
use iam_domain::users::UserPatch;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use crate::Console;
use crate::page::{
    self, Admin, Fields, Frame, Pager, Posted, field, page_number, query_fields, query_string,
    see_other, when, when_opt,
};

const PAGE_SIZE: u64 = 20;

/// What the search box can search by, as the select offers it.
const SEARCH_BY: [(&str, &str); 5] = [
    ("name", "Name"),
    ("displayName", "Display name"),
    ("phone", "Phone"),
    ("openid", "WeChat openid"),
    ("unionid", "WeChat unionid"),
];

pub struct UserRow {
    pub owner: String,
    pub name: String,
    pub display_name: String,
    pub phone: String,
    pub forbidden: bool,
    pub admin: bool,
    pub created: String,
    pub last_signin: String,
    pub href: String,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        Self {
            owner: u.owner.to_string(),
            name: u.name.to_string(),
            display_name: u.display_name.to_string(),
            phone: mask_phone(&u.phone),
            forbidden: u.is_forbidden,
            admin: u.is_admin,
            created: when(&u.created_time),
            last_signin: when_opt(&u.last_signin_time),
            href: format!("/console/users/{}/{}", u.owner, u.name),
        }
    }
}

/// A phone number in a list shows its last four digits only.
fn mask_phone(p: &str) -> String {
    let n = p.chars().count();
    if n <= 4 {
        return p.to_owned();
    }
    format!(
        "{}{}",
        "•".repeat(n - 4),
        p.chars().skip(n - 4).collect::<String>()
    )
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    frame: Frame,
    rows: Vec<UserRow>,
    pager: Pager,
    q: String,
    by: String,
    forbidden: String,
    organization: String,
    organizations: Vec<String>,
    search_by: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

#[handler]
pub async fn list(req: &Request, admin: Admin, Data(console): Data<&Arc<Console>>) -> Response {
    let q = query_fields(req);
    let page = page_number(&q);
    let text = field(&q, "q").trim().to_owned();
    let by = match field(&q, "by") {
        "" => "name",
        other => other,
    }
    .to_owned();
    let forbidden = field(&q, "forbidden").to_owned();
    // One organization at a time (as Casdoor's console lists them): every list and search is
    // then served by an index of that organization's users, at any size.
    let organizations = match admin.scope() {
        Some(own) => vec![own],
        None => match console.iam.admin_list_organizations(&admin.principal).await {
            Ok(v) => v.into_iter().map(|o| o.name.to_string()).collect(),
            Err(e) => return page::failure(&e),
        },
    };
    let organization = match (admin.scope(), field(&q, "organization").trim()) {
        (Some(own), _) => own,
        (None, "") => organizations
            .iter()
            .find(|o| o.as_str() != iam_domain::model::BUILT_IN_ORG)
            .or(organizations.first())
            .cloned()
            .unwrap_or_default(),
        (None, asked) => asked.to_owned(),
    };
    let mut error = None;
    let search = match UserSearch::parse(&by) {
        Some(s) => (!text.is_empty()).then(|| (s, text.clone())),
        None => {
            error = Some(format!(
                "Cannot search by {by:?}: the list below is not searched."
            ));
            None
        }
    };
    let filter = UserFilter {
        organization: (!organization.is_empty()).then(|| organization.clone()),
        search,
        forbidden: match forbidden.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        offset: (page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
    };
    let (users, total) = match console.iam.console_users(&admin.principal, &filter).await {
        Ok(r) => r,
        Err(e) => return page::failure(&e),
    };
    let query = query_string(&[
        ("q", &text),
        ("by", &by),
        ("forbidden", &forbidden),
        (
            "organization",
            if admin.scope().is_some() {
                ""
            } else {
                &organization
            },
        ),
    ]);
    let t = UsersPage {
        frame: admin.frame("Users", "users"),
        rows: users.iter().map(UserRow::from).collect(),
        pager: Pager::new(page, PAGE_SIZE, total, query),
        q: text,
        by,
        forbidden,
        organization,
        organizations,
        search_by: SEARCH_BY.to_vec(),
        error,
    };
    // A search the console cannot make is the caller's mistake: said on the page, and a 400.
    let status = match t.error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    page::render_status(&t, status)
}

pub struct SessionRow {
    pub id: String,
    pub application: String,
    pub created: String,
    pub last_active: String,
    pub expires: String,
    pub client_ip: String,
    pub user_agent: String,
    pub current: bool,
}

pub struct IdentityRow {
    pub provider: String,
    pub appid: String,
    pub openid: String,
    pub unionid: String,
    pub created: String,
}

pub struct RecordRow {
    pub time: String,
    pub action: String,
    pub response: String,
    pub ok: bool,
    pub client_ip: String,
    pub object: String,
}

impl From<&Record> for RecordRow {
    fn from(r: &Record) -> Self {
        Self {
            time: r.created_time.format("%Y-%m-%d %H:%M:%S").to_string(),
            action: r.action.clone(),
            ok: r.response == "ok",
            response: r.response.clone(),
            client_ip: r.client_ip.clone(),
            object: r.object.clone(),
        }
    }
}

/// The profile fields the console edits, with their labels.
const PROFILE: [(&str, &str); 5] = [
    ("displayName", "Display name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("countryCode", "Country code (CN, US, …)"),
    ("avatar", "Avatar URL"),
];

pub struct ProfileField {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    frame: Frame,
    base: String,
    user: UserRow,
    created: String,
    /// Failed passwords in a row, and when the last was.
    failures: u32,
    last_failure: String,
    profile: Vec<ProfileField>,
    form_error: Option<String>,
    notice: Option<String>,
    identities: Vec<IdentityRow>,
    sessions: Vec<SessionRow>,
    records: Vec<RecordRow>,
    records_href: String,
}

fn profile_value(u: &User, name: &str) -> String {
    match name {
        "displayName" => u.display_name.to_string(),
        "email" => u.email.clone(),
        "phone" => u.phone.clone(),
        "countryCode" => u.country_code.clone(),
        "avatar" => u.avatar.to_string(),
        _ => String::new(),
    }
}

fn session_row(s: &Session, current: &str) -> SessionRow {
    SessionRow {
        id: s.id.clone(),
        application: s.application.clone(),
        created: when(&s.created_time),
        last_active: when(&s.last_active_time),
        expires: when(&s.expires_time),
        client_ip: s.client_ip.clone(),
        user_agent: s.user_agent.chars().take(60).collect(),
        current: s.id == current,
    }
}

/// The user's page; `sent` is a refused profile form to show again with its error.
async fn user_page(
    console: &Console,
    admin: &Admin,
    owner: &str,
    name: &str,
    sent: Option<(&Fields, &Error)>,
    notice: Option<String>,
) -> Response {
    let id = format!("{owner}/{name}");
    let user = match console.iam.get_user(&admin.principal, &id).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return page::message_page(StatusCode::NOT_FOUND, &format!("There is no user {id}."));
        }
        Err(e) => return page::failure(&e),
    };
    let identities = match console
        .iam
        .user_identities(&admin.principal, Some(&id))
        .await
    {
        Ok(v) => v,
        Err(e) => return page::failure(&e),
    };
    let sessions = match console.iam.user_sessions(&admin.principal, &id).await {
        Ok(v) => v,
        Err(e) => return page::failure(&e),
    };
    let failures = match console
        .iam
        .user_password_failures(&admin.principal, &user)
        .await
    {
        Ok(f) => f,
        Err(e) => return page::failure(&e),
    };
    let params = RecordParams {
        owner: Some(user.owner.to_string()),
        user: Some(user.name.to_string()),
        p: Some("1".into()),
        page_size: Some("10".into()),
        ..RecordParams::default()
    };
    let records = match console.iam.get_records(&admin.principal, &params).await {
        Ok((r, _)) => r,
        Err(e) => return page::failure(&e),
    };
    let names: Vec<&str> = PROFILE.iter().map(|(n, _)| *n).collect();
    let (err_field, err_text) = match sent {
        Some((_, e)) => {
            let (f, m) = page::split_error(e, &names);
            (f, Some(m))
        }
        None => (None, None),
    };
    let profile = PROFILE
        .iter()
        .map(|(n, label)| ProfileField {
            name: n,
            label,
            value: match sent {
                Some((f, _)) => field(f, n).to_owned(),
                None => profile_value(&user, n),
            },
            error: (err_field.as_deref() == Some(*n))
                .then(|| err_text.clone())
                .flatten(),
        })
        .collect();
    let form_error = match (&err_field, err_text) {
        (None, Some(m)) => Some(m),
        _ => None,
    };
    let status = sent
        .map(|(_, e)| page::status_of(e))
        .unwrap_or(StatusCode::OK);
    let t = UserPage {
        frame: admin.frame(format!("User {id}"), "users"),
        base: format!("/console/users/{owner}/{name}"),
        created: when(&user.created_time),
        failures: failures.wrong_times,
        last_failure: when_opt(&failures.last_wrong_time),
        user: UserRow::from(&user),
        profile,
        form_error,
        notice,
        identities: identities
            .iter()
            .map(|v| IdentityRow {
                provider: v.provider.clone(),
                appid: v.identity.appid.to_string(),
                openid: v.identity.openid.to_string(),
                unionid: v.identity.unionid.as_deref().unwrap_or_default().to_owned(),
                created: when(&v.identity.created_time),
            })
            .collect(),
        sessions: sessions
            .iter()
            .map(|s| session_row(s, &admin.sid))
            .collect(),
        records: records.iter().map(RecordRow::from).collect(),
        records_href: format!(
            "/console/records?{}",
            query_string(&[
                ("user", user.name.as_str()),
                ("organization", user.owner.as_str())
            ])
        ),
    };
    page::render_status(&t, status)
}

#[handler]
pub async fn detail(
    req: &Request,
    admin: Admin,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let notice = match field(&query_fields(req), "done") {
        "saved" => Some("Saved.".to_owned()),
        "forbidden" => Some("The user is forbidden: every session of theirs has ended.".to_owned()),
        "allowed" => Some("The user may sign in again.".to_owned()),
        "unbound" => Some("The identity was unbound.".to_owned()),
        "revoked" => Some("The session was revoked: its tokens are refused now.".to_owned()),
        "revoked-all" => Some("Every session of the user was revoked.".to_owned()),
        "unlocked" => {
            Some("The failed passwords were forgotten: the account is unlocked.".to_owned())
        }
        _ => None,
    };
    user_page(console, &admin, &owner, &name, None, notice).await
}

/// Records what a form did; success goes back to the user's page saying `done`, a refused
/// profile shows the form again with its error beside the field.
async fn finish(
    req: &Request,
    console: &Console,
    Posted { admin, form }: &Posted,
    (owner, name): (&str, &str),
    (action, done): (&str, &str),
    result: Result<(), Error>,
) -> Response {
    page::record(console, admin, req, action, result.as_ref().map(|_| ()));
    match result {
        Ok(()) => see_other(&format!("/console/users/{owner}/{name}?done={done}")),
        Err(e @ (Error::Invalid(_) | Error::Conflict(_))) if done == "saved" => {
            user_page(console, admin, owner, name, Some((form, &e)), None).await
        }
        Err(e) => page::failure(&e),
    }
}

#[handler]
pub async fn edit(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let f = &posted.form;
    let text = |n: &str| Some(field(f, n).trim().to_owned());
    let patch = UserPatch {
        display_name: text("displayName"),
        email: text("email"),
        phone: text("phone"),
        country_code: text("countryCode"),
        avatar: text("avatar"),
        ..UserPatch::default()
    };
    let id = format!("{owner}/{name}");
    let result = console
        .iam
        .update_user(&posted.admin.principal, Some(&id), None, patch, None)
        .await
        .map(|_| ());
    finish(
        req,
        console,
        &posted,
        (&owner, &name),
        ("update-user", "saved"),
        result,
    )
    .await
}

/// Writes one field of the user (`field`, its Casdoor name, is what the patch changes) and
/// tells how it went as `done`.
async fn patch_user(
    req: &Request,
    posted: Posted,
    console: &Console,
    (owner, name): (&str, &str),
    (patch, field, done): (UserPatch, &str, &str),
) -> Response {
    let id = format!("{owner}/{name}");
    let result = console
        .iam
        .update_user(&posted.admin.principal, Some(&id), None, patch, Some(field))
        .await
        .map(|_| ());
    finish(
        req,
        console,
        &posted,
        (owner, name),
        ("update-user", done),
        result,
    )
    .await
}

/// Forbids the user; forbidding ends every session of theirs.
#[handler]
pub async fn forbid(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let patch = UserPatch {
        is_forbidden: Some(true),
        ..UserPatch::default()
    };
    let change = (patch, "isForbidden", "forbidden");
    patch_user(req, posted, console, (&owner, &name), change).await
}

#[handler]
pub async fn allow(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let patch = UserPatch {
        is_forbidden: Some(false),
        ..UserPatch::default()
    };
    let change = (patch, "isForbidden", "allowed");
    patch_user(req, posted, console, (&owner, &name), change).await
}

/// Forgets the failed passwords: a locked account may sign in again.
#[handler]
pub async fn unlock(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let patch = UserPatch {
        signin_wrong_times: Some(0),
        ..UserPatch::default()
    };
    let change = (patch, "signinWrongTimes", "unlocked");
    patch_user(req, posted, console, (&owner, &name), change).await
}

#[handler]
pub async fn unbind(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let id = format!("{owner}/{name}");
    let result = console
        .iam
        .unbind_wechat(
            &posted.admin.principal,
            Some(&id),
            field(&posted.form, "appid"),
            Some(field(&posted.form, "openid")),
        )
        .await
        .map(|_| ());
    finish(
        req,
        console,
        &posted,
        (&owner, &name),
        ("unbind-wechat", "unbound"),
        result,
    )
    .await
}

#[handler]
pub async fn revoke(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let result = console
        .iam
        .revoke_session(&posted.admin.principal, field(&posted.form, "sid"))
        .await
        .map(|_| ());
    finish(
        req,
        console,
        &posted,
        (&owner, &name),
        ("revoke-session", "revoked"),
        result,
    )
    .await
}

#[handler]
pub async fn revoke_all(
    req: &Request,
    posted: Posted,
    Path((owner, name)): Path<(String, String)>,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let id = format!("{owner}/{name}");
    let result = console
        .iam
        .revoke_user_sessions(&posted.admin.principal, &id)
        .await
        .map(|_| ());
    finish(
        req,
        console,
        &posted,
        (&owner, &name),
        ("revoke-user-sessions", "revoked-all"),
        result,
    )
    .await
}
