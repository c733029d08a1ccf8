//! Audit records (SPEC §10) between real processes: every grant's success and failure recorded
//! with its action and response, writes recorded with who made them, organization
//! administrators confined to their organization, pagination totals right on both databases,
//! and no secret, code, token, session key or whole phone number in any stored record.

use std::time::{Duration, Instant};

use iam_domain::model::RecordQuery;
use iam_domain::ports::Repository;
use iam_e2e::{Db, both_backends};
use serde_json::{Value, json};

use crate::signin::{APPID, CLIENT_ID, Ctx};

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// The records of `action` (as the admin sees them), waiting up to two seconds for the audit
/// queue to write them.
async fn records_of(
    c: &Ctx,
    admin: &str,
    query: &str,
    at_least: u64,
) -> anyhow::Result<(Vec<Value>, u64)> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let a = c.get(&format!("/api/get-records?{query}"), admin).await?;
        anyhow::ensure!(a.status == 200, "get-records?{query}: {}", a.text);
        let v = a.json();
        let total = v["data2"].as_u64().unwrap_or(0);
        if total >= at_least || Instant::now() > deadline {
            return Ok((v["data"].as_array().cloned().unwrap_or_default(), total));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has(records: &[Value], action: &str, response: &str) -> bool {
    records
        .iter()
        .any(|r| r["action"] == action && r["response"] == response)
}

async fn records_flow(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let (admin, _) = c.password_tokens("demo-admin", "demo-admin-pw").await?;
    let (global, _) = c
        .password_tokens("built-in/admin", iam_e2e::ADMIN_PASSWORD)
        .await?;

    // Each grant, once right and once wrong.
    c.sign_in("rita").await?;
    let bad = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", CLIENT_ID.into()),
            ("code", "0".repeat(32)),
        ])
        .await?;
    assert_eq!(bad.status, 400);
    let (_, bob_refresh) = c.password_tokens("bob", "bob-pw").await?;
    let wrong = c
        .token(&[
            ("grant_type", "password".into()),
            ("client_id", CLIENT_ID.into()),
            ("username", "bob".into()),
            ("password", "not-bobs-password".into()),
        ])
        .await?;
    assert_eq!(wrong.status, 400);
    let refresh = |r: &str| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("refresh_token", r.to_owned()),
        ]
    };
    let next = c.token(&refresh(&bob_refresh)).await?;
    assert_eq!(next.status, 200, "{}", next.text);
    let reused = c.token(&refresh(&bob_refresh)).await?;
    assert_eq!(reused.status, 400);
    let app = c
        .token(&[
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", "demo-app-secret".into()),
        ])
        .await?;
    assert_eq!(app.status, 200);
    let app_bad = c
        .token(&[
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", "wrong-secret".into()),
        ])
        .await?;
    assert_eq!(app_bad.status, 401);
    // A write, and a §8 event.
    let upd = c
        .post_json(
            "/api/update-user?id=demo/bob&columns=displayName",
            &admin,
            json!({"displayName": "Robert"}),
        )
        .await?;
    assert_eq!(upd.status, 200, "{}", upd.text);
    let rita = c.sign_in("rita").await?;
    let pc: Value = c
        .rec
        .http
        .post(format!("{}/sim/phone-code", c.sim.base))
        .json(&json!({"appid": APPID, "user": "rita", "phone": "13800138000"}))
        .send()
        .await?
        .json()
        .await?;
    let bound = c
        .post_json(
            "/api/wechat/bind-phone",
            &rita,
            json!({"phoneCode": pc["code"]}),
        )
        .await?;
    assert_eq!(bound.status, 200, "{}", bound.text);

    let (records, total) = records_of(&c, &admin, "pageSize=100", 12).await?;
    assert!(total >= 12, "{total}: {records:?}");
    for (action, response) in [
        ("signin-wechat-miniprogram", "ok"),
        ("signin-wechat-miniprogram", "invalid_grant"),
        ("signin-password", "ok"),
        ("signin-password", "invalid_grant"),
        ("refresh-token", "ok"),
        ("refresh-token-reuse", "invalid_grant"),
        ("signin-client-credentials", "ok"),
        ("signin-client-credentials", "invalid_client"),
        ("update-user", "ok"),
        ("bind-phone", "ok"),
    ] {
        assert!(
            has(&records, action, response),
            "no {action} {response} in {records:#?}"
        );
    }
    let failed = records
        .iter()
        .find(|r| r["action"] == "signin-wechat-miniprogram" && r["response"] == "invalid_grant")
        .cloned()
        .unwrap_or_default();
    assert!(
        text(&failed, "detail").contains("\"errcode\":40029"),
        "{failed}"
    );
    assert_eq!(failed["requestUri"], "/oauth/token");
    assert_eq!(failed["statusCode"], 400);
    assert!(!text(&failed, "clientIp").is_empty());
    let update = records
        .iter()
        .find(|r| r["action"] == "update-user")
        .cloned()
        .unwrap_or_default();
    assert_eq!(update["user"], "demo-admin");
    assert_eq!(update["organization"], "demo");

    // Filters, and Casdoor's field/value, and totals that match.
    let (only, n) = records_of(
        &c,
        &admin,
        "action=signin-password&response=invalid_grant",
        1,
    )
    .await?;
    assert_eq!(n, only.len() as u64);
    assert!(only.iter().all(|r| r["action"] == "signin-password"));
    let (page1, all) = records_of(&c, &admin, "p=1&pageSize=3", 1).await?;
    let (page2, all2) = records_of(&c, &admin, "p=2&pageSize=3", 1).await?;
    assert_eq!((page1.len(), page2.len(), all), (3, 3, all2));
    assert_ne!(page1[0]["name"], page2[0]["name"]);
    let a = c.get("/api/get-records?sortField=password", &admin).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("sortField: "), "{}", a.text);
    let a = c.get("/api/get-records?from=yesterday", &admin).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = c
        .get("/api/get-records?from=2026-12-02&to=2026-12-01", &admin)
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("to: must be after from"), "{}", a.text);
    // A day is the whole day (UTC): the newest record's day holds it; the day before, none of
    // the newest records.
    let newest = page1[0]["createdTime"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let day = newest.get(..10).unwrap_or_default();
    let (that_day, _) = records_of(&c, &admin, &format!("from={day}&to={day}"), 1).await?;
    assert!(
        that_day.iter().any(|r| r["name"] == page1[0]["name"]),
        "{day}"
    );
    let a = c
        .get(&format!("/api/get-records?to={day}T00:00:00Z"), &admin)
        .await?;
    assert!(
        a.json()["data"]
            .as_array()
            .is_some_and(|v| v.iter().all(|r| r["name"] != page1[0]["name"])),
        "{}",
        a.text
    );

    // An organization's administrator sees only their organization; a user sees none.
    let a = c.get("/api/get-records?owner=other", &admin).await?;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(
        records.iter().all(|r| r["organization"] == "demo"),
        "{records:#?}"
    );
    let a = c.get("/api/get-records", &rita).await?;
    assert_eq!(a.status, 403, "{}", a.text);
    let (_, everyone) = records_of(&c, &global, "pageSize=1", 1).await?;
    assert!(
        everyone > total,
        "a global administrator sees the built-in organization's too"
    );

    // add-record, marked as added by its administrator.
    let a = c
        .post_json(
            "/api/add-record",
            &admin,
            json!({"action": "support-note", "object": "demo/bob", "detail": "called about login"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["data2"]["addedBy"], "demo/demo-admin");
    let a = c
        .post_json(
            "/api/add-record",
            &admin,
            json!({"organization": "other", "action": "x"}),
        )
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);

    // The dashboard counts what happened: this hour's sign-ins, today's, WeChat's 40029, the
    // new users and the sessions that are open.
    let a = c.get("/api/get-dashboard", &admin).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let d = a.json()["data"].clone();
    let hours = d["signinsPerHour"].as_array().cloned().unwrap_or_default();
    let days = d["signinsPerDay"].as_array().cloned().unwrap_or_default();
    assert_eq!((hours.len(), days.len()), (24, 30), "{d}");
    let this_hour = hours.last().cloned().unwrap_or_default();
    let today = days.last().cloned().unwrap_or_default();
    assert!(
        this_hour["ok"].as_u64() >= Some(4) && this_hour["failed"].as_u64() >= Some(4),
        "{this_hour}"
    );
    assert!(today["ok"].as_u64() >= this_hour["ok"].as_u64(), "{d}");
    assert!(
        d["wechatErrorsByErrcode"]["40029"].as_u64() >= Some(1),
        "{d}"
    );
    assert!(
        d["signinsByGrant"]["signin-password"]["invalid_grant"].as_u64() >= Some(1),
        "{d}"
    );
    assert!(d["signinsByResult"]["ok"].as_u64() >= Some(4), "{d}");
    let new_today = d["newUsersPerDay"]
        .as_array()
        .and_then(|a| a.last().cloned())
        .unwrap_or_default();
    assert!(new_today["count"].as_u64() >= Some(1), "{d}");
    assert!(d["activeSessions"].as_u64() >= Some(2), "{d}");
    let a = c.get("/api/get-dashboard?owner=other", &admin).await?;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = c.get("/api/get-dashboard", &rita).await?;
    assert_eq!(a.status, 403, "{}", a.text);

    // The scan: nothing a sign-in, a bind or an administrator handled is in any record.
    let store = c.db.store().await?;
    let (stored, _) = store.list_records(&RecordQuery::default()).await?;
    let mut haystack: Vec<String> = stored.iter().map(|r| format!("{r:?}")).collect();
    haystack.push(reqwest::get(c.iam.url("/metrics")).await?.text().await?);
    let mut secrets: Vec<String> = vec![
        "demo-admin-pw".into(),
        "bob-pw".into(),
        "not-bobs-password".into(),
        "demo-app-secret".into(),
        "wrong-secret".into(),
        "13800138000".into(),
        "0c6d2a1b9e8f7d6c5b4a39281706f5e4".into(),
        iam_e2e::ADMIN_PASSWORD.into(),
        bob_refresh.clone(),
        admin.clone(),
        rita.clone(),
        text(&pc, "code"),
        "0".repeat(32),
    ];
    for body in c.rec.bodies() {
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            for k in ["access_token", "refresh_token", "id_token"] {
                if let Some(t) = v[k].as_str() {
                    secrets.push(t.to_owned());
                }
            }
        }
    }
    for (appid, user) in &c.people {
        secrets.push(c.sim.session_key(appid, user).await?);
    }
    for s in secrets.iter().filter(|s| s.len() >= 6) {
        for h in &haystack {
            assert!(
                !h.contains(s.as_str()),
                "a record or the metrics hold {s:?}: {h}"
            );
        }
    }
    Ok(())
}
both_backends!(
    every_attempt_and_write_is_recorded_without_secrets,
    records_flow
);

