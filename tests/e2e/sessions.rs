//! Sessions and sign-out (SPEC §9) between real processes: every sign-in is a session named in
//! its tokens, listed, revoked by its user or an administrator, limited per application, and
//! revoked on one node is refused on every other within a second.

use std::time::{Duration, Instant};

use iam_e2e::{Answer, Db, Iam, IamOptions, workspace_root};
use serde_json::{Value, json};

use crate::signin::{APPID, CLIENT_ID, Ctx};

/// What WeChat's mini program runtime sends, roughly.
const USER_AGENT: &str = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50 miniProgram";
const OTHER_CLIENT_ID: &str = "other000000000000000";

fn field(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// A mini program sign-in: (access token, refresh token, sid, user's `owner/name`).
async fn sign_in(c: &mut Ctx, user: &str) -> anyhow::Result<(String, String, String, String)> {
    let (code, _) = c.sim.login(APPID, user).await?;
    c.people.push((APPID.into(), user.into()));
    let form = [
        ("tag", "wechat_miniprogram"),
        ("client_id", CLIENT_ID),
        ("code", code.as_str()),
    ];
    let a = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/oauth/token"))
                .header("user-agent", USER_AGENT)
                .form(&form),
        )
        .await?;
    anyhow::ensure!(a.status == 200, "sign-in: {}", a.text);
    let t = a.json();
    let access = field(&t, "access_token");
    let claims = iam_e2e::claims(&access)?;
    let id = format!("{}/{}", field(&claims, "owner"), field(&claims, "name"));
    Ok((
        access,
        field(&t, "refresh_token"),
        field(&claims, "sid"),
        id,
    ))
}

async fn post(c: &Ctx, path: &str, bearer: &str) -> anyhow::Result<Answer> {
    c.post_json(path, bearer, json!({})).await
}

async fn introspect(c: &Ctx, token: &str, client: &str, secret: &str) -> anyhow::Result<Answer> {
    c.rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/api/login/oauth/introspect"))
                .basic_auth(client, Some(secret))
                .form(&[("token", token)]),
        )
        .await
}

fn refresh_form(r: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("refresh_token", r.to_owned()),
    ]
}

async fn status_of(c: &Ctx, base: &str, bearer: &str) -> anyhow::Result<u16> {
    Ok(c.rec
        .send(
            c.rec
                .http
                .get(format!("{base}/api/get-account"))
                .bearer_auth(bearer),
        )
        .await?
        .status)
}

