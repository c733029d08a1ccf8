//! Upgrading a database written before sessions (SPEC §9) in place: every user and identity
//! survives, refresh tokens issued before the upgrade still refresh (into a session), their
//! reuse and revocation rules still hold, and access tokens issued before it work until they
//! expire.

use std::time::Duration;

use chrono::Utc;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use iam_domain::ports::Repository;
use iam_e2e::{Db, Iam, IamOptions, workspace_root};
use serde_json::Value;

use crate::signin::{APPID, CLIENT_ID};

const ORIGIN: &str = "https://iam.upgrade.test";
const SESSIONS_MIGRATION: &str = "2026-11-26-000001";

fn down_sql(db: &Db) -> anyhow::Result<String> {
    let path = workspace_root().join(format!(
        "crates/store/migrations/{}/{SESSIONS_MIGRATION}_sessions/down.sql",
        db.driver()
    ));
    Ok(std::fs::read_to_string(path)?)
}

/// Runs `sql` on the database directly, as an operator's shell would.
pub fn execute(db: &Db, sql: &str) -> anyhow::Result<()> {
    match db.driver() {
        "sqlite" => iam_e2e::sqlite_shell(&db.url())?.batch_execute(sql)?,
        _ => diesel::PgConnection::establish(&db.url())?.batch_execute(sql)?,
    }
    Ok(())
}

/// One row of the pre-session `tokens` table, as the server before sessions wrote it.
#[allow(clippy::too_many_arguments)]
fn token_row(
    id: &str,
    family: &str,
    user_id: &str,
    access: &str,
    refresh: Option<&str>,
    revoked: bool,
    refresh_used: bool,
) -> String {
    let now = Utc::now();
    let t = |d: chrono::Duration| (now + d).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let refresh_hash = refresh
        .map(|r| format!("'{}'", iam_e2e::token_hash(r)))
        .unwrap_or_else(|| "NULL".into());
    format!(
        "INSERT INTO tokens (id, application, organization, user_id, access_token_hash, \
         refresh_token_hash, family, scope, token_type, expires_at, refresh_expires_at, \
         created_time, revoked, refresh_used) VALUES ('{id}', 'demo-app', 'demo', '{user_id}', \
         '{}', {refresh_hash}, '{family}', 'openid', 'Bearer', '{}', '{}', '{}', {revoked}, \
         {refresh_used});\n",
        iam_e2e::token_hash(access),
        t(chrono::Duration::hours(1)),
        t(chrono::Duration::days(30)),
        t(chrono::Duration::minutes(-5)),
    )
}

