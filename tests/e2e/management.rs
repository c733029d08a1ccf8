//! The management API as an operator uses it (the product page's "Step 2"), and its refusals.

use iam_e2e::Db;
use serde_json::json;

use crate::signin::{APPID, Ctx};

async fn admin_token(c: &Ctx) -> anyhow::Result<String> {
    let a = c
        .token(&[
            ("grant_type", "password".into()),
            ("client_id", c.iam.built_in_client_id()?),
            ("username", "built-in/admin".into()),
            ("password", iam_e2e::ADMIN_PASSWORD.into()),
        ])
        .await?;
    anyhow::ensure!(a.status == 200, "admin password grant: {}", a.text);
    Ok(a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn an_operator_configures_a_mini_program_and_its_users_sign_in() -> anyhow::Result<()> {
    let mut c = Ctx::start(Db::sqlite()?, &[]).await?;
    let admin = admin_token(&c).await?;

    let a = c
        .post_json_as(
            &admin,
            "/api/add-organization",
            json!({"owner": "admin", "name": "shop", "displayName": "Shop"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        c.post_json_as(&admin, "/api/add-organization", json!({"name": "shop"}))
            .await?
            .status,
        409
    );
    let a = c
        .post_json_as(&admin, "/api/add-organization", json!({"name": "bad/name"}))
        .await?;
    assert_eq!(a.status, 400);
    assert!(a.msg().starts_with("name:"), "{}", a.text);

    // A WeChat provider needs its APPID and APPSECRET.
    let a = c.post_json_as(&admin, "/api/add-provider", json!({"owner": "admin", "name": "shop-wx", "category": "OAuth", "type": "WeChat", "clientId": APPID})).await?;
    assert_eq!(a.status, 400);
    assert!(a.msg().starts_with("clientSecret:"), "{}", a.text);
    let a = c
        .post_json_as(
            &admin,
            "/api/add-provider",
            json!({"owner": "admin", "name": "shop-wx", "category": "OAuth", "type": "WeChat",
        "clientId": APPID, "clientSecret": "0c6d2a1b9e8f7d6c5b4a39281706f5e4"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);

    // The application: unknown organization, unknown provider, a taken client id are 400s.
    let app = |org: &str, provider: &str, client_id: &str| {
        json!({"owner": "admin", "name": "shop-app", "organization": org,
        "clientId": client_id, "clientSecret": "shop-secret", "enableSignUp": true,
        "providers": [{"name": provider, "canSignUp": true, "canSignIn": true}]})
    };
    let a = c
        .post_json_as(
            &admin,
            "/api/add-application",
            app("nowhere", "shop-wx", "shop0000000000000000"),
        )
        .await?;
    assert_eq!(a.status, 400);
    assert!(a.msg().contains("organization"), "{}", a.text);
    let a = c
        .post_json_as(
            &admin,
            "/api/add-application",
            app("shop", "nope", "shop0000000000000000"),
        )
        .await?;
    assert_eq!(a.status, 400);
    assert!(a.msg().contains("provider \"nope\""), "{}", a.text);
    let a = c
        .post_json_as(
            &admin,
            "/api/add-application",
            app("shop", "shop-wx", crate::signin::CLIENT_ID),
        )
        .await?;
    // Another application's client id: a clash with a stored object, as a taken name is.
    assert_eq!(a.status, 409);
    assert!(a.msg().starts_with("clientId:"), "{}", a.text);
    let store = c.db.store().await?;
    use iam_domain::ports::Repository;
    assert!(
        store.get_application("shop-app").await?.is_none(),
        "nothing half-written"
    );
    let a = c
        .post_json_as(
            &admin,
            "/api/add-application",
            app("shop", "shop-wx", "shop0000000000000000"),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);

    // Secrets come back masked; writing the mask back keeps them.
    let p = c
        .get("/api/get-provider?id=admin/shop-wx", &admin)
        .await?
        .json();
    assert_eq!(p["data"]["clientSecret"], "***");
    let mut body = p["data"].clone();
    body["displayName"] = json!("Shop mini program");
    let a = c
        .post_json_as(&admin, "/api/update-provider?id=admin/shop-wx", body)
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    let certs = c.get("/api/get-certs", &admin).await?;
    assert!(
        !certs.text.contains("PRIVATE KEY"),
        "private keys are never returned"
    );

    // A user of the new mini program signs in (the secret survived the masked update).
    let (code, _) = c.sim.login(APPID, "shopper").await?;
    c.people.push((APPID.into(), "shopper".into()));
    let a = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", "shop0000000000000000".into()),
            ("code", code),
        ])
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let shopper = a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(c.account(&shopper).await?["data"]["owner"], "shop");

    // Deleting an organization with users is refused rather than orphaning them.
    let a = c
        .post_json_as(
            &admin,
            "/api/delete-organization",
            json!({"owner": "admin", "name": "shop"}),
        )
        .await?;
    assert_eq!(a.status, 409, "{}", a.text);
    // A provider still listed by an application cannot be deleted either.
    assert_eq!(
        c.post_json_as(
            &admin,
            "/api/delete-provider",
            json!({"owner": "admin", "name": "shop-wx"})
        )
        .await?
        .status,
        409
    );
    // Nor through "deleting" the organization `admin`, which owns the shared providers but is
    // no organization: nothing is deleted.
    let a = c
        .post_json_as(&admin, "/api/delete-organization?id=admin/admin", json!({}))
        .await?;
    assert_eq!(a.json()["data"], "Unaffected", "{}", a.text);
    let p = c.get("/api/get-provider?id=admin/shop-wx", &admin).await?;
    assert_eq!(p.json()["data"]["name"], "shop-wx", "{}", p.text);

    // Only global administrators manage: a signed-in user gets 403, nobody gets 401.
    let a = c
        .post_json("/api/add-organization", &shopper, json!({"name": "mine"}))
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = c
        .rec
        .send(c.rec.http.get(c.iam.url("/api/get-organizations")))
        .await?;
    assert_eq!(a.status, 401);
    // The demo application's credentials are not global either.
    let a = c
        .rec
        .send(
            c.rec
                .http
                .get(c.iam.url("/api/get-organizations"))
                .basic_auth(crate::signin::CLIENT_ID, Some("demo-app-secret")),
        )
        .await?;
    assert_eq!(a.status, 403);
    // app-built-in's credentials are.
    let built_in = store
        .get_application("app-built-in")
        .await?
        .ok_or_else(|| anyhow::anyhow!("app-built-in"))?;
    let a = c
        .rec
        .send(c.rec.http.get(c.iam.url(&format!(
            "/api/get-organizations?clientId={}&clientSecret={}",
            built_in.client_id,
            built_in.client_secret.expose()
        ))))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json()["data"].as_array().is_some_and(|o| o.len() >= 3));

    // Provider secrets and private keys never reach a log line.
    let key = store
        .get_cert("cert-built-in")
        .await?
        .ok_or_else(|| anyhow::anyhow!("cert"))?;
    let key_line = key
        .private_key
        .expose()
        .lines()
        .nth(1)
        .unwrap_or("-")
        .to_owned();
    for l in c.iam.proc.lines() {
        assert!(
            !l.contains("0c6d2a1b9e8f7d6c5b4a39281706f5e4") && !l.contains(&key_line),
            "{l}"
        );
    }
    c.assert_no_session_key_leaked().await
}

/// `openapi/openapi.json` and the server agree: every described operation is served (a request
/// without credentials is refused or answered, never 404/405), unknown `/api` routes answer
/// Casdoor's JSON envelope, and a wrong method is 405 with `Allow`. The served routes are the described ones by construction: `app()`
/// routes only the operations of the one OpenAPI service (plus the document and its UI).
#[tokio::test]
async fn every_described_operation_is_served() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[]).await?;
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        iam_e2e::workspace_root().join("openapi/openapi.json"),
    )?)?;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 40, "{} paths", paths.len());
    for (path, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            let url = c.iam.url(path);
            let req = match method.as_str() {
                "get" => c.rec.http.get(url),
                "post" => c.rec.http.post(url).body(""),
                other => panic!("unexpected method {other} of {path}"),
            };
            let a = c.rec.send(req).await?;
            assert!(
                a.status != 404 && a.status != 405,
                "{method} {path} is described but answered {}: {}",
                a.status,
                a.text
            );
        }
    }
    let a = c.get("/api/no-such-route", "x").await?;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json()["status"],
        "error",
        "Casdoor's SDKs decode this as JSON"
    );
    // A described route called with another method: 405 naming the methods it takes, in the
    // words of its family.
    let wrong = [
        ("/api/get-account", "POST", "GET", "msg"),
        ("/api/add-user", "GET", "POST", "msg"),
        ("/oauth/token", "GET", "POST", "error_description"),
        (
            "/login/oauth/access_token",
            "PUT",
            "POST",
            "error_description",
        ),
        ("/healthz", "POST", "GET", ""),
    ];
    for (path, method, allow, field) in wrong {
        let req = c
            .rec
            .http
            .request(method.parse().expect("method"), c.iam.url(path));
        let a = c.rec.send(req).await?;
        assert_eq!(a.status, 405, "{method} {path}: {}", a.text);
        assert_eq!(a.headers["allow"], allow, "{method} {path}");
        if !field.is_empty() {
            let said = a.json()[field].as_str().unwrap_or_default().to_owned();
            assert!(said.contains(&format!("takes {allow}")), "{path}: {said}");
        }
    }
    // A body past the 64 KiB limit is 413 on /api, named in the envelope.
    let big = json!({"owner": "demo", "name": "big", "bio": "a".repeat(70_000)});
    let admin = admin_token(&c).await?;
    let a = c.post_json_as(&admin, "/api/add-user", big).await?;
    assert_eq!(a.status, 413, "{}", a.text);
    assert!(a.msg().contains("larger than 64 KiB"), "{}", a.msg());
    Ok(())
}

