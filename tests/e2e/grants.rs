//! An application's `grantTypes` is enforced at the token endpoint, as Casdoor does; an
//! application without any gets Casdoor console's default list, so nothing stops working.

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
    Ok(())
}