async fn sessions_flow(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let admin = c
        .password_token("built-in/admin", iam_e2e::ADMIN_PASSWORD)
        .await?;
    let demo_admin = c.password_token("demo-admin", "demo-admin-pw").await?;
    let bob = c.password_token("bob", "bob-pw").await?;

    // Every user sign-in is a session named in its tokens; an application token has none.
    let (a1, r1, sid1, id) = sign_in(&mut c, "sam").await?;
    assert!(!sid1.is_empty(), "the access token names its session");
    assert!(
        iam_e2e::claims(&bob)?["sid"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let app_token = c
        .token(&[
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", "demo-app-secret".into()),
        ])
        .await?;
    let app_token = field(&app_token.json(), "access_token");
    assert!(iam_e2e::claims(&app_token)?.get("sid").is_none());

    let (a2, _r2, sid2, _) = sign_in(&mut c, "sam").await?;
    let a = c
        .get(&format!("/api/get-user-sessions?id={id}"), &a1)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let list = a.json()["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{}", a.text);
    assert_eq!(field(&list[0], "sid"), sid2, "newest first");
    assert_eq!(field(&list[1], "sid"), sid1);
    assert_eq!(field(&list[0], "application"), "demo-app");
    assert_eq!(field(&list[0], "clientIp"), "127.0.0.1");
    assert_eq!(field(&list[0], "userAgent"), USER_AGENT);
    for key in ["createdTime", "lastActiveTime", "expiresTime"] {
        assert!(!field(&list[0], key).is_empty(), "{key}: {}", a.text);
    }
    assert!(
        !a.text.contains(&a1) && !a.text.contains(&r1),
        "no token value is shown"
    );

    // Who may see and end them: the user, an administrator of the organization, nobody else.
    let path = format!("/api/get-user-sessions?id={id}");
    assert_eq!(c.get(&path, &demo_admin).await?.status, 200);
    assert_eq!(c.get(&path, &bob).await?.status, 403);
    let a = post(&c, &format!("/api/revoke-session?sid={sid1}"), &bob).await?;
    assert_eq!(a.status, 403, "{}", a.text);

    // Bad input: an unknown session, malformed ones (a session id is a UUID), a malformed
    // user id.
    let unknown = "0190a5d0-0000-7000-8000-000000000000";
    let a = post(&c, &format!("/api/revoke-session?sid={unknown}"), &a1).await?;
    assert_eq!(a.status, 404, "{}", a.text);
    for malformed in ["no-such-session", "a%20b"] {
        let a = post(&c, &format!("/api/revoke-session?sid={malformed}"), &a1).await?;
        assert_eq!(a.status, 400, "{}", a.text);
        assert!(a.msg().starts_with("sid: "), "{}", a.text);
        assert!(a.msg().contains("not a session id (a UUID)"), "{}", a.text);
    }
    let a = post(&c, "/api/revoke-session", &a1).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("sid"), "{}", a.text);
    let a = c.get("/api/get-user-sessions?id=no-slash", &a1).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.msg().starts_with("id: must be of the form owner/name"),
        "{}",
        a.text
    );
    let a = c
        .get("/api/get-user-sessions?id=demo/nobody", &demo_admin)
        .await?;
    assert_eq!(a.status, 404, "{}", a.text);

    // Ending a session refuses its access token and its refresh token at once; the other
    // session lives on. Twice is not an error and changes nothing.
    let a = post(&c, &format!("/api/revoke-session?sid={sid1}"), &a2).await?;
    assert_eq!(
        (a.status, a.json()["data"].clone()),
        (200, json!("Affected")),
        "{}",
        a.text
    );
    // RFC 6750 §3: a refused token is named `invalid_token` in the challenge, with why; a
    // request without one is asked for one.
    let a = c.get("/api/get-account", &a1).await?;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(
        a.header("www-authenticate").as_deref(),
        Some(
            "Bearer error=\"invalid_token\", \
             error_description=\"the access token's session has ended: sign in again\""
        )
    );
    let a = c
        .rec
        .send(c.rec.http.get(c.iam.url("/api/get-account")))
        .await?;
    assert_eq!(
        (a.status, a.header("www-authenticate").as_deref()),
        (401, Some("Bearer")),
        "{}",
        a.text
    );
    let a = c.token(&refresh_form(&r1)).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json()["error"], "invalid_grant");
    assert_eq!(c.get("/api/get-account", &a2).await?.status, 200);
    let a = post(&c, &format!("/api/revoke-session?sid={sid1}"), &a2).await?;
    assert_eq!(
        (a.status, a.json()["data"].clone()),
        (200, json!("Unaffected")),
        "{}",
        a.text
    );

    // Another organization's session is not a demo administrator's to end.
    let code = c.sim.login(APPID, "olga").await?.0;
    let a = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", OTHER_CLIENT_ID.into()),
            ("code", code),
        ])
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let olga = field(&a.json(), "access_token");
    let olga_sid = field(&iam_e2e::claims(&olga)?, "sid");
    let a = post(
        &c,
        &format!("/api/revoke-session?sid={olga_sid}"),
        &demo_admin,
    )
    .await?;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(c.get("/api/get-account", &olga).await?.status, 200);
    // Introspection describes a token only to an application of its organization.
    let a = introspect(&c, &olga, CLIENT_ID, "demo-app-secret").await?;
    assert_eq!(a.json(), json!({"active": false}), "{}", a.text);
    let a = introspect(&c, &olga, OTHER_CLIENT_ID, "other-secret").await?;
    assert_eq!(a.json()["active"], true, "{}", a.text);

    // Casdoor's sso-logout: this session only, then every session.
    let (a3, _, _, _) = sign_in(&mut c, "sam").await?;
    let a = post(&c, "/api/sso-logout?logoutAll=false", &a2).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(c.get("/api/get-account", &a2).await?.status, 401);
    assert_eq!(c.get("/api/get-account", &a3).await?.status, 200);
    let (a4, _, _, _) = sign_in(&mut c, "sam").await?;
    let a = post(&c, "/api/sso-logout?logoutAll=maybe", &a3).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("logoutAll"), "{}", a.text);
    let a = post(&c, "/api/sso-logout?logoutAll=true", &a3).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(c.get("/api/get-account", &a3).await?.status, 401);
    assert_eq!(c.get("/api/get-account", &a4).await?.status, 401);

    // "Sign out everywhere" by an administrator.
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(sign_in(&mut c, "sam").await?.0);
    }
    let a = post(
        &c,
        &format!("/api/revoke-user-sessions?id={id}"),
        &demo_admin,
    )
    .await?;
    assert_eq!(
        (a.status, a.json()["data2"].clone()),
        (200, json!(3)),
        "{}",
        a.text
    );
    for t in &live {
        assert_eq!(c.get("/api/get-account", t).await?.status, 401);
    }
    let a = post(
        &c,
        &format!("/api/revoke-user-sessions?id={id}"),
        &demo_admin,
    )
    .await?;
    assert_eq!(
        (a.status, a.json()["data2"].clone()),
        (200, json!(0)),
        "{}",
        a.text
    );

    // Casdoor's session and token shapes, for administrators.
    let (t1, _, s1, _) = sign_in(&mut c, "sam").await?;
    let a = c.get("/api/get-sessions?owner=demo", &demo_admin).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let groups = a.json()["data"].as_array().cloned().unwrap_or_default();
    let mine: Vec<_> = groups
        .iter()
        .filter(|g| format!("{}/{}", field(g, "owner"), field(g, "name")) == id)
        .collect();
    assert_eq!(mine.len(), 1, "{}", a.text);
    assert_eq!(mine[0]["application"], "demo-app");
    assert_eq!(mine[0]["sessionId"], json!([s1]));
    assert_eq!(
        c.get("/api/get-sessions?owner=other", &demo_admin)
            .await?
            .status,
        403
    );
    assert_eq!(
        c.get("/api/get-sessions?owner=demo", &bob).await?.status,
        403
    );
    let a = c
        .get("/api/get-sessions?owner=demo&p=1&pageSize=1", &demo_admin)
        .await?;
    assert_eq!(
        a.json()["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        a.text
    );
    assert!(a.json()["data2"].as_u64() >= Some(2), "{}", a.text);
    let a = c
        .get("/api/get-sessions?owner=demo&p=0", &demo_admin)
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.msg().starts_with("p: must be a whole number"),
        "{}",
        a.text
    );

    let a = c
        .get("/api/get-tokens?owner=admin&p=1&pageSize=100", &admin)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let tokens = a.json()["data"].as_array().cloned().unwrap_or_default();
    let token = tokens
        .iter()
        .find(|t| field(t, "name") == s1)
        .cloned()
        .unwrap_or_default();
    assert_eq!(token["organization"], "demo", "{}", a.text);
    assert_eq!(token["accessToken"], "", "never a token's value");
    assert!(!a.text.contains(&t1));
    let a = c
        .get(&format!("/api/get-token?id=admin/{s1}"), &demo_admin)
        .await?;
    assert_eq!(a.json()["data"]["name"], s1.as_str(), "{}", a.text);
    let a = c
        .post_json(
            &format!("/api/delete-token?id=admin/{s1}"),
            &demo_admin,
            token,
        )
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    assert_eq!(c.get("/api/get-account", &t1).await?.status, 401);

    let (t2, _, _, _) = sign_in(&mut c, "sam").await?;
    let (owner, name) = id.split_once('/').unwrap_or_default();
    let a = c
        .post_json(
            "/api/delete-session",
            &demo_admin,
            json!({"owner": owner, "name": name, "application": "demo-app"}),
        )
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    assert_eq!(c.get("/api/get-account", &t2).await?.status, 401);

    // Revoking an access token at the token endpoint ends its session; an application token
    // (no session) is refused by its jti.
    let (t3, r3, _, _) = sign_in(&mut c, "sam").await?;
    for token in [&t3, &app_token] {
        let a = c
            .rec
            .send(
                c.rec
                    .http
                    .post(c.iam.url("/oauth/revoke"))
                    .basic_auth(CLIENT_ID, Some("demo-app-secret"))
                    .form(&[("token", token.as_str())]),
            )
            .await?;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(c.get("/api/get-account", token).await?.status, 401);
        let a = introspect(&c, token, CLIENT_ID, "demo-app-secret").await?;
        assert_eq!(a.json(), json!({"active": false}));
    }
    assert_eq!(c.token(&refresh_form(&r3)).await?.status, 400);

    // maxSessionsPerUser: the third sign-in ends the oldest.
    let mut app = c
        .get("/api/get-application?id=admin/demo-app", &admin)
        .await?
        .json()["data"]
        .clone();
    app["maxSessionsPerUser"] = json!(2);
    let a = c
        .post_json(
            "/api/update-application?id=admin/demo-app",
            &admin,
            app.clone(),
        )
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    let a = c
        .get("/api/get-application?id=admin/demo-app", &admin)
        .await?;
    assert_eq!(a.json()["data"]["maxSessionsPerUser"], 2);
    app["maxSessionsPerUser"] = json!(-1);
    let a = c
        .post_json("/api/update-application?id=admin/demo-app", &admin, app)
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("maxSessionsPerUser"), "{}", a.text);
    let (m1, _, _, _) = sign_in(&mut c, "max").await?;
    let (m2, _, _, _) = sign_in(&mut c, "max").await?;
    let (m3, _, _, _) = sign_in(&mut c, "max").await?;
    assert_eq!(
        c.get("/api/get-account", &m1).await?.status,
        401,
        "the oldest ended"
    );
    assert_eq!(c.get("/api/get-account", &m2).await?.status, 200);
    assert_eq!(c.get("/api/get-account", &m3).await?.status, 200);

    // Forbidding a user ends every session; so does deleting one.
    let max_id = {
        let cl = iam_e2e::claims(&m3)?;
        format!("{}/{}", field(&cl, "owner"), field(&cl, "name"))
    };
    let a = c
        .post_json(
            &format!("/api/update-user?id={max_id}&columns=isForbidden"),
            &demo_admin,
            json!({"isForbidden": true}),
        )
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    assert_eq!(c.get("/api/get-account", &m2).await?.status, 401);
    assert_eq!(c.get("/api/get-account", &m3).await?.status, 401);
    let (d1, dr, _, del_id) = sign_in(&mut c, "deleted").await?;
    let a = post(&c, &format!("/api/delete-user?id={del_id}"), &demo_admin).await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    assert_eq!(c.get("/api/get-account", &d1).await?.status, 401);
    assert_eq!(c.token(&refresh_form(&dr)).await?.status, 400);

    c.assert_no_session_key_leaked().await?;
    Ok(())
}

