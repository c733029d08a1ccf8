//! What every page shares: who is signed in, the form token, the frame around a page, headers,
//! form reading and how a use case's error reaches the field it is about.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use iam_domain::Error;
use iam_domain::model::User;
use iam_domain::records::RequestMeta;
use iam_domain::service::Principal;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Request, Response};

use crate::{Console, set_header};

/// The console's Content-Security-Policy: its own script and stylesheet, nothing inline, no
/// framing, forms only to itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub const SESSION_COOKIE: &str = "iam_console";
pub const LOGIN_COOKIE: &str = "iam_console_login";

/// Headers of every console answer: never cached (pages hold personal data), never sniffed,
/// never framed.
pub fn harden(mut resp: Response) -> Response {
    let is_asset = resp
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("immutable"));
    if !is_asset {
        set_header(&mut resp, header::CACHE_CONTROL, "no-store");
    }
    set_header(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_header(&mut resp, header::CONTENT_SECURITY_POLICY, CSP);
    set_header(&mut resp, header::X_FRAME_OPTIONS, "DENY");
    set_header(&mut resp, header::REFERRER_POLICY, "same-origin");
    resp
}

/// The frame around every signed-in page.
pub struct Frame {
    pub title: String,
    /// The nav entry to mark as current.
    pub active: &'static str,
    pub user: String,
    /// Global administrators see configuration pages; an organization's see their own users.
    pub global: bool,
    pub organization: String,
    pub csrf: String,
}

/// A signed-in administrator, as a page sees them.
pub struct Admin {
    pub user: User,
    pub principal: Principal,
    pub token: String,
    pub csrf: String,
    pub sid: String,
}

impl Admin {
    pub fn frame(&self, title: impl Into<String>, active: &'static str) -> Frame {
        Frame {
            title: title.into(),
            active,
            user: format!("{}/{}", self.user.owner, self.user.name),
            global: self.principal.is_global_admin(),
            organization: self.user.owner.to_string(),
            csrf: self.csrf.clone(),
        }
    }

    /// Organizations this administrator may look at: `None` for all.
    pub fn scope(&self) -> Option<String> {
        (!self.principal.is_global_admin()).then(|| self.user.owner.to_string())
    }
}

pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn set_cookie(
    resp: &mut Response,
    name: &str,
    value: &str,
    secure: bool,
    max_age: Option<i64>,
) {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = poem::http::HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Where the request came from, for records and sessions.
pub fn meta(req: &Request) -> RequestMeta {
    RequestMeta {
        client_ip: client_ip(req).map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: req
            .header(header::USER_AGENT)
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect(),
        method: req.method().to_string(),
        request_uri: req.uri().path().to_owned(),
    }
}

/// The client's address: the peer's, or (from a trusted proxy) the one it forwards.
pub fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    let Some(console) = req.data::<Arc<Console>>() else {
        return Some(peer);
    };
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(
        console
            .trusted_proxies
            .client(peer, &forwarded, req.header("x-real-ip")),
    )
}

pub fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

/// The administrator this request's cookie names, or the way to the sign-in page.
pub async fn admin(console: &Console, req: &Request) -> Result<Admin, Response> {
    let to_login = || see_other("/console/login");
    let Some(token) = cookie(req, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return Err(to_login());
    };
    let issuer = console.origin.clone();
    match console.iam.console_principal(&token, Some(&issuer)).await {
        Ok((user, sid)) => Ok(Admin {
            principal: Principal::User(user.clone()),
            user,
            csrf: console.iam.form_token(&token),
            token,
            sid,
        }),
        Err(Error::Unavailable { message, .. }) => {
            Err(message_page(StatusCode::SERVICE_UNAVAILABLE, &message))
        }
        Err(_) => {
            let mut resp = to_login();
            crate::page::set_cookie(&mut resp, SESSION_COOKIE, "", console.secure(), Some(0));
            Err(resp)
        }
    }
}

/// The signed-in administrator, as an extractor: a handler that takes one is only reached with
/// a live console session; otherwise the answer is the way to the sign-in page.
impl<'a> poem::FromRequest<'a> for Admin {
    async fn from_request(req: &'a Request, _body: &mut poem::RequestBody) -> poem::Result<Self> {
        let console = console_of(req)?;
        admin(console, req)
            .await
            .map_err(poem::Error::from_response)
    }
}

/// A state-changing form of a signed-in administrator whose form token was checked (403
/// otherwise, with nothing done).
pub struct Posted {
    pub admin: Admin,
    pub form: Fields,
}

impl<'a> poem::FromRequest<'a> for Posted {
    async fn from_request(req: &'a Request, body: &mut poem::RequestBody) -> poem::Result<Self> {
        let admin = Admin::from_request(req, body).await?;
        let form = read_form(body.take()?).await;
        if let Some(refusal) = csrf_refusal(console_of(req)?, &admin, &form) {
            return Err(poem::Error::from_response(refusal));
        }
        Ok(Self { admin, form })
    }
}

