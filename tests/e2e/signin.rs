//! Mini program sign-in between real processes: wechat-sim and iam, driven as the product page's
//! mini program code drives them. Every test runs on SQLite, and on PostgreSQL when
//! `IAM_TEST_POSTGRES_URL` is set.

use std::time::{Duration, Instant};

use iam_domain::ports::Repository;
use iam_e2e::{Answer, Db, Iam, IamOptions, Recorder, WechatSim, workspace_root};
use serde_json::{Value, json};

pub const APPID: &str = "wx5f3c1b2a9d8e7f60";
pub const CLIENT_ID: &str = "6825f4f0af45554c8952";

pub struct Ctx {
    pub sim: WechatSim,
    pub iam: Iam,
    pub rec: Recorder,
    pub db: Db,
    /// (appid, user) pairs whose session keys must never appear in a response.
    pub people: Vec<(String, String)>,
}

impl Ctx {
    pub async fn start(db: Db, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let sim = WechatSim::start()?;
        let mut opts = IamOptions::new(&db);
        opts.wechat_api_base = sim.base.clone();
        opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
        for (k, v) in env {
            opts.extra_env.push(((*k).into(), (*v).into()));
        }
        let iam = Iam::start(&opts)?;
        Ok(Self {
            sim,
            iam,
            rec: Recorder::default(),
            db,
            people: Vec::new(),
        })
    }