iam_e2e::both_backends!(sessions_are_listed_and_revoked, sessions_flow);

/// Pairs of simultaneous refreshes with one refresh token, `rounds` times, sent to `a` and `b`
/// (the same node, or two): one wins, and afterwards every chain is dead — the winner's new
/// tokens too.
async fn race_refreshes(c: &mut Ctx, a: &str, b: &str, rounds: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        let (_, refresh, _, _) = sign_in(c, &format!("racer-{round}")).await?;
        let mut tasks = Vec::new();
        for base in [a, b] {
            let rec = c.rec.clone();
            let url = format!("{base}/oauth/token");
            let form = refresh_form(&refresh);
            tasks.push(tokio::spawn(async move {
                rec.send(rec.http.post(url).form(&form)).await
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let ans = t.await??;
            match ans.status {
                200 => winners.push(ans.json()),
                400 => assert_eq!(ans.json()["error"], "invalid_grant", "{}", ans.text),
                _ => anyhow::bail!("round {round}: {} {}", ans.status, ans.text),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one of two presentations of a good token wins"
        );
        for w in winners {
            let access = field(&w, "access_token");
            let deadline = Instant::now() + Duration::from_secs(1);
            for base in [a, b] {
                loop {
                    let s = status_of(c, base, &access).await?;
                    if s == 401 {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "round {round}: the winner's access token still works on {base}"
                    );
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
            let again = c.token(&refresh_form(&field(&w, "refresh_token"))).await?;
            assert_eq!(again.status, 400, "round {round}: {}", again.text);
        }
    }
    Ok(())
}

async fn refresh_race(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let base = c.iam.base.clone();
    race_refreshes(&mut c, &base, &base, 50).await
}

iam_e2e::both_backends!(racing_refreshes_leave_no_chain_alive, refresh_race);

/// Waits until `bearer` is refused by `base`, at most `within`; how long it took.
async fn refused_within(
    c: &Ctx,
    base: &str,
    bearer: &str,
    within: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if status_of(c, base, bearer).await? == 401 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < within,
            "still accepted by {base} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_share_revocations() -> anyhow::Result<()> {
    let Some(db) = Db::postgres()? else {
        return Ok(());
    };
    // Nodes behind one name share the issuer their tokens carry.
    const ORIGIN: &str = "https://iam.example.test";
    let mut c = Ctx::start(db, &[("origin", ORIGIN)]).await?;
    let mut opts = IamOptions::new(&c.db);
    opts.extra_env.push(("origin".into(), ORIGIN.into()));
    opts.wechat_api_base = c.sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    let b: Iam = Iam::start(&opts)?;
    let a = c.iam.base.clone();
    let admin = c.password_token("demo-admin", "demo-admin-pw").await?;

    // Revoked on A: refused on A at once, on B within a second; its refresh at once on both.
    let mut slowest = Duration::ZERO;
    for round in 0..5 {
        let (access, refresh, sid, _) = sign_in(&mut c, &format!("node-{round}")).await?;
        assert_eq!(
            status_of(&c, &b.base, &access).await?,
            200,
            "B reads the session"
        );
        let ans = post(&c, &format!("/api/revoke-session?sid={sid}"), &access).await?;
        assert_eq!(ans.status, 200, "{}", ans.text);
        assert_eq!(status_of(&c, &a, &access).await?, 401, "at once on A");
        let ans = c
            .rec
            .send(
                c.rec
                    .http
                    .post(b.url("/oauth/token"))
                    .form(&refresh_form(&refresh)),
            )
            .await?;
        assert_eq!(ans.status, 400, "{}", ans.text);
        slowest = slowest.max(refused_within(&c, &b.base, &access, Duration::from_secs(1)).await?);
    }
    eprintln!("a revocation on A reached B within {slowest:?}");

    // Forbidding a user on A ends their tokens on B too.
    let (access, _, _, id) = sign_in(&mut c, "node-forbidden").await?;
    assert_eq!(status_of(&c, &b.base, &access).await?, 200);
    let ans = c
        .post_json(
            &format!("/api/update-user?id={id}&columns=isForbidden"),
            &admin,
            json!({"isForbidden": true}),
        )
        .await?;
    assert_eq!(ans.json()["data"], "Affected", "{}", ans.text);
    refused_within(&c, &b.base, &access, Duration::from_secs(1)).await?;

    // A revoked application token (no session) is refused on B by its jti.
    let ans = c
        .token(&[
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", "demo-app-secret".into()),
        ])
        .await?;
    let app_token = field(&ans.json(), "access_token");
    let probe = c
        .rec
        .send(
            c.rec
                .http
                .get(b.url("/api/get-users?owner=demo"))
                .bearer_auth(&app_token),
        )
        .await?;
    assert_eq!(probe.status, 200, "{}", probe.text);
    let ans = c
        .rec
        .send(
            c.rec
                .http
                .post(c.iam.url("/oauth/revoke"))
                .basic_auth(CLIENT_ID, Some("demo-app-secret"))
                .form(&[("token", app_token.as_str())]),
        )
        .await?;
    assert_eq!(ans.status, 200, "{}", ans.text);
    refused_within(&c, &b.base, &app_token, Duration::from_secs(1)).await?;

    // Refreshes raced across the two nodes: every chain dead afterwards.
    race_refreshes(&mut c, &a, &b.base.clone(), 50).await
}
