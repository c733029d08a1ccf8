//! The admin console (SPEC §11): HTML rendered on the server from askama templates compiled into
//! the binary, one vendored htmx file and one stylesheet. A sibling of the API over the same use
//! cases: every page calls the domain's services, never the store and never HTTP to itself.
//!
//! - The session cookie holds the access token of a §9 session of `app-built-in` (`HttpOnly`,
//!   `SameSite=Strict`, `Secure` when the origin is https): revoking it signs the console out.
//! - Every state-changing form carries a token derived from that cookie; a POST without it is
//!   refused with 403. The sign-in form carries one bound to a short-lived pre-sign-in cookie.
//! - Every page is usable without JavaScript (forms post and redirect); htmx only boosts links
//!   and forms. The Content-Security-Policy allows no inline script or style.

mod auth;
mod chart;
mod connect;
mod dashboard;
mod objects;
mod page;
mod records;
mod users;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use iam_domain::service::Iam;
use poem::http::{HeaderValue, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler, post};

pub use page::CSP;

/// What the console's pages reach.
pub struct Console {
    iam: Iam,
    /// The issuer and public URL: the configured `origin` (in dev, `http://localhost:<port>`
    /// when none is configured); never a request's Host.
    origin: String,
    /// Failed sign-ins per client address.
    login_limit: DefaultKeyedRateLimiter<IpAddr>,
    /// Whose `X-Forwarded-For` is believed.
    trusted_proxies: iam_domain::network::TrustedProxies,
}

impl Console {
    /// `login_failures_per_minute`: how many failed console sign-ins one address may make a
    /// minute before it is told to wait.
    pub fn new(
        iam: Iam,
        origin: String,
        login_failures_per_minute: u32,
        trusted_proxies: iam_domain::network::TrustedProxies,
    ) -> Arc<Self> {
        let per_minute =
            NonZeroU32::new(login_failures_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            iam,
            origin,
            login_limit: RateLimiter::keyed(Quota::per_minute(per_minute)),
            trusted_proxies,
        })
    }

    /// Cookies are `Secure` when the console is served over https.
    fn secure(&self) -> bool {
        self.origin.starts_with("https://")
    }
}

const HTMX: &[u8] = include_bytes!("../static/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../static/console.css");
/// The file names carry the version, so they are cached for a year.
pub const HTMX_PATH: &str = "/console/static/htmx-2.0.11.min.js";
pub const CSS_PATH: &str = "/console/static/console-2.css";

#[handler]
fn htmx() -> Response {
    asset(HTMX, "text/javascript; charset=utf-8")
}

#[handler]
fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .body(body)
}

/// Every page of the console, to be nested at `/console`.
pub fn routes(console: Arc<Console>) -> impl Endpoint {
    Route::new()
        .at("/", get(dashboard::show))
        .at("/login", get(auth::login_page).post(auth::login))
        .at("/logout", post(auth::logout))
        .at("/connect", get(connect::show).post(connect::submit))
        .at("/connect/test", post(connect::test))
        .at("/users", get(users::list))
        .at("/users/:owner/:name", get(users::detail).post(users::edit))
        .at("/users/:owner/:name/forbid", post(users::forbid))
        .at("/users/:owner/:name/allow", post(users::allow))
        .at("/users/:owner/:name/unlock", post(users::unlock))
        .at("/users/:owner/:name/unbind", post(users::unbind))
        .at("/users/:owner/:name/revoke", post(users::revoke))
        .at("/users/:owner/:name/revoke-all", post(users::revoke_all))
        .at("/records", get(records::list))
        .at("/:kind", get(objects::list))
        .at(
            "/:kind/*name",
            get(objects::edit_page_handler).post(objects::save),
        )
        .at("/static/htmx-2.0.11.min.js", get(htmx))
        .at("/static/console-2.css", get(css))
        .data(console)
        .around(|ep, req| async move {
            let resp = match ep.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            Ok::<_, poem::Error>(page::harden(resp))
        })
}

/// `GET /` leads to the console; `/favicon.ico`, which browsers ask for on every page (Swagger
/// UI's too), is an empty answer rather than a 404; everything else goes on.
pub async fn root_redirect<E: Endpoint>(ep: Arc<E>, req: poem::Request) -> poem::Result<Response> {
    if req.method() == poem::http::Method::GET {
        match req.uri().path() {
            "/" => return Ok(page::see_other("/console/")),
            "/favicon.ico" => return Ok(poem::http::StatusCode::NO_CONTENT.into_response()),
            _ => {}
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

fn set_header(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
