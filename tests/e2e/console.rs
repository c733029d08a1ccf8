//! The admin console (SPEC §11) between real processes, read the way a browser reads it: pages
//! parsed with `scraper`, cookies kept by hand (so their attributes are checked), forms posted
//! as a browser posts them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iam_e2e::{ADMIN_PASSWORD, CONSOLE_APPID, CONSOLE_APPSECRET, Db};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use scraper::{Html, Selector};
use serde_json::json;

use crate::signin::Ctx;

/// A browser's view of the console: its cookies and the last page.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    /// Every Set-Cookie line seen, for their attributes.
    set_cookies: Vec<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    html: Html,
    text: String,
}

impl Page {
    fn select(&self, css: &str) -> Vec<String> {
        let sel = Selector::parse(css).unwrap_or_else(|e| panic!("selector {css:?}: {e:?}"));
        self.html
            .select(&sel)
            .map(|e| e.text().collect::<String>().trim().to_owned())
            .collect()
    }

    fn attr(&self, css: &str, attr: &str) -> Vec<String> {
        let sel = Selector::parse(css).unwrap_or_else(|e| panic!("selector {css:?}: {e:?}"));
        self.html
            .select(&sel)
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }

    /// The form token of the page's first form.
    fn csrf(&self) -> String {
        self.attr("input[name=csrf]", "value")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no form token on the page: {}", self.text))
    }

    fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            base: base.to_owned(),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie.is_empty() {
            req
        } else {
            req.header(COOKIE, cookie)
        };
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        for line in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            self.set_cookies.push(line.to_owned());
            if let Some((kv, _)) = line.split_once(';').or(Some((line, "")))
                && let Some((k, v)) = kv.split_once('=')
            {
                if v.is_empty() || line.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let text = resp.text().await?;
        Ok(Page {
            status,
            headers,
            html: Html::parse_document(&text),
            text,
        })
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Page> {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn sign_in(&mut self, username: &str, password: &str) -> anyhow::Result<Page> {
        let login = self.get("/console/login").await?;
        let csrf = login.csrf();
        self.post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

/// Waits for the audit queue to write what the page should show.
async fn eventually(
    b: &mut Browser,
    path: &str,
    check: impl Fn(&Page) -> bool,
) -> anyhow::Result<Page> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let p = b.get(path).await?;
        if check(&p) || Instant::now() > deadline {
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_administrator_connects_a_mini_program_and_manages_its_users() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[]).await?;
    let mut b = Browser::new(&c.iam.base);

    // `GET /` leads to the console, which asks for a sign-in.
    let root = b.get("/").await?;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/console/");
    assert_eq!(b.get("/console/").await?.location(), "/console/login");

    // A wrong password says so, on the sign-in page, with 401.
    let wrong = b.sign_in("admin", "not-the-password").await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.select("[role=alert]"),
        ["Wrong username or password."]
    );
    // A sign-in form that did not come from the console is refused.
    let forged = Browser::new(&c.iam.base)
        .post(
            "/console/login",
            &[
                ("csrf", "x"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A user who is not an administrator cannot sign in to the console.
    let bob = Browser::new(&c.iam.base)
        .sign_in("demo/bob", "bob-pw")
        .await?;
    assert_eq!(bob.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bob.select("[role=alert]"),
        ["Only administrators can sign in to the console."]
    );

    let signed_in = b.sign_in("admin", ADMIN_PASSWORD).await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );
    assert_eq!(signed_in.location(), "/console/");
    let session_cookie = b
        .set_cookies
        .iter()
        .find(|l| l.starts_with("iam_console=") && !l.contains("Max-Age=0"))
        .cloned()
        .unwrap_or_default();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(
            session_cookie.contains(attr),
            "{attr} missing: {session_cookie}"
        );
    }
    assert!(!session_cookie.contains("Secure"), "plain http: no Secure");

    // Every page: no caching, no sniffing, no framing, no inline script.
    let dash = b.get("/console/").await?;
    assert_eq!(dash.status, StatusCode::OK);
    assert_eq!(dash.header("cache-control"), "no-store");
    assert_eq!(dash.header("x-content-type-options"), "nosniff");
    let csp = dash.header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        dash.select("script:not([src])").is_empty(),
        "no inline script"
    );
    assert_eq!(
        dash.select("svg.chart").len(),
        3,
        "three charts drawn on the server"
    );

    // The API's answers: never sniffed; personal data never cached; its HTML page never framed
    // and sent compressed.
    let account = c.get("/api/get-account", "no-token").await?;
    assert_eq!(account.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        account.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let swagger = reqwest::Client::new()
        .get(c.iam.url("/swagger"))
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    let h = |k: &str| {
        swagger
            .headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(h("content-encoding"), "gzip");
    assert_eq!(h("x-content-type-options"), "nosniff");

    // A forged POST (no token, or another token) changes nothing.
    for token in ["", "0000"] {
        let f = b
            .post(
                "/console/connect",
                &[
                    ("csrf", token),
                    ("organization", "forged"),
                    ("appid", CONSOLE_APPID),
                    ("appsecret", CONSOLE_APPSECRET),
                    ("application", "forged-app"),
                ],
            )
            .await?;
        assert_eq!(f.status, StatusCode::FORBIDDEN);
    }
    assert!(
        !b.get("/console/applications")
            .await?
            .text
            .contains("forged-app")
    );

    // Connect: a bad APPID is named beside its field; nothing is written.
    let form = b.get("/console/connect").await?;
    let csrf = form.csrf();
    let bad = b
        .post(
            "/console/connect",
            &[
                ("csrf", &csrf),
                ("organization", "shop"),
                ("appid", "not-an-appid"),
                ("appsecret", CONSOLE_APPSECRET),
                ("application", "shop-mp"),
                ("enableSignUp", "true"),
            ],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.select("#appid-error").len(), 1, "{}", bad.text);
    assert!(bad.select("#appid-error")[0].contains("wx"));
    assert_eq!(bad.attr("#appid", "aria-invalid"), ["true"]);
    assert!(
        !b.get("/console/organizations")
            .await?
            .text
            .contains(">shop<")
    );

    // "Test WeChat credentials" in plain words: a wrong secret, an unknown APPID, then right.
    let test = |appid: &'static str, secret: &'static str| {
        vec![
            ("organization", "shop"),
            ("appid", appid),
            ("appsecret", secret),
            ("application", "shop-mp"),
        ]
    };
    let mut f = test(CONSOLE_APPID, "ffffffffffffffffffffffffffffffff");
    f.push(("csrf", &csrf));
    let wrong_secret = b.post("/console/connect/test", &f).await?;
    let said = wrong_secret.select("#appsecret-error").join(" ");
    assert!(
        said.contains("40125") && said.contains("APPSECRET"),
        "{said}"
    );
    let mut f = test("wx9999999999999999", CONSOLE_APPSECRET);
    f.push(("csrf", &csrf));
    let unknown = b.post("/console/connect/test", &f).await?;
    let said = unknown.select("#appsecret-error").join(" ");
    assert!(said.contains("40013") && said.contains("APPID"), "{said}");
    let mut f = test(CONSOLE_APPID, CONSOLE_APPSECRET);
    f.push(("csrf", &csrf));
    let good = b.post("/console/connect/test", &f).await?;
    assert_eq!(good.status, StatusCode::OK);
    assert!(
        good.select("[role=status]").join(" ").contains("accepted"),
        "{}",
        good.text
    );

    // Connect for real: the client id and the snippet with this server's origin.
    f.push(("enableSignUp", "true"));
    let done = b.post("/console/connect", &f).await?;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let client_id = done.select("p.mono").into_iter().next().unwrap_or_default();
    assert_eq!(client_id.len(), 20, "{}", done.text);
    let snippet = done.select("pre code").join("");
    assert!(
        snippet.contains(&format!("{}/oauth/token", c.iam.base)),
        "{snippet}"
    );
    assert!(snippet.contains(&client_id) && snippet.contains("wechat_miniprogram"));
    // Connecting the same again is refused beside the application's name.
    let again = b.post("/console/connect", &f).await?;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again.select("#application-error").len(),
        1,
        "{}",
        again.text
    );

    // A user of that mini program signs in through the simulator and the token endpoint.
    let (code, openid) = c.sim.login(CONSOLE_APPID, "carol").await?;
    let t = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", client_id.clone()),
            ("code", code),
        ])
        .await?;
    assert_eq!(t.status, 200, "{}", t.text);
    let bearer = t.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(c.get("/api/get-account", &bearer).await?.status, 200);

    // The dashboard counts it.
    let dash = eventually(&mut b, "/console/", |p| {
        p.select(".stat b").first().is_some_and(|n| n != "0")
    })
    .await?;
    assert_ne!(dash.select(".stat b")[0], "0", "{}", dash.text);

    // Find the user by openid, open them.
    let found = b
        .get(&format!(
            "/console/users?organization=shop&by=openid&q={openid}"
        ))
        .await?;
    let links = found.attr("tbody a", "href");
    assert_eq!(links.len(), 1, "{}", found.text);
    assert!(links[0].starts_with("/console/users/shop/"), "{links:?}");
    let user_page = b.get(&links[0]).await?;
    assert_eq!(user_page.status, StatusCode::OK);
    assert!(user_page.text.contains(&openid));
    let sids = user_page.attr("input[name=sid]", "value");
    assert_eq!(sids.len(), 1, "one session: {}", user_page.text);

    // Revoke it: their Bearer token is refused at once.
    let revoked = b
        .post(
            &format!("{}/revoke", links[0]),
            &[("csrf", &user_page.csrf()), ("sid", &sids[0])],
        )
        .await?;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.text);
    assert_eq!(c.get("/api/get-account", &bearer).await?.status, 401);
    let after = b.get(&revoked.location()).await?;
    assert!(after.select("input[name=sid]").is_empty());
    assert!(after.select("[role=status]").join(" ").contains("revoked"));