async fn upgrade(db: Db) -> anyhow::Result<()> {
    let sim = iam_e2e::WechatSim::start()?;
    let mut opts = IamOptions::new(&db);
    opts.wechat_api_base = sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    opts.extra_env.push(("origin".into(), ORIGIN.into()));
    let rec = iam_e2e::Recorder::default();
    let sign_in = |iam: &Iam, user: &str| {
        let (rec, sim, url, user) = (rec.clone(), &sim, iam.url("/oauth/token"), user.to_owned());
        async move {
            let code = sim.login(APPID, &user).await?.0;
            let a = rec.send(rec.sign_in_request(&url, &code)).await?;
            anyhow::ensure!(a.status == 200, "sign-in: {}", a.text);
            anyhow::Ok(a.json())
        }
    };

    // The users and identities, written by a server; then the schema as it was before sessions.
    let mut old = Iam::start(&opts)?;
    let mut subs = Vec::new();
    for user in ["old-1", "old-2"] {
        let t = sign_in(&old, user).await?;
        let claims = iam_e2e::claims(t["access_token"].as_str().unwrap_or_default())?;
        subs.push(claims["sub"].as_str().unwrap_or_default().to_owned());
    }
    old.proc.terminate(Duration::from_secs(10))?;
    let store = db.store().await?;
    let users_before = store.list_users(Some("demo")).await?;
    let cert = store
        .get_cert("cert-built-in")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no built-in cert"))?;
    drop(store);
    execute(
        &db,
        &format!(
            "{}\nDELETE FROM __diesel_schema_migrations WHERE version = '{}';",
            down_sql(&db)?,
            SESSIONS_MIGRATION.replace('-', "")
        ),
    )?;

    // What the old server stored for three sign-ins of old-1: a live chain, a chain whose
    // first refresh token was used (a copy of it is a thief's), and a revoked chain; and an
    // application's token.
    let (u1, u2) = (&subs[0], &subs[1]);
    let legacy_access = iam_e2e::sign_user_token(&cert, ORIGIN, u1, "", Utc::now())?;
    let other_access = iam_e2e::sign_user_token(&cert, ORIGIN, u2, "", Utc::now())?;
    let mut sql = String::new();
    sql += &token_row(
        "t1",
        "fam-live",
        u1,
        &legacy_access,
        Some("r-live"),
        false,
        false,
    );
    sql += &token_row("t2", "fam-stolen", u1, "a2", Some("r-used"), false, true);
    sql += &token_row("t3", "fam-stolen", u1, "a3", Some("r-next"), false, false);
    sql += &token_row(
        "t4",
        "fam-revoked",
        u2,
        &other_access,
        Some("r-revoked"),
        true,
        false,
    );
    sql += &token_row("t5", "t5", "", "app-access", None, false, false);
    let sql = match db.driver() {
        "sqlite" => sql.replace("true", "1").replace("false", "0"),
        _ => sql,
    };
    execute(&db, &sql)?;

    // The new server migrates it in place.
    let iam = Iam::start(&opts)?;
    let store = db.store().await?;
    let users_after = store.list_users(Some("demo")).await?;
    assert_eq!(
        format!("{users_before:?}"),
        format!("{users_after:?}"),
        "every user survives as it was"
    );
    let again = sign_in(&iam, "old-1").await?;
    let claims = iam_e2e::claims(again["access_token"].as_str().unwrap_or_default())?;
    assert_eq!(&claims["sub"], u1.as_str(), "the WeChat identity survives");

    let get_account = |token: String| {
        let (rec, url) = (rec.clone(), iam.url("/api/get-account"));
        async move { anyhow::Ok(rec.send(rec.http.get(url).bearer_auth(token)).await?.status) }
    };
    let refresh = |token: &str| {
        let (rec, url) = (rec.clone(), iam.url("/oauth/token"));
        let form = [
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("refresh_token", token.to_owned()),
        ];
        async move { rec.send(rec.http.post(url).form(&form)).await }
    };

    // An access token from before the upgrade works until it expires; a revoked one does not.
    assert_eq!(get_account(legacy_access.clone()).await?, 200);
    assert_eq!(get_account(other_access.clone()).await?, 401);

    // A refresh token from before the upgrade refreshes, into its chain's session.
    let a = refresh("r-live").await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let fresh: Value = a.json();
    let access = fresh["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(iam_e2e::claims(&access)?["sid"], "fam-live");
    assert_eq!(get_account(access.clone()).await?, 200);
    let a = refresh(fresh["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(a.status, 200, "and again: {}", a.text);

    // The next token of a chain refreshes; presenting its used predecessor ends the chain.
    let a = refresh("r-next").await?;
    assert_eq!(a.status, 200, "{}", a.text);
    let stolen_chain = a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let a = refresh("r-used").await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json()["error"], "invalid_grant");
    assert_eq!(get_account(stolen_chain).await?, 401);
    // A revoked chain stays revoked.
    let a = refresh("r-revoked").await?;
    assert_eq!(a.status, 400, "{}", a.text);

    // Such a token names no session to sign out of alone: a clear 400, nothing ended.
    let a = rec
        .send(
            rec.http
                .post(iam.url("/api/sso-logout?logoutAll=false"))
                .bearer_auth(&legacy_access),
        )
        .await?;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.msg().contains("logoutAll=true"), "{}", a.text);
    assert_eq!(get_account(legacy_access.clone()).await?, 200);

    // Revoking a pre-upgrade access token ends its chain.
    let a = rec
        .send(
            rec.http
                .post(iam.url("/oauth/revoke"))
                .basic_auth(CLIENT_ID, Some("demo-app-secret"))
                .form(&[("token", legacy_access.as_str())]),
        )
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(get_account(legacy_access).await?, 401);
    assert_eq!(get_account(access).await?, 401, "its chain ended with it");

    let [sessions, refresh_tokens, _, legacy] = store.session_table_counts().await?;
    assert!(
        sessions >= 3 && refresh_tokens >= 4 && legacy == 5,
        "{sessions} {refresh_tokens} {legacy}"
    );
    Ok(())
}

iam_e2e::both_backends!(a_database_from_before_sessions_upgrades_in_place, upgrade);

const PHONES_MIGRATION: &str = "2026-11-30-000001";

/// Upgrading a database written before phones were unique (SPEC §8.1): every phone gets its
/// E.164 form; two users of one organization with one number stop the upgrade with a message
/// naming both, and nothing is lost; once an operator has decided whose number it is, the
/// server starts.
async fn phones_upgrade(db: Db) -> anyhow::Result<()> {
    let sim = iam_e2e::WechatSim::start()?;
    let mut opts = IamOptions::new(&db);
    opts.wechat_api_base = sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    let rec = iam_e2e::Recorder::default();
    let mut old = Iam::start(&opts)?;
    let mut names = Vec::new();
    for user in ["phone-1", "phone-2"] {
        let code = sim.login(APPID, user).await?.0;
        let a = rec
            .send(rec.sign_in_request(&old.url("/oauth/token"), &code))
            .await?;
        anyhow::ensure!(a.status == 200, "sign-in: {}", a.text);
        let claims = iam_e2e::claims(a.json()["access_token"].as_str().unwrap_or_default())?;
        names.push(claims["name"].as_str().unwrap_or_default().to_owned());
    }
    old.proc.terminate(Duration::from_secs(10))?;
    let down = std::fs::read_to_string(workspace_root().join(format!(
        "crates/store/migrations/{}/{PHONES_MIGRATION}_phones/down.sql",
        db.driver()
    )))?;
    // The schema before §8, and what it allowed: two users with one number, written two ways.
    execute(
        &db,
        &format!(
            "{down}\nDELETE FROM __diesel_schema_migrations WHERE version = '{}';\n\
             UPDATE users SET phone = '13800138000', country_code = 'CN' WHERE name = '{}';\n\
             UPDATE users SET phone = '+86 138 0013 8000', country_code = '' WHERE name = '{}';\n\
             UPDATE users SET phone = '13700137000', country_code = 'CN' WHERE name = 'bob';",
            PHONES_MIGRATION.replace('-', ""),
            names[0],
            names[1]
        ),
    )?;
    let refused = match Iam::start(&opts) {
        Ok(_) => anyhow::bail!("the server started over two users with one phone"),
        Err(e) => e.to_string(),
    };
    let both = format!("demo/{} and demo/{} both have ***8000", names[0], names[1]);
    assert!(refused.contains(&both), "{refused}");
    let store = db.store().await?;
    for n in &names {
        let u = store.get_user("demo", n).await?.expect("kept");
        assert!(!u.phone.is_empty() && u.phone_e164.is_empty(), "{u:?}");
    }
    // The operator gives one of them another number; the upgrade completes.
    execute(
        &db,
        &format!(
            "UPDATE users SET phone = '13900139000' WHERE name = '{}';",
            names[1]
        ),
    )?;
    let _new = Iam::start(&opts)?;
    let e164 = |n: String| {
        let store = store.clone();
        async move { anyhow::Ok(store.get_user("demo", &n).await?.expect("kept").phone_e164) }
    };
    assert_eq!(e164(names[0].clone()).await?, "+8613800138000");
    assert_eq!(e164(names[1].clone()).await?, "+8613900139000");
    assert_eq!(e164("bob".into()).await?, "+8613700137000");
    Ok(())
}

iam_e2e::both_backends!(
    phones_from_before_get_their_e164_or_stop_the_upgrade,
    phones_upgrade
);