fn console_of(req: &Request) -> poem::Result<&Arc<Console>> {
    req.data::<Arc<Console>>().ok_or_else(|| {
        poem::Error::from_string(
            "the console is not set up",
            StatusCode::INTERNAL_SERVER_ERROR,
        )
    })
}

/// A posted form, as fields.
pub type Fields = HashMap<String, String>;

pub fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.get(name).map(String::as_str).unwrap_or_default()
}

/// Reads an `application/x-www-form-urlencoded` body; anything else is an empty form.
pub async fn read_form(body: poem::Body) -> Fields {
    match body.into_bytes_limit(64 * 1024).await {
        Ok(bytes) => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map(|v| v.into_iter().collect())
            .unwrap_or_default(),
        Err(_) => Fields::new(),
    }
}

/// The refusal (403) of a state-changing request without this session's form token.
pub fn csrf_refusal(console: &Console, admin: &Admin, form: &Fields) -> Option<Response> {
    if console.iam.form_token_ok(&admin.token, field(form, "csrf")) {
        None
    } else {
        Some(message_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this console. Go back, reload the page and try again.",
        ))
    }
}

/// A use case's refusal as a status code, as the domain gives it (the API answers the same).
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error message split into the field it names (`field: reason`) and the reason, when the
/// field is one of `fields`; otherwise it belongs at the top of the form.
pub fn split_error(e: &Error, fields: &[&str]) -> (Option<String>, String) {
    let text = e.to_string();
    if let Some((f, reason)) = text.split_once(": ")
        && fields.contains(&f)
    {
        return (Some(f.to_owned()), reason.to_owned());
    }
    (None, text)
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

pub fn message_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    render_status(&MessagePage { title, message }, status)
}

pub fn render(t: &impl Template) -> Response {
    render_status(t, StatusCode::OK)
}

pub fn render_status(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response()
        }
    }
}

/// A use case failed: its message on a page with its status.
pub fn failure(e: &Error) -> Response {
    message_page(status_of(e), &e.to_string())
}

/// Records a console write like the API's (SPEC §10).
pub fn record(
    console: &Console,
    admin: &Admin,
    req: &Request,
    action: &str,
    result: Result<(), &Error>,
) {
    let (status, error) = match result {
        Ok(()) => (200, None),
        Err(e) => (status_of(e).as_u16(), Some(e.to_string())),
    };
    console.iam.record_request(
        Some(&admin.principal),
        &meta(req),
        action,
        status,
        error.as_deref(),
    );
}

/// Page numbers for a list: the pages to link around the current one.
pub struct Pager {
    pub page: u64,
    pub pages: u64,
    pub total: u64,
    /// The query string without `p`, to which `&p=N` is appended.
    pub query: String,
}

impl Pager {
    pub fn new(page: u64, size: u64, total: u64, query: String) -> Self {
        Self {
            page,
            pages: total.div_ceil(size.max(1)).max(1),
            total,
            query,
        }
    }

    /// The page before; from past the end (a link kept while the list shrank), the last page.
    pub fn prev(&self) -> Option<u64> {
        (self.page > 1).then(|| (self.page - 1).min(self.pages))
    }

    /// A page after the last one: there are rows, just not this far.
    pub fn past_end(&self) -> bool {
        self.total > 0 && self.page > self.pages
    }

    pub fn next(&self) -> Option<u64> {
        (self.page < self.pages).then(|| self.page + 1)
    }
}

/// `?p=` as a page number (1 when absent or nonsense).
pub fn page_number(q: &Fields) -> u64 {
    field(q, "p")
        .parse::<u64>()
        .ok()
        .filter(|p| *p >= 1)
        .unwrap_or(1)
        .min(1_000_000)
}

pub fn query_fields(req: &Request) -> Fields {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or_default())
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// A query string of the given pairs, blank ones left out.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.as_ref().map(when).unwrap_or_else(|| "never".into())
}

#[cfg(test)]
mod tests {
    use super::Pager;

    #[test]
    fn a_page_past_the_end_leads_back_to_the_last() {
        let p = Pager::new(5, 20, 30, String::new());
        assert_eq!((p.pages, p.prev(), p.next()), (2, Some(2), None));
        assert!(p.past_end());
        let inside = Pager::new(2, 20, 30, String::new());
        assert_eq!((inside.prev(), inside.next()), (Some(1), None));
        assert!(!inside.past_end());
        // Nothing at all is not "past the end": there is no page to go back to.
        assert!(!Pager::new(1, 20, 0, String::new()).past_end());
    }
}