    // carol binds a second WeChat account of the same mini program: each identity's Unbind
    // removes that one alone.
    let (code, _) = c.sim.login(CONSOLE_APPID, "carol").await?;
    let again = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", client_id.clone()),
            ("code", code),
        ])
        .await?;
    let bearer2 = again.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (code, openid2) = c.sim.login(CONSOLE_APPID, "carol-2").await?;
    let bound = c
        .post_json("/api/wechat/bind", &bearer2, json!({"code": code}))
        .await?;
    assert_eq!(bound.json()["data"], "Affected", "{}", bound.text);
    let two = b.get(&links[0]).await?;
    let mut openids = two.attr("form[action$=unbind] input[name=openid]", "value");
    openids.sort();
    let mut both = [openid.clone(), openid2.clone()];
    both.sort();
    assert_eq!(openids, both, "{}", two.text);
    let unbound = b
        .post(
            &format!("{}/unbind", links[0]),
            &[
                ("csrf", &two.csrf()),
                ("appid", CONSOLE_APPID),
                ("openid", &openid2),
            ],
        )
        .await?;
    assert_eq!(unbound.status, StatusCode::SEE_OTHER, "{}", unbound.text);
    let one = b.get(&unbound.location()).await?;
    assert_eq!(
        one.attr("form[action$=unbind] input[name=openid]", "value"),
        std::slice::from_ref(&openid),
        "{}",
        one.text
    );

    // A profile field the API refuses is named beside the field, with what was typed.
    let refused = b
        .post(
            &links[0],
            &[
                ("csrf", &after.csrf()),
                ("displayName", "Carol"),
                ("avatar", "javascript:alert(1)"),
            ],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.select("#e-avatar").len(), 1, "{}", refused.text);
    assert_eq!(refused.attr("#f-avatar", "value"), ["javascript:alert(1)"]);

    // Forbid them: the forbidden filter finds them.
    let forbid = b
        .post(&format!("{}/forbid", links[0]), &[("csrf", &after.csrf())])
        .await?;
    assert_eq!(forbid.status, StatusCode::SEE_OTHER);
    let forbidden = b
        .get("/console/users?forbidden=yes&organization=shop")
        .await?;
    assert_eq!(forbidden.attr("tbody a", "href"), [links[0].clone()]);
    let allowed = b
        .get("/console/users?forbidden=no&organization=shop")
        .await?;
    assert!(allowed.attr("tbody a", "href").is_empty());
    // A page past the last (a link kept while the list shrank) says so and leads back.
    let past = b.get("/console/users?organization=shop&p=9").await?;
    assert!(
        past.text.contains("Nothing on page 9: the last page is 1."),
        "{}",
        past.text
    );
    assert_eq!(
        past.attr("a[rel=prev]", "href"),
        ["?by=name&organization=shop&p=1".to_owned()]
    );
    // A search by a column the console does not offer is the caller's mistake: a 400 that says so.
    let bogus = b
        .get("/console/users?organization=shop&by=password&q=x")
        .await?;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST, "{}", bogus.text);
    assert!(
        bogus
            .text
            .contains("Cannot search by &#34;password&#34;: the list below is not searched."),
        "{}",
        bogus.text
    );

    // The audit log shows the sign-in and the revocation.
    let log = eventually(&mut b, "/console/records?organization=shop", |p| {
        p.text.contains("revoke-session")
    })
    .await?;
    assert!(
        log.text.contains("signin-wechat-miniprogram"),
        "{}",
        log.text
    );
    assert!(log.text.contains("revoke-session"), "{}", log.text);
    let failures = eventually(&mut b, "/console/records?action=signin-console", |p| {
        p.text.contains("invalid_client")
    })
    .await?;
    assert!(
        failures.text.contains("invalid_client"),
        "the failed console sign-in is recorded"
    );

    // Secrets are masked, and `***` sent back keeps the stored one: sign-in still works.
    let provider_path = format!("/console/providers/shop/wechat_{CONSOLE_APPID}");
    let provider = b.get(&provider_path).await?;
    assert_eq!(provider.attr("#f-clientSecret", "value"), ["***"]);
    assert!(!provider.text.contains(CONSOLE_APPSECRET));
    let saved = b
        .post(
            &provider_path,
            &[
                ("csrf", &provider.csrf()),
                ("displayName", "Shop"),
                ("clientId", CONSOLE_APPID),
                ("clientSecret", "***"),
            ],
        )
        .await?;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let (code, _) = c.sim.login(CONSOLE_APPID, "dave").await?;
    let t = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", client_id.clone()),
            ("code", code),
        ])
        .await?;
    assert_eq!(t.status, 200, "the stored APPSECRET was kept: {}", t.text);

    // An application's edit form: a refused value is named beside its field.
    let app_path = "/console/applications/shop-mp";
    let app = b.get(app_path).await?;
    assert_eq!(app.attr("#f-clientSecret", "value"), ["***"]);
    let bad_hours = b
        .post(
            app_path,
            &[
                ("csrf", &app.csrf()),
                ("displayName", "Shop"),
                ("clientSecret", "***"),
                ("enableSignUp", "true"),
                ("providers", &format!("wechat_{CONSOLE_APPID}")),
                ("grantTypes", "password"),
                ("expireInHours", "-5"),
                ("refreshExpireInHours", "720"),
                ("maxSessionsPerUser", "0"),
            ],
        )
        .await?;
    assert_eq!(
        bad_hours.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_hours.text
    );
    assert_eq!(
        bad_hours.select("#e-expireInHours").len(),
        1,
        "{}",
        bad_hours.text
    );

    // Every edit form names the refused field beside it, and nothing is saved.
    let cases = [
        (
            "/console/organizations/shop",
            "defaultAvatar",
            "javascript:alert(1)",
        ),
        (provider_path.as_str(), "clientId", ""),
        (
            "/console/certs/cert-built-in",
            "displayName",
            &"x".repeat(101),
        ),
    ];
    for (path, name, value) in cases {
        let form_page = b.get(path).await?;
        let mut form: Vec<(String, String)> = form_page
            .html
            .select(&Selector::parse("form.stack input[name]").expect("selector"))
            .filter_map(|e| {
                let v = e.value();
                let kind = v.attr("type").unwrap_or("text");
                (kind != "checkbox" || v.attr("checked").is_some()).then(|| {
                    (
                        v.attr("name").unwrap_or_default().to_owned(),
                        v.attr("value").unwrap_or_default().to_owned(),
                    )
                })
            })
            .collect();
        for (k, v) in form.iter_mut() {
            if k == name {
                *v = value.to_owned();
            }
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let refused = b.post(path, &pairs).await?;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            refused.text
        );
        assert_eq!(
            refused.select(&format!("#e-{name}")).len(),
            1,
            "{path}: {}",
            refused.text
        );
        assert_ne!(
            b.get(path).await?.attr(&format!("#f-{name}"), "value"),
            [value],
            "{path}"
        );
    }

    // Sign out: the session ends, the old cookie opens nothing.
    let cookie = b.cookies.get("iam_console").cloned().unwrap_or_default();
    let csrf = b.get("/console/").await?.csrf();
    let out = b.post("/console/logout", &[("csrf", &csrf)]).await?;
    assert_eq!(out.location(), "/console/login");
    assert!(!b.cookies.contains_key("iam_console"));
    let mut stale = Browser::new(&c.iam.base);
    stale.cookies.insert("iam_console".into(), cookie);
    assert_eq!(
        stale.get("/console/users").await?.location(),
        "/console/login"
    );
    Ok(())
}

