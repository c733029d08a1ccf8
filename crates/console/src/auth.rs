//! Signing in and out. A console sign-in is a password sign-in of an administrator that opens a
//! §9 session; attempts are rate limited per address and every failure is recorded.

use std::sync::Arc;

use askama::Template;
use iam_domain::Error;
use iam_domain::console::ConsoleLogin;
use iam_domain::objects::random_hex;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use crate::Console;
use crate::page::{
    self, LOGIN_COOKIE, Posted, SESSION_COOKIE, cookie, field, read_form, render_status, see_other,
    set_cookie,
};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    csrf: String,
    username: String,
    error: Option<String>,
}

/// The sign-in form, with a fresh token bound to a pre-sign-in cookie (login CSRF).
fn form(console: &Console, username: &str, error: Option<String>, status: StatusCode) -> Response {
    let csrf = random_hex(32);
    let mut resp = render_status(
        &LoginPage {
            title: "Sign in",
            csrf: csrf.clone(),
            username: username.to_owned(),
            error,
        },
        status,
    );
    set_cookie(&mut resp, LOGIN_COOKIE, &csrf, console.secure(), Some(1800));
    resp
}

#[handler]
pub async fn login_page(req: &Request, Data(console): Data<&Arc<Console>>) -> Response {
    if page::admin(console, req).await.is_ok() {
        return see_other("/console/");
    }
    form(console, "", None, StatusCode::OK)
}

#[handler]
pub async fn login(req: &Request, body: Body, Data(console): Data<&Arc<Console>>) -> Response {
    let f = read_form(body).await;
    let expected = cookie(req, LOGIN_COOKIE).unwrap_or_default();
    let sent = field(&f, "csrf");
    if expected.is_empty() || !iam_domain::service::secrets_equal(&expected, sent) {
        return page::message_page(
            StatusCode::FORBIDDEN,
            "The sign-in form has expired or did not come from this console. Open the sign-in page again.",
        );
    }
    let username = field(&f, "username").trim().to_owned();
    let ip = page::client_ip(req);
    if let Some(ip) = ip
        && console.login_limit.check_key(&ip).is_err()
    {
        let mut resp = form(
            console,
            &username,
            Some("Too many failed sign-ins from this address. Wait a minute and try again.".into()),
            StatusCode::TOO_MANY_REQUESTS,
        );
        crate::set_header(&mut resp, poem::http::header::RETRY_AFTER, "60");
        return resp;
    }
    let meta = page::meta(req);
    let login = ConsoleLogin {
        username: username.clone(),
        password: field(&f, "password").to_owned(),
        client_ip: meta.client_ip,
        user_agent: meta.user_agent,
    };
    match console
        .iam
        .console_sign_in(&login, &console.origin.clone())
        .await
    {
        Ok(token) => {
            let mut resp = see_other("/console/");
            set_cookie(&mut resp, SESSION_COOKIE, &token, console.secure(), None);
            set_cookie(&mut resp, LOGIN_COOKIE, "", console.secure(), Some(0));
            resp
        }
        Err(e) => {
            let status = match &e {
                Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                Error::Invalid(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            };
            let message = match &e {
                Error::Unavailable { .. } => {
                    "The server cannot reach its database; try again in a moment.".to_owned()
                }
                other => capitalized(&other.to_string()),
            };
            form(console, &username, Some(message), status)
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// Ends this console session (it is a §9 session: revoked like any other).
#[handler]
pub async fn logout(
    req: &Request,
    Posted { admin, .. }: Posted,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let result = console
        .iam
        .revoke_session(&admin.principal, &admin.sid)
        .await;
    page::record(
        console,
        &admin,
        req,
        "console-logout",
        result.as_ref().map(|_| ()),
    );
    let mut resp = see_other("/console/login");
    set_cookie(&mut resp, SESSION_COOKIE, "", console.secure(), Some(0));
    resp
}