#[tokio::test]
async fn casdoor_answers_where_its_sdks_look() -> anyhow::Result<()> {
    let mut c = Ctx::start(Db::sqlite()?, &[]).await?;
    let admin = admin_token(&c).await?;
    let user = c.sign_in("casdoor-shapes").await?;

    // Authorization comes before the body: a mini program user learns nothing of a
    // management route's fields.
    for route in ["/api/add-provider", "/api/add-user", "/api/delete-user"] {
        let a = c.post_json_as(&user, route, json!({"name": 5})).await?;
        assert_eq!(a.status, 403, "{route}: {}", a.text);
    }

    // A shared provider (owned by admin) is listed with an organization's own.
    let a = c
        .post_json_as(
            &admin,
            "/api/add-provider",
            json!({"owner": "demo", "name": "demo-only", "category": "OAuth", "type": "GitHub"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = c.get("/api/get-providers?owner=demo", &admin).await?;
    let owners: Vec<String> = a.json()["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["owner"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(owners.contains(&"demo/demo-only".to_owned()), "{owners:?}");
    assert!(owners.iter().any(|o| o.starts_with("admin/")), "{owners:?}");

    for route in [
        "/api/get-organization-names",
        "/api/get-organization-applications?organization=demo",
        "/api/get-global-certs",
    ] {
        let a = c.get(route, &admin).await?;
        assert_eq!(a.status, 200, "{route}: {}", a.text);
        assert!(
            !a.json()["data"].as_array().expect("list").is_empty(),
            "{route}"
        );
    }

    // A set password shows as *** (Casdoor's answer), never the hash.
    let a = c.get("/api/get-user?id=built-in/admin", &admin).await?;
    assert_eq!(a.json()["data"]["password"], "***");

    // Links are http(s) wherever they are stored.
    let a = c
        .post_json_as(
            &user,
            "/api/update-user",
            json!({"homepage": "javascript:alert(1)"}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("homepage"), "{}", a.msg());
    let a = c
        .post_json_as(
            &user,
            "/api/update-user",
            json!({"displayName": "a\u{202E}b"}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    // An emoji sequence's joiner is writing, not hiding: it is kept.
    let a = c
        .post_json_as(
            &user,
            "/api/update-user",
            json!({"displayName": "小明👨\u{200D}💻"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);

    // A new name may not only look like another one (`ad\u{200B}min` beside `admin`); a name
    // stored before that rule stays addressable.
    for (route, body) in [
        (
            "/api/add-user",
            json!({"owner": "demo", "name": "ad\u{200B}min"}),
        ),
        (
            "/api/add-organization",
            json!({"owner": "admin", "name": "de\u{202E}mo"}),
        ),
        (
            "/api/add-application",
            json!({"owner": "admin", "name": "demo\u{2060}-app", "organization": "demo"}),
        ),
    ] {
        let a = c.post_json_as(&admin, route, body).await?;
        assert_eq!(a.status, 400, "{route}: {}", a.text);
        assert!(a.msg().starts_with("name: "), "{route}: {}", a.msg());
    }
    let a = c
        .post_json_as(
            &admin,
            "/api/add-user",
            json!({"owner": "demo", "name": "spoof-me"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    crate::upgrade::execute(
        &c.db,
        "UPDATE users SET name = 'spoof\u{200B}me' WHERE owner = 'demo' AND name = 'spoof-me'",
    )?;
    let a = c
        .get("/api/get-user?id=demo/spoof\u{200B}me", &admin)
        .await?;
    assert_eq!(a.json()["data"]["name"], "spoof\u{200B}me", "{}", a.text);

    // A row written before today's rules (a javascript: homepage, an invisible character in
    // a name) reads back as stored, and an SDK's update_user (get the user, change one
    // field, send the whole object back) changes that field and keeps the rest.
    let account = c.get("/api/get-account", &user).await?.json()["data"].clone();
    let name = account["name"].as_str().unwrap_or_default().to_owned();
    crate::upgrade::execute(
        &c.db,
        &format!(
            "UPDATE users SET homepage = 'javascript:alert(1)', display_name = 'old\u{200B}nick' \
             WHERE owner = 'demo' AND name = '{name}'"
        ),
    )?;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await; // the user cache's TTL
    let id = format!("demo/{name}");
    let mut stored = c
        .get(&format!("/api/get-user?id={id}"), &admin)
        .await?
        .json()["data"]
        .clone();
    assert_eq!(stored["homepage"], "javascript:alert(1)", "{stored}");
    assert_eq!(stored["displayName"], "old\u{200B}nick", "{stored}");
    stored["bio"] = json!("sent back whole");
    let a = c
        .post_json_as(&admin, &format!("/api/update-user?id={id}"), stored)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let after = c
        .get(&format!("/api/get-user?id={id}"), &admin)
        .await?
        .json()["data"]
        .clone();
    assert_eq!(after["bio"], "sent back whole", "{after}");
    assert_eq!(
        after["homepage"], "javascript:alert(1)",
        "kept as stored: {after}"
    );
    assert_eq!(
        after["displayName"], "old\u{200B}nick",
        "kept as stored: {after}"
    );
    // So does an organization's and an application's, the way Casdoor's SDKs update them.
    crate::upgrade::execute(
        &c.db,
        "UPDATE organizations SET display_name = 'evil\u{202E}gpj', default_avatar = 'logo.png' \
         WHERE name = 'demo'; \
         UPDATE applications SET display_name = 'old\u{200B}app' WHERE name = 'demo-app';",
    )?;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mut org = c
        .get("/api/get-organization?id=admin/demo", &admin)
        .await?
        .json()["data"]
        .clone();
    assert_eq!(org["displayName"], "evil\u{202E}gpj", "{org}");
    org["websiteUrl"] = json!("https://shop.example");
    let a = c
        .post_json_as(&admin, "/api/update-organization?id=admin/demo", org)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let org = c
        .get("/api/get-organization?id=admin/demo", &admin)
        .await?
        .json()["data"]
        .clone();
    assert_eq!(org["websiteUrl"], "https://shop.example", "{org}");
    assert_eq!(
        org["displayName"], "evil\u{202E}gpj",
        "kept as stored: {org}"
    );
    assert_eq!(org["defaultAvatar"], "logo.png", "kept as stored: {org}");
    let mut app = c
        .get("/api/get-application?id=admin/demo-app", &admin)
        .await?
        .json()["data"]
        .clone();
    app["description"] = json!("sent back whole");
    let a = c
        .post_json_as(&admin, "/api/update-application?id=admin/demo-app", app)
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    let a = c
        .post_json_as(
            &admin,
            "/api/update-organization?id=admin/demo",
            json!({"owner": "admin", "name": "demo", "displayName": "new\u{202E}name"}),
        )
        .await?;
    assert_eq!(
        a.status, 400,
        "a changed name meets today's rule: {}",
        a.text
    );
    assert!(a.msg().starts_with("displayName"), "{}", a.msg());

    // A changed value meets today's rules.
    let a = c
        .post_json_as(
            &admin,
            &format!("/api/update-user?id={id}"),
            json!({"homepage": "javascript:alert(2)"}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);

    // Casdoor's fields without a column of ours are kept and given back, never dropped: an
    // application updated the way Casdoor's SDKs do it (get, change, send the whole object).
    let mut app = c
        .get("/api/get-application?id=admin/demo-app", &admin)
        .await?
        .json()["data"]
        .clone();
    app["description"] = json!("Our shop's mini program");
    let a = c
        .post_json_as(&admin, "/api/update-application?id=admin/demo-app", app)
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    let app = c
        .get("/api/get-application?id=admin/demo-app", &admin)
        .await?
        .json();
    assert_eq!(app["data"]["description"], "Our shop's mini program");
    assert_eq!(
        app["data"]["clientSecret"], "***",
        "our own fields are still ours"
    );
    // A user's too: `tag` and `score` kept on add and on an administrator's update, an empty
    // value removing one; what Casdoor computes (`roles`) and what a user may not change of
    // themself are not kept.
    let a = c
        .post_json_as(
            &admin,
            "/api/add-user",
            json!({"owner": "demo", "name": "tagged", "tag": "vip", "score": 7, "roles": ["x"],
                   "properties": {"plan": "gold", "wechatUnionId": ""}}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let tagged_path = "/api/get-user?id=demo/tagged";
    let tagged = c.get(tagged_path, &admin).await?.json()["data"].clone();
    assert_eq!(
        (&tagged["tag"], &tagged["score"]),
        (&json!("vip"), &json!(7))
    );
    assert_eq!(tagged["roles"], json!([]), "computed, not kept: {tagged}");
    assert_eq!(
        tagged["properties"],
        json!({"plan": "gold", "wechatOpenId": "", "wechatUnionId": ""})
    );
    let mut changed = tagged.clone();
    changed["tag"] = json!("");
    changed["properties"] = json!({"wechatOpenId": "", "wechatUnionId": ""});
    changed["karma"] = json!(3);
    let a = c
        .post_json_as(&admin, "/api/update-user?id=demo/tagged", changed)
        .await?;
    assert_eq!(a.json()["data"], "Affected", "{}", a.text);
    let tagged = c.get(tagged_path, &admin).await?.json()["data"].clone();
    assert_eq!(tagged["tag"], "", "removed: {tagged}");
    assert_eq!(tagged["properties"].get("plan"), None, "{tagged}");
    assert_eq!((&tagged["score"], &tagged["karma"]), (&json!(7), &json!(3)));
    let a = c
        .post_json_as(&user, "/api/update-user", json!({"tag": "self-made"}))
        .await?;
    assert_eq!(a.json()["data"], "Unaffected", "{}", a.text);
    let a = c
        .post_json_as(
            &admin,
            "/api/add-organization",
            json!({"name": "whole", "websiteUrl": "https://shop.example.com",
                   "passwordOptions": ["AtLeast6"], "initScore": 2000, "languages": []}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let org = c
        .get("/api/get-organization?id=admin/whole", &admin)
        .await?
        .json();
    assert_eq!(org["data"]["websiteUrl"], "https://shop.example.com");
    assert_eq!(org["data"]["passwordOptions"], json!(["AtLeast6"]));
    assert_eq!(org["data"]["initScore"], 2000);

    // A link kept without a column is an http(s) URL, as the columns' URLs are; an
    // application's redirect URIs never run code.
    for (path, body, field) in [
        (
            "/api/add-organization",
            json!({"name": "linked", "websiteUrl": "javascript:alert(1)"}),
            "websiteUrl",
        ),
        (
            "/api/add-application",
            json!({"name": "linked", "organization": "demo", "homepageUrl": "data:text/html,x"}),
            "homepageUrl",
        ),
        (
            "/api/add-application",
            json!({"name": "linked", "organization": "demo",
                   "redirectUris": ["https://ok.example/cb", "javascript:alert(1)"]}),
            "redirectUris",
        ),
        (
            "/api/update-user?id=demo/tagged",
            json!({"permanentAvatar": "javascript:alert(1)"}),
            "permanentAvatar",
        ),
    ] {
        let a = c.post_json_as(&admin, path, body).await?;
        assert_eq!(a.status, 400, "{path}: {}", a.text);
        assert!(a.msg().starts_with(field), "{path}: {}", a.msg());
    }
    let a = c
        .get("/api/get-organization?id=admin/linked", &admin)
        .await?;
    assert!(
        a.json()["data"].is_null(),
        "nothing half-written: {}",
        a.text
    );

    // A wrong type is a 400 naming the field.
    let a = c
        .post_json_as(
            &admin,
            "/api/add-organization",
            json!({"name": "x", "displayName": 5}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("displayName"), "{}", a.msg());
    Ok(())
}
