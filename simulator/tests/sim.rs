//! The simulator behaves like api.weixin.qq.com: parameter order, errcodes, formats, code
//! lifetime and single use, tokens, phone numbers, checkSession, faults, clock and stats.

use std::sync::Arc;

use aws_lc_rs::hmac;
use poem::test::{TestClient, TestResponse};
use serde_json::{Value, json};
use wechat_sim::{DEFAULT_APPID, DEFAULT_SECRET, Sim};

type Client = TestClient<poem::endpoint::BoxEndpoint<'static, poem::Response>>;

fn client() -> (Client, Arc<Sim>) {
    let sim = Arc::new(Sim::new(60, "text/plain".into()));
    sim.add_app(DEFAULT_APPID, DEFAULT_SECRET, None);
    sim.add_app("wxaaaaaaaaaaaaaaaa", "secret-a", Some("platform-1".into()));
    sim.add_app("wxbbbbbbbbbbbbbbbb", "secret-b", Some("platform-1".into()));
    let ep = poem::EndpointExt::boxed(poem::EndpointExt::map_to_response(wechat_sim::routes(
        sim.clone(),
    )));
    (TestClient::new(ep), sim)
}

async fn json_of(resp: TestResponse) -> Value {
    let text = resp.0.into_body().into_string().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn login(c: &Client, appid: &str, user: &str) -> Value {
    let r = c
        .post("/sim/login")
        .body_json(&json!({"appid": appid, "user": user}))
        .send()
        .await;
    r.assert_status_is_ok();
    json_of(r).await
}

async fn exchange(c: &Client, appid: &str, secret: &str, code: &str) -> Value {
    let r = c
        .get("/sns/jscode2session")
        .query("appid", &appid)
        .query("secret", &secret)
        .query("js_code", &code)
        .query("grant_type", &"authorization_code")
        .query("access_token", &"ignored-extra-parameter")
        .send()
        .await;
    r.assert_status_is_ok();
    json_of(r).await
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or(0)
}

fn assert_rid(v: &Value, prefix: &str) {
    let msg = v["errmsg"].as_str().unwrap();
    let (text, rid) = msg
        .split_once(", rid: ")
        .unwrap_or_else(|| panic!("no rid in {msg:?}"));
    assert_eq!(text, prefix);
    assert_eq!(rid.len(), 26, "{rid}");
}

#[tokio::test]
async fn parameter_checks_come_in_wechats_order() {
    let (c, _) = client();
    type Case<'a> = (&'a [(&'a str, &'a str)], i64, &'a str);
    let cases: &[Case] = &[
        (&[], 41002, "appid missing"),
        (&[("appid", DEFAULT_APPID)], 41004, "appsecret missing"),
        (
            &[("appid", DEFAULT_APPID), ("secret", "x")],
            41008,
            "missing code",
        ),
        (
            &[
                ("appid", DEFAULT_APPID),
                ("secret", "x"),
                ("js_code", "c"),
                ("grant_type", "password"),
            ],
            40002,
            "invalid grant_type",
        ),
        (
            &[
                ("appid", "wx0000000000000000"),
                ("secret", "x"),
                ("js_code", "c"),
            ],
            40013,
            "invalid appid",
        ),
        (
            &[
                ("appid", DEFAULT_APPID),
                ("secret", "wrong"),
                ("js_code", "c"),
            ],
            40125,
            "invalid appsecret",
        ),
        (
            &[
                ("appid", DEFAULT_APPID),
                ("secret", DEFAULT_SECRET),
                ("js_code", "nope"),
            ],
            40029,
            "invalid code",
        ),
    ];
    for (params, code, msg) in cases {
        let mut req = c.get("/sns/jscode2session");
        for (k, v) in *params {
            req = req.query(*k, v);
        }
        let r = req.send().await;
        r.assert_status_is_ok();
        r.assert_header("content-type", "text/plain");
        let v = json_of(r).await;
        assert_eq!(errcode(&v), *code, "{params:?} → {v}");
        assert_rid(&v, msg);
    }
}

#[tokio::test]
async fn a_code_is_exchanged_once_for_a_stable_openid() {
    let (c, sim) = client();
    let l = login(&c, DEFAULT_APPID, "alice").await;
    let code = l["code"].as_str().unwrap();
    assert_eq!(code.len(), 32);
    assert!(code.starts_with('0'));
    assert!(
        l.get("unionid").is_none(),
        "an app without open platform has no unionid"
    );

    let r = c
        .get("/sns/jscode2session")
        .query("appid", &DEFAULT_APPID)
        .query("secret", &DEFAULT_SECRET)
        .query("js_code", &code)
        .query("grant_type", &"authorization_code")
        .send()
        .await;
    r.assert_header("content-type", "text/plain");
    let text = r.0.into_body().into_string().await.unwrap();
    assert!(
        text.starts_with("{\"session_key\":"),
        "session_key first: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("errcode").is_none(), "no errcode on success");
    assert!(v.get("unionid").is_none());
    assert_eq!(v["openid"], l["openid"]);
    assert_eq!(
        v["session_key"].as_str(),
        sim.session_key(DEFAULT_APPID, "alice").as_deref()
    );

    let again = exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, code).await;
    assert_eq!(errcode(&again), 40163);
    assert_rid(&again, "code been used");

    let l2 = login(&c, DEFAULT_APPID, "alice").await;
    assert_eq!(l2["openid"], l["openid"], "openid stable per (appid, user)");
    let v2 = exchange(
        &c,
        DEFAULT_APPID,
        DEFAULT_SECRET,
        l2["code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        v2["session_key"], v["session_key"],
        "no rotation within the minimum age"
    );
}

#[tokio::test]
async fn unionids_are_per_open_platform() {
    let (c, _) = client();
    let a = login(&c, "wxaaaaaaaaaaaaaaaa", "bob").await;
    let b = login(&c, "wxbbbbbbbbbbbbbbbb", "bob").await;
    assert_ne!(a["openid"], b["openid"]);
    assert_eq!(a["unionid"], b["unionid"]);
    let v = exchange(
        &c,
        "wxaaaaaaaaaaaaaaaa",
        "secret-a",
        a["code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(v["unionid"], a["unionid"]);
}

#[tokio::test]
async fn codes_expire_belong_to_one_app_and_risky_users_are_blocked() {
    let (c, _) = client();
    let l = login(&c, DEFAULT_APPID, "carol").await;
    let foreign = exchange(
        &c,
        "wxaaaaaaaaaaaaaaaa",
        "secret-a",
        l["code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(errcode(&foreign), 40029);
    c.post("/sim/clock")
        .body_json(&json!({"advanceSecs": 301}))
        .send()
        .await
        .assert_status_is_ok();
    let expired = exchange(
        &c,
        DEFAULT_APPID,
        DEFAULT_SECRET,
        l["code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(errcode(&expired), 40029);

    c.post("/sim/risky")
        .body_json(&json!({"appid": DEFAULT_APPID, "user": "mallory"}))
        .send()
        .await
        .assert_status_is_ok();
    let m = login(&c, DEFAULT_APPID, "mallory").await;
    let blocked = exchange(
        &c,
        DEFAULT_APPID,
        DEFAULT_SECRET,
        m["code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(errcode(&blocked), 40226);
    assert_rid(&blocked, "code blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_exchanges_of_one_code_one_wins() {
    let (c, _) = client();
    let c = Arc::new(c);
    for round in 0..20 {
        let l = login(&c, DEFAULT_APPID, &format!("racer{round}")).await;
        let code = l["code"].as_str().unwrap().to_owned();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                let code = code.clone();
                tokio::spawn(
                    async move { exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, &code).await },
                )
            })
            .collect();
        let mut ok = 0;
        let mut used = 0;
        for t in tasks {
            match errcode(&t.await.unwrap()) {
                0 => ok += 1,
                40163 => used += 1,
                e => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, used), (1, 7));
    }
}

#[tokio::test]
async fn faults_apply_per_api_and_count() {
    let (c, sim) = client();
    c.post("/sim/faults")
        .body_json(&json!({"api": "/sns/jscode2session", "errcode": -1, "count": 2}))
        .send()
        .await
        .assert_status_is_ok();
    let l = login(&c, DEFAULT_APPID, "dave").await;
    let code = l["code"].as_str().unwrap();
    for _ in 0..2 {
        let v = exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, code).await;
        assert_eq!(errcode(&v), -1);
        assert_rid(&v, "system error");
    }
    let v = exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, code).await;
    assert_eq!(errcode(&v), 0, "a busy answer did not use the code up: {v}");

    c.post("/sim/faults")
        .body_json(&json!({"httpStatus": 502, "count": 1}))
        .send()
        .await
        .assert_status_is_ok();
    let r = c.get("/sns/jscode2session").send().await;
    r.assert_status(poem::http::StatusCode::BAD_GATEWAY);

    c.post("/sim/faults")
        .body_json(&json!({"malformed": true, "count": 1}))
        .send()
        .await
        .assert_status_is_ok();
    let r = c.get("/sns/jscode2session").send().await;
    let text = r.0.into_body().into_string().await.unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "malformed body: {text}"
    );

    c.post("/sim/faults")
        .body_json(&json!({"latencyMs": 150, "count": 1}))
        .send()
        .await
        .assert_status_is_ok();
    let started = std::time::Instant::now();
    let v = exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, "unknown").await;
    assert!(started.elapsed().as_millis() >= 150);
    assert_eq!(
        errcode(&v),
        40029,
        "latency alone does not change the answer"
    );

    c.post("/sim/faults")
        .body_json(&json!({"errcode": 45011}))
        .send()
        .await
        .assert_status_is_ok();
    for _ in 0..3 {
        assert_eq!(
            errcode(&exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, "x").await),
            45011,
            "no count: until cleared"
        );
    }
    c.delete("/sim/faults").send().await.assert_status_is_ok();
    assert_eq!(
        errcode(&exchange(&c, DEFAULT_APPID, DEFAULT_SECRET, "x").await),
        40029
    );

    let bad = c
        .post("/sim/faults")
        .body_json(&json!({"api": "token"}))
        .send()
        .await;
    bad.assert_status(poem::http::StatusCode::BAD_REQUEST);

    let stats = sim.stats();
    assert_eq!(stats["errcodes"]["jscode2session"]["-1"], 2);
    assert_eq!(stats["errcodes"]["jscode2session"]["45011"], 3);
    assert!(stats["calls"]["jscode2session"].as_u64().unwrap() >= 10);
    let r = c.get("/sim/stats").send().await;
    r.assert_status_is_ok();
}

async fn get_token(c: &Client) -> Value {
    let r = c
        .get("/cgi-bin/token")
        .query("grant_type", &"client_credential")
        .query("appid", &DEFAULT_APPID)
        .query("secret", &DEFAULT_SECRET)
        .send()
        .await;
    json_of(r).await
}

/// getuserphonenumber for erin, who pressed the button in these tests.
async fn phone(c: &Client, token: &str, code: &str) -> Value {
    let openid = login(c, DEFAULT_APPID, "erin").await["openid"].clone();
    phone_as(c, token, &json!({"code": code, "openid": openid})).await
}

async fn phone_as(c: &Client, token: &str, body: &Value) -> Value {
    let r = c
        .post("/wxa/business/getuserphonenumber")
        .query("access_token", &token)
        .body_json(body)
        .send()
        .await;
    json_of(r).await
}

#[tokio::test]
async fn a_phone_code_belongs_to_the_user_who_pressed_the_button() {
    let (c, _) = client();
    let token = get_token(&c).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mint = || async {
        json_of(
            c.post("/sim/phone-code")
                .body_json(&json!({"appid": DEFAULT_APPID, "user": "erin", "phone": "13800138000"}))
                .send()
                .await,
        )
        .await["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mallory = login(&c, DEFAULT_APPID, "mallory").await["openid"].clone();
    let code = mint().await;
    let v = phone_as(&c, &token, &json!({"code": code, "openid": mallory})).await;
    assert_eq!(errcode(&v), 40029, "another user's openid: {v}");
    assert_eq!(
        errcode(&phone(&c, &token, &code).await),
        40029,
        "and the code is spent"
    );
    let code = mint().await;
    let v = phone_as(&c, &token, &json!({"code": code})).await;
    assert_eq!(errcode(&v), 40029, "no openid: {v}");
    let code = mint().await;
    assert_eq!(errcode(&phone(&c, &token, &code).await), 0, "erin's own");
}

/// AES-128-CBC + PKCS#7 with the base64 session key, as a mini program server opens it.
fn open_sealed(key: &str, data: &str, iv: &str) -> Option<Value> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dec = cbc::Decryptor::<aes::Aes128>::new_from_slices(
        &b64.decode(key).ok()?,
        &b64.decode(iv).ok()?,
    )
    .ok()?;
    let plain = dec
        .decrypt_padded_vec_mut::<Pkcs7>(&b64.decode(data).ok()?)
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

#[tokio::test]
async fn encrypted_data_is_sealed_under_the_current_key_until_it_is_reset() {
    let (c, sim) = client();
    let openid = login(&c, DEFAULT_APPID, "erin").await["openid"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = sim.session_key(DEFAULT_APPID, "erin").unwrap();
    let sealed = json_of(
        c.post("/sim/encrypted-data")
            .body_json(&json!({"appid": DEFAULT_APPID, "user": "erin", "data": {"stepInfoList": [{"step": 100}]}}))
            .send()
            .await,
    )
    .await;
    let (data, iv) = (
        sealed["encryptedData"].as_str().unwrap(),
        sealed["iv"].as_str().unwrap(),
    );
    let v = open_sealed(&key, data, iv).expect("opens with the current key");
    assert_eq!(v["stepInfoList"][0]["step"], 100);
    assert_eq!(v["watermark"]["appid"], DEFAULT_APPID);
    assert!(v["watermark"]["timestamp"].as_i64().unwrap() > 0);

    let token = get_token(&c).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sign = |k: &str| {
        hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k.as_bytes()), b"").as_ref())
    };
    let call = |api: &'static str, sig: String| {
        let (c, token, openid) = (&c, token.clone(), openid.clone());
        async move {
            json_of(
                c.get(api)
                    .query("access_token", &token)
                    .query("openid", &openid)
                    .query("signature", &sig)
                    .query("sig_method", &"hmac_sha256")
                    .send()
                    .await,
            )
            .await
        }
    };
    assert_eq!(errcode(&call("/wxa/checksession", sign(&key)).await), 0);
    let reset = call("/wxa/resetusersessionkey", sign(&key)).await;
    assert_eq!(errcode(&reset), 0, "{reset}");
    assert_eq!(reset["openid"], openid.as_str());
    let new_key = reset["session_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert_eq!(
        errcode(&call("/wxa/checksession", sign(&key)).await),
        87009,
        "the old key is dead at once"
    );
    assert_eq!(errcode(&call("/wxa/checksession", sign(&new_key)).await), 0);
    assert_eq!(
        errcode(&call("/wxa/resetusersessionkey", sign(&key)).await),
        87009,
        "a reset must be signed with the current key"
    );
    let sealed = json_of(
        c.post("/sim/encrypted-data")
            .body_json(&json!({"appid": DEFAULT_APPID, "user": "erin", "data": {"a": 1}}))
            .send()
            .await,
    )
    .await;
    let (data, iv) = (
        sealed["encryptedData"].as_str().unwrap(),
        sealed["iv"].as_str().unwrap(),
    );
    assert!(open_sealed(&new_key, data, iv).is_some());
    assert!(
        open_sealed(&key, data, iv).is_none(),
        "the old key does not open new data"
    );
    let r = c
        .post("/sim/encrypted-data")
        .body_json(&json!({"appid": DEFAULT_APPID, "user": "erin", "data": [1]}))
        .send()
        .await;
    r.assert_status(poem::http::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn access_tokens_rotate_with_five_minutes_of_overlap() {
    let (c, _) = client();
    let t1 = get_token(&c).await;
    assert_eq!(t1["expires_in"], 7200);
    let t1 = t1["access_token"].as_str().unwrap().to_owned();
    assert!(t1.len() > 130);
    let t2 = get_token(&c).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(t1, t2);
    let pc = |phone_no: &str| json!({"appid": DEFAULT_APPID, "user": "erin", "phone": phone_no});
    let code = json_of(
        c.post("/sim/phone-code")
            .body_json(&pc("13800138000"))
            .send()
            .await,
    )
    .await;
    let v = phone(&c, &t1, code["code"].as_str().unwrap()).await;
    assert_eq!(
        errcode(&v),
        0,
        "the old token still works during the overlap: {v}"
    );
    assert_eq!(
        v["phone_info"]["countryCode"], "86",
        "countryCode is a string"
    );
    assert_eq!(v["phone_info"]["purePhoneNumber"], "13800138000");
    assert_eq!(v["phone_info"]["watermark"]["appid"], DEFAULT_APPID);
    let again = phone(&c, &t2, code["code"].as_str().unwrap()).await;
    assert_eq!(errcode(&again), 40029, "phone codes are single use");

    c.post("/sim/clock")
        .body_json(&json!({"advanceSecs": 301}))
        .send()
        .await
        .assert_status_is_ok();
    let code = json_of(
        c.post("/sim/phone-code")
            .body_json(&pc("13800138001"))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        errcode(&phone(&c, &t1, code["code"].as_str().unwrap()).await),
        40001,
        "not latest"
    );
    assert_eq!(
        errcode(&phone(&c, &t2, code["code"].as_str().unwrap()).await),
        0
    );
    let code = json_of(
        c.post("/sim/phone-code")
            .body_json(&pc("13800138002"))
            .send()
            .await,
    )
    .await;
    c.post("/sim/clock")
        .body_json(&json!({"advanceSecs": 7200}))
        .send()
        .await
        .assert_status_is_ok();
    assert_eq!(
        errcode(&phone(&c, &t2, code["code"].as_str().unwrap()).await),
        42001,
        "expired"
    );
    assert_eq!(errcode(&phone(&c, "", "x").await), 41001);
    let r = c
        .post("/wxa/business/getuserphonenumber")
        .query("access_token", &t2)
        .body("code=x")
        .send()
        .await;
    assert!([47001, 42001].contains(&errcode(&json_of(r).await)));
}

#[tokio::test]
async fn stable_tokens_are_stable_until_forced() {
    let (c, _) = client();
    let body = |force: bool| json!({"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET, "force_refresh": force});
    let a = json_of(
        c.post("/cgi-bin/stable_token")
            .body_json(&body(false))
            .send()
            .await,
    )
    .await;
    let b = json_of(
        c.post("/cgi-bin/stable_token")
            .body_json(&body(false))
            .send()
            .await,
    )
    .await;
    assert_eq!(a["access_token"], b["access_token"]);
    let f = json_of(
        c.post("/cgi-bin/stable_token")
            .body_json(&body(true))
            .send()
            .await,
    )
    .await;
    assert_ne!(f["access_token"], a["access_token"]);
    let bad = json_of(c.post("/cgi-bin/stable_token").body("appid=x").send().await).await;
    assert_eq!(errcode(&bad), 47001);
    let wrong = json!({"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": "no"});
    assert_eq!(
        errcode(
            &json_of(
                c.post("/cgi-bin/stable_token")
                    .body_json(&wrong)
                    .send()
                    .await
            )
            .await
        ),
        40125
    );
}

#[tokio::test]
async fn checksession_verifies_the_hmac_of_the_current_session_key() {
    let (c, sim) = client();
    let l = login(&c, DEFAULT_APPID, "frank").await;
    let token = get_token(&c).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = sim.session_key(DEFAULT_APPID, "frank").unwrap();
    let sig =
        hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()), b"").as_ref());
    let check = |sig: String, method: &'static str| {
        c.get("/wxa/checksession")
            .query("access_token", &token)
            .query("openid", &l["openid"].as_str().unwrap().to_owned())
            .query("signature", &sig)
            .query("sig_method", &method)
            .send()
    };
    let ok = json_of(check(sig.clone(), "hmac_sha256").await).await;
    assert_eq!(ok, json!({"errcode": 0, "errmsg": "ok"}));
    assert_eq!(
        errcode(&json_of(check("00".repeat(32), "hmac_sha256").await).await),
        87009
    );
    assert_eq!(errcode(&json_of(check(sig, "md5").await).await), 87008);
}

#[tokio::test]
async fn control_api_refuses_bad_input_clearly() {
    let (c, _) = client();
    let r = c
        .post("/sim/login")
        .body_json(&json!({"appid": "wxnope", "user": "x"}))
        .send()
        .await;
    r.assert_status(poem::http::StatusCode::BAD_REQUEST);
    let r = c.post("/sim/login").body("not json").send().await;
    r.assert_status(poem::http::StatusCode::BAD_REQUEST);
    let r = c
        .post("/sim/apps")
        .body_json(&json!({"appid": "wxnew0000000000000", "secret": "s", "openPlatformId": "p"}))
        .send()
        .await;
    r.assert_status_is_ok();
    assert!(login(&c, "wxnew0000000000000", "x").await["unionid"].is_string());
}