#[tokio::test]
async fn an_organization_administrator_sees_only_their_organization() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[]).await?;
    let mut b = Browser::new(&c.iam.base);
    let signed_in = b.sign_in("demo/demo-admin", "demo-admin-pw").await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );
    let dash = b.get("/console/").await?;
    assert_eq!(dash.select("h1"), ["Dashboard of demo"]);
    // Configuration pages are for global administrators: not in the nav, refused by URL.
    assert!(
        dash.attr("nav a", "href")
            .iter()
            .all(|h| !h.contains("applications"))
    );
    for path in [
        "/console/applications",
        "/console/providers",
        "/console/certs",
        "/console/organizations/built-in",
        "/console/connect",
        "/console/users/built-in/admin",
    ] {
        assert_eq!(b.get(path).await?.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Their users only, whatever the URL asks.
    let users = b.get("/console/users?organization=built-in").await?;
    let hrefs = users.attr("tbody a", "href");
    assert!(!hrefs.is_empty());
    assert!(
        hrefs.iter().all(|h| h.starts_with("/console/users/demo/")),
        "{hrefs:?}"
    );
    let log = b.get("/console/records?organization=built-in").await?;
    assert_eq!(log.status, StatusCode::OK);
    assert!(!log.text.contains(">built-in<"), "{}", log.text);
    // Nor can they act on another organization's user.
    let csrf = dash.csrf();
    let refused = b
        .post(
            "/console/users/built-in/admin/revoke-all",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn console_sign_ins_are_limited_per_address() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[("consoleSigninLimitPerMinute", "3")]).await?;
    let mut b = Browser::new(&c.iam.base);
    for _ in 0..3 {
        let wrong = b.sign_in("admin", "guess").await?;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    // The fourth within the minute is refused before the password is looked at, the right one
    // included.
    let limited = b.sign_in("admin", ADMIN_PASSWORD).await?;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.header("retry-after"), "60");
    assert!(
        limited
            .select("[role=alert]")
            .join(" ")
            .contains("Too many")
    );
    assert!(!b.cookies.contains_key("iam_console"));
    Ok(())
}
