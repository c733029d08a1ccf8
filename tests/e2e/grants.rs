//! An application's `grantTypes` is enforced at the token endpoint, as Casdoor does; an
//! application without any gets Casdoor console's default list, so nothing stops working. The
//! password grant finds users of the application's own organization only.

use iam_e2e::{ADMIN_PASSWORD, Db};
use serde_json::json;

use crate::signin::{CLIENT_ID, Ctx};

#[tokio::test]
async fn an_applications_grant_types_decide_what_it_may_use() -> anyhow::Result<()> {
    let mut c = Ctx::start(Db::sqlite()?, &[]).await?;
    let admin = c.password_token("built-in/admin", ADMIN_PASSWORD).await?;
    let mut app = c
        .get("/api/get-application?id=admin/demo-app", &admin)
        .await?
        .json()["data"]
        .clone();
    // The fixture gives none: Casdoor console's default.
    assert_eq!(
        app["grantTypes"],
        json!([
            "authorization_code",
            "password",
            "client_credentials",
            "token",
            "id_token",
            "refresh_token"
        ])
    );
    let (_, refresh) = c.password_tokens("bob", "bob-pw").await?;

    app["grantTypes"] = json!(["password"]);
    let a = c
        .post_json("/api/update-application?id=admin/demo-app", &admin, app)
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);

    let cc = c
        .token(&[
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", "demo-app-secret".into()),
        ])
        .await?;
    assert_eq!(cc.status, 400, "{}", cc.text);
    assert_eq!(cc.json()["error"], "unsupported_grant_type");
    assert_eq!(
        cc.json()["error_description"],
        "grant_type: client_credentials is not supported in this application"
    );
    let r = c
        .token(&[
            ("grant_type", "refresh_token".into()),
            ("client_id", CLIENT_ID.into()),
            ("refresh_token", refresh),
        ])
        .await?;
    assert_eq!(r.json()["error"], "unsupported_grant_type", "{}", r.text);
    // Still allowed: the password grant, and a mini program sign-in (exempt, as in Casdoor).
    assert!(c.password_tokens("bob", "bob-pw").await.is_ok());
    let a = c.sign_in_with("grants", &[]).await?;
    assert_eq!(a.status, 200, "{}", a.text);
    // A tag that is not the mini program's, with no grant_type, is named as what was wrong.
    let t = c
        .token(&[
            ("tag", "WeChat_MiniProgram".into()),
            ("client_id", CLIENT_ID.into()),
            ("code", "x".into()),
        ])
        .await?;
    assert_eq!(t.status, 400, "{}", t.text);
    assert_eq!(t.json()["error"], "invalid_request");
    assert_eq!(
        t.json()["error_description"],
        "tag \"WeChat_MiniProgram\" is not supported: a mini program sign-in sends \
         tag=wechat_miniprogram, any other request a grant_type"
    );
    Ok(())
}

#[tokio::test]
async fn the_password_grant_looks_in_the_applications_organization_only() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[]).await?;
    let built_in = c.iam.built_in_client_id()?;
    let grant = |client: &str, user: &str, pw: &str| {
        let form = [
            ("grant_type", "password".to_owned()),
            ("client_id", client.to_owned()),
            ("username", user.to_owned()),
            ("password", pw.to_owned()),
        ];
        let c = &c;
        async move { c.token(&form).await }
    };
    // The mini program's client id ships inside every copy of the mini program: it signs in
    // its own organization's users, with or without the organization's prefix...
    assert_eq!(grant(CLIENT_ID, "bob", "bob-pw").await?.status, 200);
    assert_eq!(grant(CLIENT_ID, "demo/bob", "bob-pw").await?.status, 200);
    // ...and no one else: not the global administrator, with the same answer as a wrong
    // password (who exists is not revealed).
    for user in ["built-in/admin", "admin"] {
        let a = grant(CLIENT_ID, user, ADMIN_PASSWORD).await?;
        assert_eq!(a.status, 400, "{user}: {}", a.text);
        assert_eq!(a.json()["error"], "invalid_grant");
        assert_eq!(
            a.json()["error_description"],
            "invalid username or password"
        );
    }
    // Another organization's application does not find bob.
    let a = grant("other000000000000000", "demo/bob", "bob-pw").await?;
    assert_eq!(a.status, 400, "{}", a.text);
    // The global administrator signs in through app-built-in.
    for user in ["built-in/admin", "admin"] {
        let a = grant(&built_in, user, ADMIN_PASSWORD).await?;
        assert_eq!(a.status, 200, "{user}: {}", a.text);
    }
    Ok(())
}
