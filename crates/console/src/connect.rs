//! "Connect a mini program": one form creates the organization (when new), the WeChat provider
//! and the application in one transaction, then shows the client id and the code to paste. "Test
//! WeChat credentials" asks WeChat for a `stable_token` and says what a refusal means.

use std::sync::Arc;

use askama::Template;
use iam_domain::console::ConnectMiniProgram;
use iam_domain::service::Principal;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::Console;
use crate::page::{self, Admin, Fields, Frame, Posted, field};

const FIELDS: [&str; 4] = ["organization", "appid", "appsecret", "application"];

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage {
    frame: Frame,
    organizations: Vec<String>,
    organization: String,
    appid: String,
    application: String,
    sign_up: bool,
    errors: Vec<(String, String)>,
    form_error: Option<String>,
    tested: Option<String>,
}

impl ConnectPage {
    pub fn error_of(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "connected.html")]
struct ConnectedPage {
    frame: Frame,
    application: String,
    organization: String,
    client_id: String,
    snippet: String,
}

async fn form_page(
    console: &Console,
    admin: &Admin,
    sent: Option<&Fields>,
    error: Option<&iam_domain::Error>,
    tested: Option<String>,
) -> Response {
    let organizations = match console.iam.admin_list_organizations(&admin.principal).await {
        Ok(v) => v.into_iter().map(|o| o.name.to_string()).collect(),
        Err(e) => return page::failure(&e),
    };
    let (errors, form_error) = match error {
        Some(e) => match page::split_error(e, &FIELDS) {
            (Some(f), m) => (vec![(f, m)], None),
            (None, m) => (Vec::new(), Some(m)),
        },
        None => (Vec::new(), None),
    };
    let status = error.map(page::status_of).unwrap_or(StatusCode::OK);
    let get = |n: &str| sent.map(|f| field(f, n).to_owned()).unwrap_or_default();
    let t = ConnectPage {
        frame: admin.frame("Connect a mini program", "connect"),
        organizations,
        organization: get("organization"),
        appid: get("appid"),
        application: get("application"),
        sign_up: sent.is_none_or(|f| field(f, "enableSignUp") == "true"),
        errors,
        form_error,
        tested,
    };
    page::render_status(&t, status)
}

#[handler]
pub async fn show(admin: Admin, Data(console): Data<&Arc<Console>>) -> Response {
    if !admin.principal.is_global_admin() {
        return page::failure(&iam_domain::Error::forbidden());
    }
    form_page(console, &admin, None, None, None).await
}

fn input(f: &Fields) -> ConnectMiniProgram {
    ConnectMiniProgram {
        organization: field(f, "organization").to_owned(),
        appid: field(f, "appid").to_owned(),
        appsecret: field(f, "appsecret").to_owned(),
        application: field(f, "application").to_owned(),
        enable_sign_up: field(f, "enableSignUp") == "true",
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    Posted { admin, form: f }: Posted,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    let result = console
        .iam
        .connect_mini_program(&admin.principal, &input(&f))
        .await;
    page::record(
        console,
        &admin,
        req,
        "connect-mini-program",
        result.as_ref().map(|_| ()),
    );
    match result {
        Ok(app) => {
            let origin = console.origin.clone();
            let t = ConnectedPage {
                frame: admin.frame("Mini program connected", "connect"),
                snippet: snippet(&origin, app.client_id.as_str()),
                application: app.name.to_string(),
                organization: app.organization.to_string(),
                client_id: app.client_id.to_string(),
            };
            page::render(&t)
        }
        Err(e) => form_page(console, &admin, Some(&f), Some(&e), None).await,
    }
}

/// The code a mini program pastes into its `app.js`.
fn snippet(origin: &str, client_id: &str) -> String {
    format!(
        r#"// app.js: sign in when the mini program starts
App({{
  onLaunch() {{
    wx.login({{
      success: res => {{
        wx.request({{
          url: "{origin}/oauth/token",
          method: "POST",
          header: {{ "content-type": "application/x-www-form-urlencoded" }},
          data: {{ tag: "wechat_miniprogram", client_id: "{client_id}", code: res.code }},
          success: res => {{ this.globalData.accessToken = res.data.access_token }},
        }})
      }},
    }})
  }},
  globalData: {{ accessToken: "" }},
}})
// Later calls: header: {{ Authorization: "Bearer " + getApp().globalData.accessToken }}"#
    )
}

#[handler]
pub async fn test(
    Posted { admin, form: f }: Posted,
    Data(console): Data<&Arc<Console>>,
) -> Response {
    if !matches!(admin.principal, Principal::User(_)) || !admin.principal.is_global_admin() {
        return page::failure(&iam_domain::Error::forbidden());
    }
    let result = console
        .iam
        .test_wechat_credentials(&admin.principal, field(&f, "appid"), field(&f, "appsecret"))
        .await;
    match result {
        Ok(()) => {
            let ok = format!(
                "WeChat accepted APPID {} and its APPSECRET: sign-in will work.",
                field(&f, "appid").trim()
            );
            form_page(console, &admin, Some(&f), None, Some(ok)).await
        }
        Err(e) => form_page(console, &admin, Some(&f), Some(&e), None).await,
    }
}
