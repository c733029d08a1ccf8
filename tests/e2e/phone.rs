//! Phone numbers and linked WeChat identities (SPEC §8) between the real `iam` and the real
//! `wechat-sim`, which plays the phone's buttons: each §8.1 rule, the conflict, the race of two
//! new users with one phone (SQLite, and two nodes on PostgreSQL), foreign and refused phone
//! codes, bind-phone, decrypt, check-session after resetusersessionkey, rawData, and binding and
//! unbinding identities. Where a request must write nothing, the database is read to prove it.

use iam_e2e::{Answer, Db, Iam, IamOptions, both_backends, workspace_root};
use serde_json::{Value, json};

use crate::signin::{APPID, CLIENT_ID, Ctx, expect_oauth_error};

/// The demo application's second mini program (open platform `platform-1` in the simulator).
const APPID_B: &str = "wxaaaaaaaaaaaaaaaa";
const CLOSED_CLIENT_ID: &str = "closed0000000000000";

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// `/sim/phone-code`: what the `getPhoneNumber` button gives `user` for `phone`.
async fn phone_code(c: &Ctx, appid: &str, user: &str, phone: &str) -> anyhow::Result<String> {
    let v: Value = c
        .rec
        .http
        .post(format!("{}/sim/phone-code", c.sim.base))
        .json(&json!({"appid": appid, "user": user, "phone": phone}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(text(&v, "code"))
}

/// `/sim/encrypted-data`: `data` sealed under `user`'s current session key, with WeChat's
/// watermark.
async fn sealed(c: &Ctx, user: &str, data: Value) -> anyhow::Result<(String, String)> {
    let v: Value = c
        .rec
        .http
        .post(format!("{}/sim/encrypted-data", c.sim.base))
        .json(&json!({"appid": APPID, "user": user, "data": data}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((text(&v, "encryptedData"), text(&v, "iv")))
}

/// AES-128-CBC + PKCS#7 under a base64 key with a fixed iv: data the simulator would not make
/// (a foreign watermark, a plaintext that is not JSON).
fn seal_locally(key: &str, plain: &[u8]) -> (String, String) {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let iv = [7u8; 16];
    let enc =
        cbc::Encryptor::<aes::Aes128>::new_from_slices(&b64.decode(key).unwrap(), &iv).unwrap();
    (
        b64.encode(enc.encrypt_padded_vec_mut::<Pkcs7>(plain)),
        b64.encode(iv),
    )
}

async fn sim_stats(c: &Ctx) -> anyhow::Result<Value> {
    Ok(reqwest::get(format!("{}/sim/stats", c.sim.base))
        .await?
        .json()
        .await?)
}

async fn sign_in_with_phone(c: &mut Ctx, user: &str, phone: &str) -> anyhow::Result<Answer> {
    let pc = phone_code(c, APPID, user, phone).await?;
    c.sign_in_with(user, &[("phone_code", &pc)]).await
}

/// (access token, the user's `owner/name`) of a successful sign-in.
fn signed_in(a: &Answer) -> anyhow::Result<(String, String)> {
    anyhow::ensure!(a.status == 200, "sign-in: {} {}", a.status, a.text);
    let access = text(&a.json(), "access_token");
    let claims = iam_e2e::claims(&access)?;
    let id = format!("{}/{}", text(&claims, "owner"), text(&claims, "name"));
    Ok((access, id))
}

/// A user as the database holds it.
async fn stored(
    c: &Ctx,
    owner: &str,
    name: &str,
) -> anyhow::Result<Option<iam_domain::model::User>> {
    use iam_domain::ports::Repository;
    Ok(c.db.store().await?.get_user(owner, name).await?)
}

async fn user_count(c: &Ctx) -> anyhow::Result<i64> {
    use iam_domain::ports::Repository;
    Ok(c.db.store().await?.count_users("demo").await?)
}

async fn phone_at_sign_in(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[("wechatTimeoutMs", "1000")]).await?;
    let admin = c.password_token("demo-admin", "demo-admin-pw").await?;

    // Rule 3: a new WeChat user with a new phone is a new user holding it.
    let (pat, pat_id) = signed_in(&sign_in_with_phone(&mut c, "pat", "13800138000").await?)?;
    let account = c.account(&pat).await?;
    assert_eq!(account["data"]["phone"], "13800138000", "{account}");
    assert_eq!(account["data"]["countryCode"], "CN");
    let name = pat_id.split_once('/').map(|(_, n)| n).unwrap_or_default();
    assert_eq!(
        stored(&c, "demo", name).await?.unwrap().phone_e164,
        "+8613800138000"
    );

    // Rule 1: the identity is known; WeChat just verified another number, which replaces it.
    let (_, again) = signed_in(&sign_in_with_phone(&mut c, "pat", "13900139000").await?)?;
    assert_eq!(again, pat_id);
    assert_eq!(
        stored(&c, "demo", name).await?.unwrap().phone_e164,
        "+8613900139000"
    );

    // Rule 2: a user of the organization already holds the phone (set by an administrator):
    // the new WeChat identity is linked to them.
    let set = c
        .post_json(
            "/api/update-user?id=demo/bob&columns=phone,countryCode",
            &admin,
            json!({"phone": "137 0013 7000", "countryCode": "CN"}),
        )
        .await?;
    assert_eq!(set.json()["data"], "Affected", "{}", set.text);
    let bob = stored(&c, "demo", "bob").await?.unwrap();
    assert_eq!(
        (bob.phone.as_str(), bob.phone_e164.as_str()),
        ("13700137000", "+8613700137000")
    );
    let (_, linked) = signed_in(&sign_in_with_phone(&mut c, "bob-phone", "13700137000").await?)?;
    assert_eq!(linked, "demo/bob", "linked to the phone's holder");
    let bob_token = c.password_token("bob", "bob-pw").await?;
    let ids = c.get("/api/get-user-identities", &bob_token).await?;
    assert_eq!(ids.json().as_array().map(Vec::len), Some(1), "{}", ids.text);
    assert_eq!(ids.json()[0]["provider"], "wx-demo");

    // An administrator cannot give bob's number to someone else either.
    let taken = c
        .post_json(
            &format!("/api/update-user?id={pat_id}&columns=phone,countryCode"),
            &admin,
            json!({"phone": "13700137000", "countryCode": "CN"}),
        )
        .await?;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert!(
        taken.msg().contains("bound to another account"),
        "{}",
        taken.text
    );
    // Nor a new user: the clash is the phone's, not the (free) name's, and no user is added.
    let taken = c
        .post_json(
            "/api/add-user",
            &admin,
            json!({"owner": "demo", "name": "bob-twin", "phone": "+86 137 0013 7000"}),
        )
        .await?;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert_eq!(
        taken.msg(),
        "phone: the phone number is bound to another account"
    );
    assert!(stored(&c, "demo", "bob-twin").await?.is_none());
    let bad = c
        .post_json(
            &format!("/api/update-user?id={pat_id}&columns=phone"),
            &admin,
            json!({"phone": "12345"}),
        )
        .await?;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.msg().starts_with("phone:"), "{}", bad.text);

    // The conflict: quinn's identity is known, and the phone WeChat verified is pat's. Nothing
    // is written: not the phone, not a sign-in time, not a session.
    signed_in(&c.sign_in_with("quinn", &[]).await?)?;
    let quinn_name = format!("wechat-{}", c.sim.login(APPID, "quinn").await?.1);
    let before = stored(&c, "demo", &quinn_name).await?.unwrap();
    let sessions_before = session_count(&c).await?;
    let a = sign_in_with_phone(&mut c, "quinn", "13900139000").await?;
    expect_oauth_error(
        &a,
        400,
        "invalid_grant",
        "the phone number is bound to another account",
    );
    assert_eq!(
        stored(&c, "demo", &quinn_name).await?.unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(session_count(&c).await?, sessions_before);

    // A phone code issued to someone else is refused by WeChat (the openid does not match).
    let users = user_count(&c).await?;
    let foreign = phone_code(&c, APPID, "pat", "13500135000").await?;
    let a = c
        .sign_in_with("mallory", &[("phone_code", &foreign)])
        .await?;
    expect_oauth_error(
        &a,
        400,
        "invalid_grant",
        "get wechat phone number error: 40029",
    );
    // A spent one too.
    let pc = phone_code(&c, APPID, "mallory", "13500135000").await?;
    signed_in(&c.sign_in_with("mallory", &[("phone_code", &pc)]).await?)?;
    let users = users + 1;
    let a = c.sign_in_with("mallory", &[("phone_code", &pc)]).await?;
    expect_oauth_error(
        &a,
        400,
        "invalid_grant",
        "get wechat phone number error: 40029",
    );

    // WeChat failing on the phone call: 503 with Retry-After, and no user made.
    c.sim
        .fault(json!({"api": "getuserphonenumber", "httpStatus": 502, "count": 1}))
        .await?;
    let a = sign_in_with_phone(&mut c, "nina", "13300133000").await?;
    expect_oauth_error(&a, 503, "temporarily_unavailable", "wechat");
    assert!(a.header("retry-after").is_some());
    assert_eq!(user_count(&c).await?, users, "nothing written");
    c.sim
        .fault(json!({"api": "getuserphonenumber", "latencyMs": 1500, "count": 1}))
        .await?;
    let a = sign_in_with_phone(&mut c, "nina", "13300133000").await?;
    expect_oauth_error(&a, 503, "temporarily_unavailable", "wechat");
    assert_eq!(
        user_count(&c).await?,
        users,
        "nothing written after a timeout either"
    );
    // A number the phone-number library does not accept is named, and nothing is written.
    let a = sign_in_with_phone(&mut c, "nina", "12345").await?;
    expect_oauth_error(&a, 400, "invalid_request", "phone: ");
    assert_eq!(user_count(&c).await?, users);
    // A token WeChat refuses is fetched again once and the call retried.
    c.sim
        .fault(json!({"api": "getuserphonenumber", "errcode": 40001, "count": 1}))
        .await?;
    let stable_before = sim_stats(&c).await?["calls"]["stable_token"]
        .as_u64()
        .unwrap_or(0);
    signed_in(&sign_in_with_phone(&mut c, "nina", "13300133000").await?)?;
    let stable_after = sim_stats(&c).await?["calls"]["stable_token"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        stable_after,
        stable_before + 1,
        "one refetch of the access token"
    );

    // Enable sign-up off: a new phone does not make a user.
    let pc = phone_code(&c, APPID, "olga", "13200132000").await?;
    let (code, _) = c.sim.login(APPID, "olga").await?;
    let a = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", CLOSED_CLIENT_ID.into()),
            ("code", code),
            ("phone_code", pc),
        ])
        .await?;
    expect_oauth_error(&a, 400, "invalid_grant", "does not allow to sign up");

    // Bad input is refused before WeChat is called.
    let exchanges = c.sim.exchanges().await?;
    let a = c
        .sign_in_with("pat", &[("phone_code", "has space")])
        .await?;
    expect_oauth_error(&a, 400, "invalid_request", "phone_code");
    assert_eq!(c.sim.exchanges().await?, exchanges);

    // rawData + signature: believed only when signed with this exchange's session key.
    let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","avatarUrl":"https://thirdwx.qlogo.cn/mmopen/vi_32/x/132"}"#;
    let (code, _) = c.sim.login(APPID, "rae").await?;
    c.people.push((APPID.into(), "rae".into()));
    let key = c.sim.session_key(APPID, "rae").await?;
    let sign = |k: &str| {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(raw.as_bytes());
        ctx.update(k.as_bytes());
        hex::encode(ctx.finish().as_ref())
    };
    let form = |code: String, sig: String| {
        vec![
            ("tag", "wechat_miniprogram".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("code", code),
            ("rawData", raw.to_owned()),
            ("signature", sig),
        ]
    };
    let (rae, _) = signed_in(&c.token(&form(code, sign(&key))).await?)?;
    let account = c.account(&rae).await?;
    assert_eq!(account["data"]["displayName"], "Band");
    assert_eq!(
        account["data"]["avatar"],
        "https://thirdwx.qlogo.cn/mmopen/vi_32/x/132"
    );
    let (code, _) = c.sim.login(APPID, "rae").await?;
    let a = c
        .token(&form(code, sign("AAAAAAAAAAAAAAAAAAAAAA==")))
        .await?;
    expect_oauth_error(
        &a,
        400,
        "invalid_request",
        "rawData signature does not match",
    );

    // Phone calls are counted by result: they cost the mini program's owner money.
    let metrics = reqwest::get(c.iam.url("/metrics")).await?.text().await?;
    assert!(
        metrics.contains(r#"iam_wechat_calls_total{api="getuserphonenumber",errcode="0"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"iam_wechat_calls_total{api="getuserphonenumber",errcode="40029"} 2"#)
    );
    c.assert_no_session_key_leaked().await
}
both_backends!(phone_numbers_at_sign_in, phone_at_sign_in);

async fn phone_later_and_legacy_data(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let lee = c.sign_in("lee").await?;

    // bind-phone with the button's code.
    let pc = phone_code(&c, APPID, "lee", "13800138000").await?;
    let a = c
        .post_json("/api/wechat/bind-phone", &lee, json!({"phoneCode": pc}))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["data"]["phone"], "13800138000");
    assert_eq!(a.json()["data"]["countryCode"], "CN");
    // Bad input names the field.
    for (body, field) in [
        (json!({}), "phoneCode"),
        (json!({"phoneCode": ""}), "phoneCode"),
        (json!({"phoneCode": "x", "iv": "y"}), "phoneCode"),
        (
            json!({"encryptedData": "not base64!", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
            "encryptedData",
        ),
        (
            json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAA="}),
            "iv",
        ),
        (json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA=="}), "iv"),
    ] {
        let a = c
            .post_json("/api/wechat/bind-phone", &lee, body.clone())
            .await?;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert!(a.msg().starts_with(field), "{body}: {}", a.text);
    }
    // The legacy fields, opened with lee's stored key; the number replaces the old one.
    let (data, iv) = sealed(
        &c,
        "lee",
        json!({"phoneNumber": "13600136000", "purePhoneNumber": "13600136000", "countryCode": "86"}),
    )
    .await?;
    let a = c
        .post_json(
            "/api/wechat/bind-phone",
            &lee,
            json!({"encryptedData": data, "iv": iv}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["data"]["phone"], "13600136000");
    // Another user's number: 409, nothing changed.
    let kim = c.sign_in("kim").await?;
    let pc = phone_code(&c, APPID, "kim", "13600136000").await?;
    let a = c
        .post_json("/api/wechat/bind-phone", &kim, json!({"phoneCode": pc}))
        .await?;
    assert_eq!(a.status, 409, "{}", a.text);
    assert_eq!(a.msg(), "the phone number is bound to another account");
    assert_eq!(c.account(&kim).await?["data"]["phone"], "");
    // A phone code WeChat refuses (here: lee's, sent by kim) writes nothing either.
    let foreign = phone_code(&c, APPID, "lee", "13500135000").await?;
    let a = c
        .post_json(
            "/api/wechat/bind-phone",
            &kim,
            json!({"phoneCode": foreign}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.msg().starts_with("get wechat phone number error: 40029"),
        "{}",
        a.text
    );
    assert_eq!(c.account(&kim).await?["data"]["phone"], "");

    // decrypt: WeRun steps, with the watermark checked.
    let (data, iv) = sealed(
        &c,
        "lee",
        json!({"stepInfoList": [{"timestamp": 1, "step": 4200}]}),
    )
    .await?;
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &lee,
            json!({"encryptedData": data, "iv": iv}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["stepInfoList"][0]["step"], 4200);
    assert_eq!(a.json()["watermark"]["appid"], APPID);
    // kim's token opens with kim's key: lee's data does not open for kim.
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &kim,
            json!({"encryptedData": data, "iv": iv}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    let key = c.sim.session_key(APPID, "lee").await?;
    let (foreign, fiv) = seal_locally(
        &key,
        br#"{"a":1,"watermark":{"appid":"wx0000000000000000","timestamp":1}}"#,
    );
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &lee,
            json!({"encryptedData": foreign, "iv": fiv}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("watermark"), "{}", a.text);
    let (junk, jiv) = seal_locally(&key, b"not json at all");
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &lee,
            json!({"encryptedData": junk, "iv": jiv}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("encryptedData: "), "{}", a.text);
    // An application's token has no user and no session key.
    let app = c
        .token(&[
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", "demo-app-secret".into()),
        ])
        .await?;
    let app = text(&app.json(), "access_token");
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &app,
            json!({"encryptedData": data, "iv": iv}),
        )
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);

    // check-session, then WeChat resets the key: the stored one is stale, data sealed under
    // the new key is refused with the message a mini program can act on.
    let a = c.get("/api/wechat/check-session", &lee).await?;
    assert_eq!(a.json(), json!({"valid": true}), "{}", a.text);
    let token: Value = c
        .rec
        .http
        .post(format!("{}/cgi-bin/stable_token", c.sim.base))
        .json(&json!({"grant_type": "client_credential", "appid": APPID, "secret": "0c6d2a1b9e8f7d6c5b4a39281706f5e4"}))
        .send()
        .await?
        .json()
        .await?;
    let signature = {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
        hex::encode(aws_lc_rs::hmac::sign(&k, b"").as_ref())
    };
    let lee_openid = text(
        &c.get("/api/get-user-identities", &lee).await?.json()[0],
        "openid",
    );
    let reset: Value = c
        .rec
        .http
        .get(format!("{}/wxa/resetusersessionkey", c.sim.base))
        .query(&[
            ("access_token", text(&token, "access_token")),
            ("openid", lee_openid),
            ("signature", signature),
            ("sig_method", "hmac_sha256".into()),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(reset["errcode"], 0, "{reset}");
    let a = c.get("/api/wechat/check-session", &lee).await?;
    assert_eq!(a.json(), json!({"valid": false}), "{}", a.text);
    let (data, iv) = sealed(&c, "lee", json!({"stepInfoList": []})).await?;
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &lee,
            json!({"encryptedData": data, "iv": iv}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.msg()
            .contains("the session key has changed: call wx.login and sign in again"),
        "{}",
        a.text
    );
    // Signing in again stores the new key: the same data opens.
    let lee = c.sign_in("lee").await?;
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &lee,
            json!({"encryptedData": data, "iv": iv}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = c.get("/api/wechat/check-session", &lee).await?;
    assert_eq!(a.json(), json!({"valid": true}), "{}", a.text);
    c.assert_no_session_key_leaked().await
}
both_backends!(phone_later_and_the_legacy_data, phone_later_and_legacy_data);

async fn bind(c: &Ctx, token: &str, code: String) -> anyhow::Result<Answer> {
    c.post_json("/api/wechat/bind", token, json!({"code": code}))
        .await
}

async fn session_count(c: &Ctx) -> anyhow::Result<u64> {
    use iam_domain::ports::Repository;
    Ok(c.db.store().await?.session_table_counts().await?[0])
}

/// WeChat's published vector (reference/wechat-api.md §3.2), end to end: the simulator gives a
/// user of the vector's mini program the vector's session key, the server stores it at sign-in,
/// and `/api/wechat/decrypt` opens the vector's encryptedData.
async fn published_vector(db: Db) -> anyhow::Result<()> {
    const VECTOR_APPID: &str = "wx4f4bc4dec97d474b";
    const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
    let mut c = Ctx::start(db, &[]).await?;
    let admin = c
        .password_token("built-in/admin", iam_e2e::ADMIN_PASSWORD)
        .await?;
    c.sim
        .post(
            "/sim/apps",
            json!({"appid": VECTOR_APPID, "secret": "vector-secret"}),
        )
        .await?;
    for (path, body) in [
        (
            "/api/add-provider",
            json!({"owner": "admin", "name": "wx-vector", "category": "OAuth", "type": "WeChat", "clientId": VECTOR_APPID, "clientSecret": "vector-secret"}),
        ),
        (
            "/api/add-application",
            json!({"owner": "admin", "name": "vector-app", "organization": "demo", "clientId": "vector00000000000000", "clientSecret": "vector-app-secret", "enableSignUp": true, "providers": [{"name": "wx-vector"}]}),
        ),
    ] {
        let a = c.post_json(path, &admin, body).await?;
        anyhow::ensure!(a.status == 200, "{path}: {}", a.text);
    }
    c.sim
        .post(
            "/sim/session-key",
            json!({"appid": VECTOR_APPID, "user": "band", "sessionKey": KEY}),
        )
        .await?;
    let (code, _) = c.sim.login(VECTOR_APPID, "band").await?;
    let a = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", "vector00000000000000".into()),
            ("code", code),
        ])
        .await?;
    let (band, _) = signed_in(&a)?;
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &band,
            json!({"encryptedData": DATA, "iv": IV}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(v["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(v["unionId"], "ocMvos6NjeKLIBqg5Mr9QjxrP1FA");
    assert_eq!(
        v["watermark"],
        json!({"timestamp": 1477314187, "appid": VECTOR_APPID})
    );
    // The same data for another mini program's user (another key) does not open.
    let lee = c.sign_in("lee").await?;
    let a = c
        .post_json(
            "/api/wechat/decrypt",
            &lee,
            json!({"encryptedData": DATA, "iv": IV}),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(!a.text.contains("oGZUI0egBJY1zhBYw2KhdUfwVJJE"));
    Ok(())
}
both_backends!(the_published_vector_decrypts_end_to_end, published_vector);

async fn linked_identities(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let admin = c.password_token("demo-admin", "demo-admin-pw").await?;
    let bob = c.password_token("bob", "bob-pw").await?;

    // A password user adds WeChat; binding it again changes nothing; that WeChat account now
    // signs in as bob.
    let (code, openid) = c.sim.login(APPID, "bob-wx").await?;
    c.people.push((APPID.into(), "bob-wx".into()));
    let a = bind(&c, &bob, code).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["data"], "Affected");
    let (code, _) = c.sim.login(APPID, "bob-wx").await?;
    let a = bind(&c, &bob, code).await?;
    assert_eq!(a.json()["data"], "Unaffected", "{}", a.text);
    let (_, id) = signed_in(&c.sign_in_with("bob-wx", &[]).await?)?;
    assert_eq!(id, "demo/bob");
    let ids = c.get("/api/get-user-identities", &bob).await?.json();
    assert_eq!(ids[0]["openid"], openid.as_str(), "{ids}");
    assert_eq!(ids[0]["appid"], APPID);
    assert!(!text(&ids[0], "lastSigninTime").is_empty());
    // The user's JSON keeps Casdoor's fields.
    let account = c.account(&bob).await?;
    assert_eq!(account["data"]["wechat"], openid.as_str());

    // Another user's WeChat account: 409, nothing moved.
    let (zed, zed_id) = signed_in(&c.sign_in_with("zed", &[]).await?)?;
    let (code, _) = c.sim.login(APPID, "zed").await?;
    let a = bind(&c, &bob, code).await?;
    assert_eq!(a.status, 409, "{}", a.text);
    assert_eq!(a.msg(), "this WeChat account is bound to another user");
    // A code of another mini program than the token's: WeChat refuses it.
    let (code, _) = c.sim.login(APPID_B, "bob-b").await?;
    let a = bind(&c, &bob, code).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("40029"), "{}", a.text);
    // A global administrator's account is not reachable through a mini program: their token
    // comes from app-built-in, which has no mini program to bind...
    let global = c
        .password_token("built-in/admin", iam_e2e::ADMIN_PASSWORD)
        .await?;
    let (code, _) = c.sim.login(APPID, "root-wx").await?;
    let a = bind(&c, &global, code).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("app-built-in has no such"), "{}", a.text);
    // ...and the mini program's public client id does not sign them in.
    let a = c
        .token(&[
            ("grant_type", "password".into()),
            ("client_id", crate::signin::CLIENT_ID.into()),
            ("username", "built-in/admin".into()),
            ("password", iam_e2e::ADMIN_PASSWORD.into()),
        ])
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);

    // Who may read and unbind: the user and administrators of their organization.
    let a = c
        .get(&format!("/api/get-user-identities?id={zed_id}"), &bob)
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = c
        .get(&format!("/api/get-user-identities?id={zed_id}"), &admin)
        .await?;
    assert_eq!(a.json().as_array().map(Vec::len), Some(1), "{}", a.text);
    // zed's only way in stays.
    let a = c
        .post_json("/api/wechat/unbind", &zed, json!({"appid": APPID}))
        .await?;
    assert_eq!(a.status, 409, "{}", a.text);
    let a = c
        .post_json(
            &format!("/api/wechat/unbind?id={zed_id}"),
            &bob,
            json!({"appid": APPID}),
        )
        .await?;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = c.post_json("/api/wechat/unbind", &bob, json!({})).await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("appid"), "{}", a.text);
    // A second WeChat account of the same mini program (a new phone, say): an unbind must
    // name which, and takes only that one.
    let (code, openid2) = c.sim.login(APPID, "bob-wx2").await?;
    c.people.push((APPID.into(), "bob-wx2".into()));
    assert_eq!(bind(&c, &bob, code).await?.json()["data"], "Affected");
    let a = c
        .post_json("/api/wechat/unbind", &bob, json!({"appid": APPID}))
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().starts_with("openid: "), "{}", a.text);
    assert!(a.msg().contains(&openid2), "{}", a.text);
    let a = c
        .post_json(
            "/api/wechat/unbind",
            &bob,
            json!({"appid": APPID, "openid": "oNotBobsAtAll"}),
        )
        .await?;
    assert_eq!(a.status, 404, "{}", a.text);
    let a = c
        .post_json(
            "/api/wechat/unbind",
            &bob,
            json!({"appid": APPID, "openid": openid2}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["data2"]["openid"], openid2.as_str());
    let ids = c.get("/api/get-user-identities", &bob).await?.json();
    assert_eq!(ids.as_array().map(Vec::len), Some(1), "{ids}");
    assert_eq!(ids[0]["openid"], openid.as_str(), "the first account stays");
    // bob has a password: his WeChat identity may go, by an administrator too.
    let a = c
        .post_json(
            "/api/wechat/unbind?id=demo/bob",
            &admin,
            json!({"appid": APPID}),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        c.get("/api/get-user-identities", &bob).await?.json(),
        json!([])
    );
    assert_eq!(c.account(&bob).await?["data"]["wechat"], "");

    // UnionID backfill: una signs in before her mini program is bound to the open platform;
    // once it is, her next sign-in stores the unionid, and the platform's other mini program
    // finds her.
    let (una, una_id) = signed_in(&c.sign_in_with("una", &[]).await?)?;
    assert_eq!(
        c.account(&una).await?["data"]["properties"]["wechatUnionId"],
        ""
    );
    c.sim
        .post(
            "/sim/apps",
            json!({"appid": APPID, "secret": "0c6d2a1b9e8f7d6c5b4a39281706f5e4", "openPlatformId": "platform-1"}),
        )
        .await?;
    signed_in(&c.sign_in_with("una", &[]).await?)?;
    let ids = c.get("/api/get-user-identities", &una).await?.json();
    assert!(!text(&ids[0], "unionid").is_empty(), "{ids}");
    assert!(
        !text(
            &c.account(&una).await?["data"]["properties"],
            "wechatUnionId"
        )
        .is_empty()
    );
    let (code, _) = c.sim.login(APPID_B, "una").await?;
    c.people.push((APPID_B.into(), "una".into()));
    let a = c
        .token(&[
            ("tag", "wechat_miniprogram".into()),
            ("client_id", CLIENT_ID.into()),
            ("code", code),
            ("provider", "wx-casdoor-style".into()),
        ])
        .await?;
    assert_eq!(signed_in(&a)?.1, una_id, "the other mini program found her");
    c.assert_no_session_key_leaked().await
}
both_backends!(linked_wechat_identities, linked_identities);

/// Twenty new WeChat users press the phone button with one number at the same moment; every
/// sign-in succeeds and they end as one user with twenty identities. `bases` are the nodes
/// the requests alternate between.
async fn same_phone_race(c: &mut Ctx, bases: &[String]) -> anyhow::Result<()> {
    let mut forms = Vec::new();
    for i in 0..20 {
        let user = format!("twin-{i}");
        let pc = phone_code(c, APPID, &user, "13100131000").await?;
        let (code, _) = c.sim.login(APPID, &user).await?;
        forms.push(vec![
            ("tag", "wechat_miniprogram".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("code", code),
            ("phone_code", pc),
        ]);
    }
    let mut tasks = Vec::new();
    for (i, form) in forms.into_iter().enumerate() {
        let url = format!("{}/oauth/token", bases[i % bases.len()]);
        let rec = c.rec.clone();
        tasks.push(tokio::spawn(async move {
            rec.send(rec.http.post(url).form(&form)).await
        }));
    }
    let mut subs = std::collections::HashSet::new();
    for t in tasks {
        let a = t.await??;
        anyhow::ensure!(
            a.status == 200,
            "every racer signs in: {} {}",
            a.status,
            a.text
        );
        subs.insert(text(
            &iam_e2e::claims(&text(&a.json(), "access_token"))?,
            "sub",
        ));
    }
    assert_eq!(subs.len(), 1, "one user");
    assert_eq!(user_count(c).await?, 3, "demo-admin, bob and the one twin");
    use iam_domain::ports::Repository;
    let sub = subs.into_iter().next().unwrap_or_default();
    assert_eq!(
        c.db.store().await?.list_user_identities(&sub).await?.len(),
        20
    );
    Ok(())
}

async fn same_phone_one_node(db: Db) -> anyhow::Result<()> {
    let mut c = Ctx::start(db, &[]).await?;
    let base = c.iam.base.clone();
    same_phone_race(&mut c, &[base]).await
}
both_backends!(
    new_users_with_one_phone_become_one_user,
    same_phone_one_node
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_users_with_one_phone_on_two_postgres_nodes_become_one_user() -> anyhow::Result<()> {
    let Some(db) = Db::postgres()? else {
        return Ok(());
    };
    let mut c = Ctx::start(db, &[]).await?;
    let mut opts = IamOptions::new(&c.db);
    opts.wechat_api_base = c.sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    let b: Iam = Iam::start(&opts)?;
    let bases = [c.iam.base.clone(), b.base.clone()];
    same_phone_race(&mut c, &bases).await
}
