//! Secrets at rest (SPEC §12): the signing keys, client secrets and WeChat AppSecrets are sealed
//! with the sealing key before they reach the database, and a database an older version wrote in
//! plaintext is sealed in place at start, with everything still working.

use std::time::Duration;

use diesel::prelude::*;
use iam_e2e::{Db, Iam, IamOptions, workspace_root};

use crate::signin::{CLIENT_ID, Ctx};

/// Secrets the fixture gives the server: the demo mini program's AppSecret, the demo
/// application's client secret, another provider's secret.
const SECRETS: [&str; 3] = [
    "0c6d2a1b9e8f7d6c5b4a39281706f5e4",
    "demo-app-secret",
    "gh-secret",
];

fn file_bytes(db: &Db) -> Vec<u8> {
    let mut bytes = std::fs::read(db.url()).unwrap_or_default();
    bytes.extend(std::fs::read(format!("{}-wal", db.url())).unwrap_or_default());
    bytes
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// The raw column values of every secret, as the database holds them.
fn stored_secrets(db: &Db) -> anyhow::Result<Vec<String>> {
    let mut c = iam_e2e::sqlite_shell(&db.url())?;
    let rows: Vec<Stored> = diesel::sql_query(
        "SELECT client_secret AS value FROM applications \
         UNION ALL SELECT client_secret FROM providers \
         UNION ALL SELECT private_key FROM certs",
    )
    .load(&mut c)?;
    Ok(rows.into_iter().map(|r| r.value).collect())
}

fn assert_all_sealed(db: &Db) -> anyhow::Result<()> {
    let stored = stored_secrets(db)?;
    assert!(
        stored
            .iter()
            .all(|s| s.is_empty() || s.starts_with("sealed:v1:")),
        "{stored:?}"
    );
    Ok(())
}

async fn client_credentials(c: &Ctx, secret: &str) -> anyhow::Result<u16> {
    Ok(c.token(&[
        ("grant_type", "client_credentials".into()),
        ("client_id", CLIENT_ID.into()),
        ("client_secret", secret.into()),
    ])
    .await?
    .status)
}

#[tokio::test]
async fn no_secret_reaches_the_database_file_in_plaintext() -> anyhow::Result<()> {
    let mut c = Ctx::start(Db::sqlite()?, &[]).await?;
    // The secrets are in use: a sign-in (the AppSecret), client credentials, a signature.
    c.sign_in("at-rest-user").await?;
    assert_eq!(client_credentials(&c, "demo-app-secret").await?, 200);
    let bytes = file_bytes(&c.db);
    assert!(!bytes.is_empty());
    for secret in SECRETS {
        assert!(
            !contains(&bytes, secret),
            "{secret} is in the database file"
        );
    }
    assert!(
        !contains(&bytes, "PRIVATE KEY"),
        "a signing key is in the database file"
    );
    assert_all_sealed(&c.db)?;
    Ok(())
}

#[tokio::test]
async fn plaintext_left_by_an_older_version_is_sealed_at_start() -> anyhow::Result<()> {
    let mut c = Ctx::start(Db::sqlite()?, &[]).await?;
    c.iam.proc.terminate(Duration::from_secs(30))?;
    // What an older version wrote: the secrets as they are.
    {
        let mut conn = iam_e2e::sqlite_shell(&c.db.url())?;
        diesel::sql_query(
            "UPDATE applications SET client_secret = 'an-old-plain-secret' \
             WHERE name = 'demo-app'",
        )
        .execute(&mut conn)?;
        diesel::sql_query(
            "UPDATE providers SET client_secret = '0c6d2a1b9e8f7d6c5b4a39281706f5e4' \
             WHERE name = 'wx-demo'",
        )
        .execute(&mut conn)?;
    }
    assert!(
        stored_secrets(&c.db)?
            .iter()
            .any(|s| s == "an-old-plain-secret")
    );
    let mut opts = IamOptions::new(&c.db);
    opts.wechat_api_base = c.sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    opts.extra_env
        .push(("initDataNewOnly".into(), "true".into()));
    c.iam = Iam::start(&opts)?;
    assert!(
        c.iam.proc.lines().iter().any(|l| l.contains("now sealed")),
        "the start says it sealed them"
    );
    assert_all_sealed(&c.db)?;
    // Everything still works with the secrets as they were.
    assert_eq!(client_credentials(&c, "an-old-plain-secret").await?, 200);
    c.sign_in("after-sealing").await?;
    Ok(())
}