    /// The product page's request: form-encoded tag, client_id, code, username, avatar.
    pub async fn sign_in_with(
        &mut self,
        user: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let (code, _) = self.sim.login(APPID, user).await?;
        self.people.push((APPID.into(), user.into()));
        let mut form = vec![
            ("tag", "wechat_miniprogram".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("code", code),
        ];
        for (k, v) in extra {
            form.retain(|(fk, _)| fk != k);
            form.push((k, (*v).to_owned()));
        }
        self.token(&form).await
    }

    pub async fn sign_in(&mut self, user: &str) -> anyhow::Result<String> {
        let a = self
            .sign_in_with(
                user,
                &[
                    ("username", "Nick"),
                    ("avatar", "https://thirdwx.qlogo.cn/a/132"),
                ],
            )
            .await?;
        anyhow::ensure!(a.status == 200, "sign-in failed: {} {}", a.status, a.text);
        Ok(a.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn token(&self, form: &[(&str, String)]) -> anyhow::Result<Answer> {
        self.rec
            .send(self.rec.http.post(self.iam.url("/oauth/token")).form(form))
            .await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> anyhow::Result<Answer> {
        self.rec
            .send(self.rec.http.get(self.iam.url(path)).bearer_auth(bearer))
            .await
    }

    pub async fn post_json(&self, path: &str, bearer: &str, body: Value) -> anyhow::Result<Answer> {
        self.rec
            .send(
                self.rec
                    .http
                    .post(self.iam.url(path))
                    .bearer_auth(bearer)
                    .json(&body),
            )
            .await
    }

    pub async fn post_json_as(
        &self,
        bearer: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Answer> {
        self.post_json(path, bearer, body).await
    }

    /// The password grant through the demo application (app-built-in for `built-in/` users):
    /// (access token, refresh token).
    pub async fn password_tokens(
        &self,
        username: &str,
        password: &str,
    ) -> anyhow::Result<(String, String)> {
        // A global administrator signs in through app-built-in; everyone else through the demo
        // application.
        let client_id = if username.starts_with("built-in/") {
            self.iam.built_in_client_id()?
        } else {
            CLIENT_ID.to_owned()
        };
        let a = self
            .token(&[
                ("grant_type", "password".into()),
                ("client_id", client_id),
                ("username", username.into()),
                ("password", password.into()),
            ])
            .await?;
        anyhow::ensure!(a.status == 200, "password grant for {username}: {}", a.text);
        let v = a.json();
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok((s("access_token"), s("refresh_token")))
    }

    /// The password grant's access token.
    pub async fn password_token(&self, username: &str, password: &str) -> anyhow::Result<String> {
        Ok(self.password_tokens(username, password).await?.0)
    }

    pub async fn account(&self, bearer: &str) -> anyhow::Result<Value> {
        let a = self.get("/api/get-account", bearer).await?;
        anyhow::ensure!(a.status == 200, "get-account: {} {}", a.status, a.text);
        Ok(a.json())
    }

    /// No response body of the test, no log line and no metric carried any session key WeChat
    /// handed out.
    pub async fn assert_no_session_key_leaked(&self) -> anyhow::Result<()> {
        let mut bodies = self.rec.bodies();
        bodies.extend(self.iam.proc.lines());
        bodies.push(reqwest::get(self.iam.url("/metrics")).await?.text().await?);
        for (appid, user) in &self.people {
            let key = self.sim.session_key(appid, user).await?;
            anyhow::ensure!(!key.is_empty());
            for b in &bodies {
                anyhow::ensure!(
                    !b.contains(&key),
                    "a response carried {user}'s session key: {b}"
                );
            }
        }
        Ok(())
    }
}

pub fn expect_oauth_error(a: &Answer, status: u16, error: &str, description_contains: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    let v = a.json();
    assert_eq!(v["error"], error, "{}", a.text);
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(
        d.contains(description_contains),
        "{d:?} should contain {description_contains:?}"
    );
    assert_eq!(a.header("cache-control").as_deref(), Some("no-store"));
}

use iam_e2e::both_backends;

async fn product_page_flow(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    // wx.login() → POST /oauth/token, exactly as the product page sends it.
    let a = c
        .sign_in_with(
            "alice",
            &[
                ("username", "微信用户"),
                ("avatar", "https://thirdwx.qlogo.cn/mmopen/a/132"),
            ],
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("cache-control").as_deref(), Some("no-store"));
    let t = a.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 168 * 3600);
    assert!(t["refresh_token"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        t.get("id_token").is_none(),
        "no id_token without scope openid"
    );
    let access = t["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(access.split('.').count(), 3, "a JWT");

    let me = c.account(&access).await?;
    let user = &me["data"];
    let name = user["name"].as_str().unwrap_or_default().to_owned();
    let (_, openid) = c.sim.login(APPID, "alice").await?;
    assert_eq!(name, format!("wechat-{openid}"));
    assert_eq!(user["displayName"], "微信用户");
    assert_eq!(user["avatar"], "https://thirdwx.qlogo.cn/mmopen/a/132");
    assert_eq!(user["signupApplication"], "demo-app");
    assert_eq!(user["wechat"], openid.as_str());
    assert_eq!(user["properties"]["wechatOpenId"], openid.as_str());
    assert_eq!(user["type"], "normal-user");
    assert_eq!(user["password"], "");
    assert_eq!(me["data2"]["name"], "demo");

    // The product page's follow-up: POST /api/update-user with JSON and the Bearer token.
    let a = c
        .post_json(
            "/api/update-user",
            &access,
            json!({"owner": "demo", "name": name, "displayName": "Alice", "avatar": "https://thirdwx.qlogo.cn/b/132"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json(),
        json!({"status": "ok", "msg": "", "data": "Affected", "data2": null})
    );
    let me = c.account(&access).await?;
    assert_eq!(me["data"]["displayName"], "Alice");

    // Userinfo and get-user of oneself.
    let info = c.get("/api/userinfo", &access).await?.json();
    assert_eq!(info["sub"], me["data"]["id"]);
    assert_eq!(info["preferred_username"], name.as_str());
    let a = c
        .get(&format!("/api/get-user?id=demo/{name}"), &access)
        .await?;
    assert_eq!(a.json()["data"]["displayName"], "Alice");

    // A returning user: same user, profile refreshed when sent, last sign-in recorded.
    let a = c.sign_in_with("alice", &[("username", "Alice 2")]).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let again = c
        .account(a.json()["access_token"].as_str().unwrap_or_default())
        .await?;
    assert_eq!(again["data"]["id"], me["data"]["id"]);
    assert_eq!(again["data"]["displayName"], "Alice 2");
    assert_eq!(
        again["data"]["avatar"], "https://thirdwx.qlogo.cn/b/132",
        "not sent: kept"
    );
    assert!(
        !again["data"]["lastSigninTime"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );

    // A JSON body works too, and scope=openid brings a real ID token with the nonce.
    let (code, _) = c.sim.login(APPID, "carol").await?;
    c.people.push((APPID.into(), "carol".into()));
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/api/login/oauth/access_token"))
                .json(&json!({
                    "tag": "wechat_miniprogram", "client_id": CLIENT_ID, "code": code,
                    "scope": "openid profile", "nonce": "n-0S6_WzA2Mj"
                })),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let id_token = a.json()["id_token"].as_str().unwrap_or_default().to_owned();
    let claims = iam_e2e::claims(&id_token)?;
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["iss"], c.iam.base.as_str());
    assert_ne!(
        id_token,
        a.json()["access_token"].as_str().unwrap_or_default(),
        "not Casdoor's copy"
    );

    c.assert_no_session_key_leaked().await
}
both_backends!(the_product_page_flow_works, product_page_flow);

async fn failure_rows(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[("wechatTimeoutMs", "800")]).await?;
    let form = |client_id: &str, code: &str| {
        vec![
            ("tag", "wechat_miniprogram".to_owned()),
            ("client_id", client_id.to_owned()),
            ("code", code.to_owned()),
        ]
    };
    let calls = c.sim.exchanges().await?;

    // Step 1: the client.
    let a = c.token(&form("unknown-client", "0abc")).await?;
    expect_oauth_error(&a, 401, "invalid_client", "client_id is invalid");
    assert_eq!(
        a.header("www-authenticate").as_deref(),
        Some("Basic realm=\"OAuth2\"")
    );
    let mut f = form(CLIENT_ID, "0abc");
    f.push(("client_secret", "wrong".into()));
    expect_oauth_error(&c.token(&f).await?, 401, "invalid_client", "client_secret");
    // Step 2: an application without a mini program.
    expect_oauth_error(
        &c.token(&form("web00000000000000000", "0abc")).await?,
        401,
        "invalid_client",
        "does not support wechat mini program",
    );
    // Step 3: bad input never reaches WeChat.
    expect_oauth_error(
        &c.token(&form(CLIENT_ID, "")).await?,
        400,
        "invalid_request",
        "code",
    );
    expect_oauth_error(
        &c.token(&form(CLIENT_ID, "the code is a mock one")).await?,
        400,
        "invalid_request",
        "code",
    );
    expect_oauth_error(
        &c.token(&form(CLIENT_ID, &"x".repeat(129))).await?,
        400,
        "invalid_request",
        "code",
    );
    let mut f = form(CLIENT_ID, "0abc");
    f.push(("username", "n".repeat(101)));
    expect_oauth_error(&c.token(&f).await?, 400, "invalid_request", "username");
    let mut f = form(CLIENT_ID, "0abc");
    f.push(("avatar", "javascript:alert(1)".into()));
    expect_oauth_error(&c.token(&f).await?, 400, "invalid_request", "avatar");
    // A JSON body is an object of parameters: an array is named, not read as nothing sent.
    let body = json!(["tag", "wechat_miniprogram"]);
    let req = c.rec.http.post(c.iam.url("/oauth/token")).json(&body);
    let said = "the JSON body must be an object of parameters";
    expect_oauth_error(&c.rec.send(req).await?, 400, "invalid_request", said);
    assert_eq!(
        c.sim.exchanges().await?,
        calls,
        "no WeChat call for bad input"
    );

    // Step 4: WeChat's answers.
    expect_oauth_error(
        &c.token(&form(CLIENT_ID, "0nosuchcode0000000000000000000000"))
            .await?,
        400,
        "invalid_grant",
        "get wechat mini program session error: 40029 invalid code",
    );
    let (code, _) = c.sim.login(APPID, "dora").await?;
    c.people.push((APPID.into(), "dora".into()));
    // Someone else exchanged it first (straight at WeChat).
    reqwest::get(format!(
        "{}/sns/jscode2session?appid={APPID}&secret=0c6d2a1b9e8f7d6c5b4a39281706f5e4&js_code={code}&grant_type=authorization_code",
        c.sim.base
    ))
    .await?;
    expect_oauth_error(
        &c.token(&form(CLIENT_ID, &code)).await?,
        400,
        "invalid_grant",
        "40163",
    );
    c.sim
        .post("/sim/risky", json!({"appid": APPID, "user": "mallory"}))
        .await?;
    let a = c.sign_in_with("mallory", &[]).await?;
    expect_oauth_error(&a, 400, "invalid_grant", "40226");

    // Busy twice: retried, and the user never notices.
    c.sim
        .fault(json!({"api": "jscode2session", "errcode": -1, "count": 2}))
        .await?;
    assert_eq!(c.sign_in_with("erin", &[]).await?.status, 200);
    // Busy three times, rate limited, slow, broken: 503 with Retry-After.
    for fault in [
        json!({"api": "jscode2session", "errcode": -1, "count": 3}),
        json!({"api": "jscode2session", "errcode": 45011, "count": 1}),
        json!({"api": "jscode2session", "httpStatus": 502, "count": 1}),
        json!({"api": "jscode2session", "malformed": true, "count": 1}),
        json!({"api": "jscode2session", "latencyMs": 3000, "count": 1}),
    ] {
        c.sim.fault(fault.clone()).await?;
        let started = Instant::now();
        let a = c.sign_in_with("frank", &[]).await?;
        expect_oauth_error(&a, 503, "temporarily_unavailable", "retry later");
        assert!(a.header("retry-after").is_some(), "{fault}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "bounded by wechatTimeoutMs: {fault}"
        );
    }
    c.sim.clear_faults().await?;
    // Misconfigured provider: 500, and the AppSecret is nowhere in the answer.
    c.sim
        .fault(json!({"api": "jscode2session", "errcode": 40125, "count": 1}))
        .await?;
    let a = c.sign_in_with("gina", &[]).await?;
    expect_oauth_error(&a, 500, "server_error", "wechat provider is misconfigured");
    assert!(!a.text.contains("0c6d2a1b9e8f7d6c5b4a39281706f5e4"));

    // Step 6: sign-up disabled.
    let (code, _) = c.sim.login(APPID, "henry").await?;
    expect_oauth_error(
        &c.token(&form("closed0000000000000", &code)).await?,
        400,
        "invalid_grant",
        "does not allow to sign up new account",
    );
    // Other grants.
    let a = c
        .token(&[
            ("grant_type", "implicit".into()),
            ("client_id", CLIENT_ID.into()),
        ])
        .await?;
    expect_oauth_error(&a, 400, "unsupported_grant_type", "implicit");
    c.assert_no_session_key_leaked().await
}
both_backends!(every_failure_row_has_its_answer, failure_rows);

async fn rights(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let alice = c.sign_in("alice").await?;
    let bob = c.sign_in("bob-wechat").await?;
    let alice_name = c.account(&alice).await?["data"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Another user's token cannot update this user.
    let a = c
        .post_json(
            "/api/update-user",
            &bob,
            json!({"owner": "demo", "name": alice_name, "displayName": "pwned"}),
        )
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(a.json()["msg"], "Unauthorized operation");
    assert_eq!(c.account(&alice).await?["data"]["displayName"], "Nick");
    // Nor read them.
    assert_eq!(
        c.get(&format!("/api/get-user?id=demo/{alice_name}"), &bob)
            .await?
            .status,
        403
    );

    // A normal user cannot make themself admin: named in columns → 403; slipped into the body →
    // ignored.
    let a = c
        .post_json(
            "/api/update-user?columns=isAdmin",
            &alice,
            json!({"isAdmin": true}),
        )
        .await?;
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["msg"], "Only admin can modify the isAdmin");
    let a = c
        .post_json(
            "/api/update-user",
            &alice,
            json!({"isAdmin": true, "password": "x", "displayName": "A"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let me = c.account(&alice).await?;
    assert_eq!(me["data"]["isAdmin"], false);
    assert_eq!(me["data"]["displayName"], "A");

    // The organization's administrator may; the body is JSON even with another Content-Type.
    let org_admin = c
        .token(&[
            ("grant_type", "password".into()),
            ("client_id", CLIENT_ID.into()),
            ("username", "demo-admin".into()),
            ("password", "demo-admin-pw".into()),
        ])
        .await?
        .json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url(&format!(
                    "/api/update-user?id=demo/{alice_name}&columns=isForbidden"
                )))
                .bearer_auth(&org_admin)
                .header("content-type", "text/plain")
                .body(r#"{"isForbidden": true}"#),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    // A forbidden user's token stops working and they cannot sign in.
    assert_eq!(c.get("/api/get-account", &alice).await?.status, 401);
    expect_oauth_error(
        &c.sign_in_with("alice", &[]).await?,
        400,
        "invalid_grant",
        "forbidden",
    );
    // An application's credentials do not reach beyond its organization.
    let a = c
        .rec
        .send(
            c.rec
                .http
                .get(c.iam.url(&format!("/api/get-user?id=demo/{alice_name}")))
                .basic_auth("other000000000000000", Some("other-secret")),
        )
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = c
        .rec
        .send(c.rec.http.get(c.iam.url(&format!(
            "/api/get-user?id=demo/{alice_name}&clientId={CLIENT_ID}&clientSecret=demo-app-secret"
        ))))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["data"]["isForbidden"], true);
    c.assert_no_session_key_leaked().await
}
both_backends!(users_can_only_do_what_they_may, rights);

async fn token_lifecycle(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let a = c.sign_in_with("ivy", &[]).await?;
    let t = a.json();
    let access = t["access_token"].as_str().unwrap_or_default().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap_or_default().to_owned();

    // The refresh token is never an access token.
    assert_eq!(c.get("/api/get-account", &refresh).await?.status, 401);
    // A tampered token is refused.
    let tampered = format!("{}x", &access[..access.len() - 1]);
    assert_eq!(c.get("/api/get-account", &tampered).await?.status, 401);

    // Rotation: the new pair works, the old refresh token does not...
    let refresh_form = |r: &str| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("refresh_token", r.to_owned()),
        ]
    };
    let a = c.token(&refresh_form(&refresh)).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let access2 = a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refresh2 = a.json()["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(c.get("/api/get-account", &access2).await?.status, 200);
    // ...and presenting it again revokes the whole chain.
    expect_oauth_error(
        &c.token(&refresh_form(&refresh)).await?,
        400,
        "invalid_grant",
        "already used",
    );
    assert_eq!(c.get("/api/get-account", &access2).await?.status, 401);
    assert_eq!(c.get("/api/get-account", &access).await?.status, 401);
    expect_oauth_error(
        &c.token(&refresh_form(&refresh2)).await?,
        400,
        "invalid_grant",
        "revoked",
    );

    // Casdoor's refresh route works too.
    let a = c.sign_in_with("ivy", &[]).await?;
    let r = a.json()["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/api/login/oauth/refresh_token"))
                .form(&[
                    ("refresh_token", r.as_str()),
                    ("client_id", CLIENT_ID),
                    ("client_secret", "demo-app-secret"),
                ]),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let access3 = a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Introspection needs client authentication and tells the truth.
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/api/login/oauth/introspect"))
                .form(&[("token", access3.as_str())]),
        )
        .await?;
    assert_eq!(a.status, 401, "{}", a.text);
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/api/login/oauth/introspect"))
                .basic_auth(CLIENT_ID, Some("demo-app-secret"))
                .form(&[("token", access3.as_str())]),
        )
        .await?;
    assert_eq!(a.json()["active"], true, "{}", a.text);
    assert_eq!(a.json()["client_id"], CLIENT_ID);

    // Revocation (RFC 7009), then the token is refused and inactive.
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/oauth/revoke"))
                .form(&[("token", access3.as_str()), ("client_id", CLIENT_ID)]),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(c.get("/api/get-account", &access3).await?.status, 401);
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/api/login/oauth/introspect"))
                .basic_auth(CLIENT_ID, Some("demo-app-secret"))
                .form(&[("token", access3.as_str())]),
        )
        .await?;
    assert_eq!(a.json(), json!({"active": false}));

    // An expired token (signed with the server's own key, for a live session) is refused.
    let store = c.db.store().await?;
    let cert = store
        .get_cert("cert-built-in")
        .await?
        .ok_or_else(|| anyhow::anyhow!("cert"))?;
    let fresh = c.sign_in("ivy").await?;
    let me = c.account(&fresh).await?;
    let expired = iam_e2e::sign_user_token(
        &cert,
        &c.iam.base,
        me["data"]["id"].as_str().unwrap_or_default(),
        iam_e2e::claims(&fresh)?["sid"].as_str().unwrap_or_default(),
        chrono::Utc::now() - chrono::Duration::hours(2),
    )?;
    let a = c.get("/api/get-account", &expired).await?;
    assert_eq!(a.status, 401, "{}", a.text);
    assert!(a.msg().contains("expired"), "{}", a.text);

    // client_credentials: an application token; Basic auth carries the secret.
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/oauth/token"))
                .basic_auth(CLIENT_ID, Some("demo-app-secret"))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json().get("refresh_token").is_none());
    c.assert_no_session_key_leaked().await
}
both_backends!(tokens_rotate_revoke_and_expire, token_lifecycle);

async fn concurrent_first_sign_ins(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    // One person, 20 codes (several devices or retries), all at once: exactly one user.
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(c.sim.login(APPID, "jack").await?.0);
    }
    c.people.push((APPID.into(), "jack".into()));
    let mut tasks = Vec::new();
    for code in codes {
        let (rec, url) = (c.rec.clone(), c.iam.url("/oauth/token"));
        tasks.push(tokio::spawn(async move {
            rec.send(rec.sign_in_request(&url, &code)).await
        }));
    }
    let mut subjects = std::collections::BTreeSet::new();
    for t in tasks {
        let a = t.await??;
        assert_eq!(a.status, 200, "{}", a.text);
        let access = a.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        subjects.insert(
            iam_e2e::claims(&access)?["sub"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let store = c.db.store().await?;
    let jacks: Vec<_> = store
        .list_users(Some("demo"))
        .await?
        .into_iter()
        .filter(|u| u.name.starts_with("wechat-"))
        .collect();
    assert_eq!(jacks.len(), 1, "one person, one user");
    // The sign-ins that lost the race to create him were done again: every token is his.
    let ids: std::collections::BTreeSet<String> = jacks.iter().map(|u| u.id.clone()).collect();
    assert_eq!(subjects, ids, "every token names the one user");

    // One code sent 10 times at once (a double-tapping user): one WeChat call, all answered.
    let before = c.sim.exchanges().await?;
    let (code, _) = c.sim.login(APPID, "kate").await?;
    c.people.push((APPID.into(), "kate".into()));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (rec, url, code) = (c.rec.clone(), c.iam.url("/oauth/token"), code.clone());
        tasks.push(tokio::spawn(async move {
            rec.send(rec.sign_in_request(&url, &code)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let a = t.await??;
        match a.status {
            200 => ok += 1,
            400 => assert!(a.text.contains("40163"), "{}", a.text),
            _ => panic!("{} {}", a.status, a.text),
        }
    }
    assert!(ok >= 1);
    assert_eq!(
        c.sim.exchanges().await? - before,
        1,
        "one WeChat call for one code"
    );
    c.assert_no_session_key_leaked().await
}
both_backends!(
    concurrent_first_sign_ins_make_one_user,
    concurrent_first_sign_ins
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_make_one_user() -> anyhow::Result<()> {
    let Some(db) = Db::postgres()? else {
        return Ok(());
    };
    let c = Ctx::start(db, &[]).await?;
    let mut opts = IamOptions::new(&c.db);
    opts.wechat_api_base = c.sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    let second = Iam::start(&opts)?;
    for round in 0..5 {
        let person = format!("twin-{round}");
        let mut tasks = Vec::new();
        for i in 0..16 {
            let code = c.sim.login(APPID, &person).await?.0;
            let url = if i % 2 == 0 {
                c.iam.url("/oauth/token")
            } else {
                second.url("/oauth/token")
            };
            let rec = c.rec.clone();
            tasks.push(tokio::spawn(async move {
                rec.send(rec.sign_in_request(&url, &code)).await
            }));
        }
        let mut subs = std::collections::HashSet::new();
        for t in tasks {
            let a = t.await??;
            assert_eq!(a.status, 200, "{}", a.text);
            let tok = a.json()["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let claims = iam_e2e::claims(&tok)?;
            subs.insert(claims["sub"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(subs.len(), 1, "both servers answered with the same user");
    }
    let users = c.db.store().await?.list_users(Some("demo")).await?;
    assert_eq!(
        users
            .iter()
            .filter(|u| u.name.starts_with("wechat-"))
            .count(),
        5
    );
    Ok(())
}

#[tokio::test]
async fn the_token_endpoint_is_rate_limited_per_ip() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[("tokenRateLimitPerIp", "2")]).await?;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..8 {
        let a = c
            .token(&[("grant_type", "client_credentials".into())])
            .await?;
        statuses.push(a.status);
        last = Some(a);
    }
    assert!(
        statuses.iter().take(4).all(|s| *s != 429),
        "a burst of 2x passes: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let last = last.ok_or_else(|| anyhow::anyhow!("no answer"))?;
    assert!(last.header("retry-after").is_some());
    assert_eq!(last.json()["error"], "slow_down");
    // Other routes are not limited.
    assert_eq!(
        c.rec
            .send(c.rec.http.get(c.iam.url("/healthz")))
            .await?
            .status,
        200
    );
    Ok(())
}