/// Finding users (SPEC §10): pages with right totals, prefix searches, an openid of the user's
/// second mini program, Casdoor's other ways to find a user, and the bound on unpaged answers.
async fn finding_users(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[("userListMax", "3")]).await?;
    let (admin, _) = c.password_tokens("demo-admin", "demo-admin-pw").await?;
    let (global, _) = c
        .password_tokens("built-in/admin", iam_e2e::ADMIN_PASSWORD)
        .await?;
    let mut tokens = Vec::new();
    for i in 1..=5 {
        tokens.push(c.sign_in(&format!("finder-{i}")).await?);
    }
    // finder-1 adds the demo application's second mini program.
    let (code, second_openid) = c.sim.login("wxaaaaaaaaaaaaaaaa", "finder-1-b").await?;
    let a = c
        .post_json(
            "/api/wechat/bind",
            &tokens[0],
            json!({"code": code, "provider": "wx-casdoor-style"}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let set = c
        .post_json(
            "/api/update-user?id=demo/bob&columns=phone,countryCode,email",
            &admin,
            json!({"phone": "13800138000", "countryCode": "CN", "email": "bob@example.com"}),
        )
        .await?;
    assert_eq!(set.status, 200, "{}", set.text);
    let users = |q: String| {
        let (c, admin) = (&c, admin.clone());
        async move {
            let a = c
                .get(&format!("/api/get-users?owner=demo&{q}"), &admin)
                .await?;
            anyhow::ensure!(a.status == 200, "get-users?{q}: {}", a.text);
            let v = a.json();
            let names: Vec<String> = v["data"]
                .as_array()
                .map(|a| a.iter().map(|u| text(u, "name")).collect())
                .unwrap_or_default();
            anyhow::Ok((names, v["data2"].as_u64().unwrap_or(0)))
        }
    };
    // 7 users: demo-admin, bob and five WeChat users. Pages, and the total with each.
    let (p1, total) = users("p=1&pageSize=2".into()).await?;
    assert_eq!((p1.len(), total), (2, 7));
    let (p4, total4) = users("p=4&pageSize=2".into()).await?;
    assert_eq!((p4.len(), total4), (1, 7));
    let (unpaged, all) = users(String::new()).await?;
    assert_eq!(
        (unpaged.len(), all),
        (3, 7),
        "userListMax bounds an unpaged answer"
    );
    // Searches: prefixes, and an openid of any of the user's mini programs.
    let (found, n) = users("field=name&value=wechat-&pageSize=10&p=1".into()).await?;
    assert_eq!((found.len(), n), (5, 5));
    let (found, _) = users("field=displayName&value=Ni&p=1".into()).await?;
    assert_eq!(found.len(), 5);
    let (found, _) = users("field=phone&value=1380&p=1".into()).await?;
    assert_eq!(found, vec!["bob".to_owned()]);
    let (found, _) = users("field=phone&value=%2B86138&p=1".into()).await?;
    assert_eq!(found, vec!["bob".to_owned()]);
    let finder1 = text(&iam_e2e::claims(&tokens[0])?, "name");
    let (found, _) = users(format!("field=wechat&value={second_openid}")).await?;
    assert_eq!(
        found,
        vec![finder1.clone()],
        "by the second mini program's openid"
    );
    let (found, _) = users(format!("field=wechat&value={}", &second_openid[..10])).await?;
    assert!(found.is_empty(), "an openid matches exactly");
    let (found, _) = users("field=name&value=%25&p=1".into()).await?;
    assert!(found.is_empty(), "a wildcard is a character");
    let (sorted, _) = users("p=1&pageSize=7&sortField=name&sortOrder=descend".into()).await?;
    let mut expect = sorted.clone();
    expect.sort_by(|a, b| b.cmp(a));
    assert_eq!(sorted, expect);
    for (q, field) in [
        ("field=password&value=x", "field"),
        ("sortField=password", "sortField"),
        ("p=0", "p"),
    ] {
        let a = c
            .get(&format!("/api/get-users?owner=demo&{q}"), &admin)
            .await?;
        assert_eq!(a.status, 400, "{q}: {}", a.text);
        assert!(a.msg().starts_with(field), "{q}: {}", a.text);
    }
    let a = c.get("/api/get-users?owner=other", &admin).await?;
    assert_eq!(a.status, 403, "{}", a.text);

    // Casdoor's other ways to find a user.
    let count = c
        .get("/api/get-user-count?owner=demo&isOnline=", &admin)
        .await?;
    assert_eq!(count.json()["data"], 7, "{}", count.text);
    for q in [
        "phone=13800138000",
        "phone=%2B8613800138000",
        "email=bob@example.com",
    ] {
        let a = c
            .get(&format!("/api/get-user?owner=demo&{q}"), &admin)
            .await?;
        assert_eq!(a.json()["data"]["name"], "bob", "{q}: {}", a.text);
    }
    let bob_id = text(
        &c.get("/api/get-user?id=demo/bob", &admin).await?.json()["data"],
        "id",
    );
    let a = c
        .get(&format!("/api/get-user?owner=demo&userId={bob_id}"), &admin)
        .await?;
    assert_eq!(a.json()["data"]["name"], "bob");
    let a = c
        .get("/api/get-user?owner=demo&email=nobody@example.com", &admin)
        .await?;
    assert_eq!(a.json()["data"], Value::Null);
    let a = c.get("/api/get-user?owner=demo&phone=12", &admin).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = c
        .get(
            "/api/get-sorted-users?owner=demo&sorter=createdTime&limit=2",
            &admin,
        )
        .await?;
    let newest: Vec<String> = a.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| text(u, "name"))
        .collect();
    assert_eq!(newest.len(), 2, "{}", a.text);
    assert!(
        newest.iter().all(|n| n.starts_with("wechat-")),
        "the newest first: {newest:?}"
    );
    let a = c
        .get("/api/get-global-users?p=1&pageSize=50", &global)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let owners: Vec<String> = a.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| text(u, "owner"))
        .collect();
    assert!(owners.contains(&"built-in".to_owned()) && owners.contains(&"demo".to_owned()));
    let a = c.get("/api/get-global-users", &admin).await?;
    assert_eq!(a.status, 403, "{}", a.text);
    Ok(())
}
both_backends!(users_are_found_among_many, finding_users);
