//! The operator's side: recovering the administrator, showing and rotating client secrets,
//! backing up a live database, and a first start in prod that cannot half-happen.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use iam_domain::ports::Repository;
use iam_e2e::{Db, Iam, IamOptions, Recorder, WechatSim};

use crate::signin::{APPID, CLIENT_ID};

/// A server on `db` with the end-to-end fixtures, talking to `sim`.
fn fixture_options<'a>(db: &'a Db, sim: &WechatSim) -> IamOptions<'a> {
    let mut opts = IamOptions::new(db);
    opts.wechat_api_base = sim.base.clone();
    opts.init_data = Some(iam_e2e::workspace_root().join("tests/e2e/fixtures/init_data.json"));
    opts
}

/// Runs `iam ARGS` on the server's own configuration, with `stdin` piped in when given.
fn iam_cli(
    iam: &Iam,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<(bool, String, String)> {
    let mut cmd = Command::new(iam_e2e::binary("iam")?);
    cmd.arg("--config")
        .arg(iam.workdir.path().join("app.conf"))
        .args(args)
        .current_dir(iam.workdir.path())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn token(rec: &Recorder, iam: &Iam, form: &[(&str, &str)]) -> anyhow::Result<u16> {
    Ok(rec
        .send(rec.http.post(iam.url("/oauth/token")).form(form))
        .await?
        .status)
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_recovers_the_admin_and_rotates_secrets() -> anyhow::Result<()> {
    let db = Db::sqlite()?;
    let iam = Iam::start(&IamOptions::new(&db))?;
    let rec = Recorder::default();
    let built_in = iam.built_in_client_id()?;
    let password = |p: &'static str| {
        [
            ("grant_type", "password"),
            ("client_id", built_in.as_str()),
            ("username", "built-in/admin"),
            ("password", p),
        ]
    };

    // A new administrator password from standard input; the old one stops working.
    let (ok, out, err) = iam_cli(&iam, &["admin", "reset-password"], Some("a-new-password\n"))?;
    assert!(ok, "{out}{err}");
    assert!(!out.contains("a-new-password") && !err.contains("a-new-password"));
    assert_eq!(token(&rec, &iam, &password("a-new-password")).await?, 200);
    assert_eq!(
        token(&rec, &iam, &password(iam_e2e::ADMIN_PASSWORD)).await?,
        400
    );

    // Without standard input a random one is printed once.
    let (ok, out, err) = iam_cli(
        &iam,
        &["admin", "reset-password", "--user", "built-in/admin"],
        None,
    )?;
    assert!(ok, "{out}{err}");
    let printed = out.trim().to_owned();
    assert!(printed.len() >= 16, "{out}");
    let form = [
        ("grant_type", "password"),
        ("client_id", built_in.as_str()),
        ("username", "built-in/admin"),
        ("password", printed.as_str()),
    ];
    assert_eq!(token(&rec, &iam, &form).await?, 200);
    assert!(!err.contains(&printed), "never through the log");

    // app-built-in's credentials, shown again, work.
    let (ok, out, err) = iam_cli(
        &iam,
        &["app", "show-credentials", "admin/app-built-in"],
        None,
    )?;
    assert!(ok, "{out}{err}");
    let (id, secret) = (field(&out, "clientId:"), field(&out, "clientSecret:"));
    let cc = |id, secret| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ]
    };
    assert_eq!(token(&rec, &iam, &cc(id, secret)).await?, 200);

    // A rotated secret replaces the old one (other nodes see it within the 2 s cache).
    let (ok, out, err) = iam_cli(&iam, &["app", "rotate-secret", "app-built-in"], None)?;
    assert!(ok, "{out}{err}");
    let new_secret = field(&out, "clientSecret:").to_owned();
    assert_ne!(new_secret, secret);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(token(&rec, &iam, &cc(id, &new_secret)).await?, 200);
    assert_eq!(token(&rec, &iam, &cc(id, secret)).await?, 401);

    // Unknown objects are named.
    let (ok, _, err) = iam_cli(&iam, &["app", "show-credentials", "admin/nope"], None)?;
    assert!(!ok && err.contains("\"nope\" does not exist"), "{err}");
    let (ok, _, err) = iam_cli(&iam, &["admin", "reset-password", "--user", "nobody"], None)?;
    assert!(!ok && err.contains("--user"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_is_consistent_and_restores() -> anyhow::Result<()> {
    let db = Db::sqlite()?;
    let sim = WechatSim::start()?;
    let iam = Iam::start(&fixture_options(&db, &sim))?;
    let rec = Recorder::default();
    let url = iam.url("/oauth/token");
    let sign_in = {
        let (rec, sim, url) = (rec.clone(), sim.base.clone(), url.clone());
        move |n: usize| {
            let (rec, sim, url) = (rec.clone(), sim.clone(), url.clone());
            async move {
                let code =
                    iam_e2e::wx_login(&rec.http, &sim, APPID, &format!("backup-{n}")).await?;
                anyhow::Ok(rec.send(rec.sign_in_request(&url, &code)).await?.status)
            }
        }
    };
    for n in 0..20 {
        assert_eq!(sign_in(n).await?, 200);
    }
    // Sign-ins keep going while the backup is taken.
    let load = tokio::spawn({
        let sign_in = sign_in.clone();
        async move {
            let mut ok = 0;
            for n in 20..120 {
                if sign_in(n).await? == 200 {
                    ok += 1;
                }
            }
            anyhow::Ok(ok)
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let copy = iam.workdir.path().join("backup.db");
    let (ok, out, err) = iam_cli(&iam, &["backup", copy.to_str().unwrap_or_default()], None)?;
    assert!(ok, "{out}{err}");
    assert_eq!(
        load.await??,
        100,
        "sign-ins were never blocked by the backup"
    );
    let (ok, _, err) = iam_cli(&iam, &["backup", copy.to_str().unwrap_or_default()], None)?;
    assert!(
        !ok && err.contains("already exists"),
        "never over an existing file: {err}"
    );

    // The copy is a whole database: every user signed in before it, the built-ins, the keys.
    let restored = iam_e2e::Db::sqlite()?;
    std::fs::copy(&copy, restored.url())?;
    let store = restored.store().await?;
    let users = store.list_users(Some("demo")).await?;
    assert!(users.len() >= 20, "{} users in the backup", users.len());
    assert!(store.get_cert("cert-built-in").await?.is_some());
    // And a server starts on it, with the same session-key file.
    let again = Iam::start(&fixture_options(&restored, &sim))?;
    let code = iam_e2e::wx_login(&rec.http, &sim.base, APPID, "backup-3").await?;
    let a = rec
        .send(rec.sign_in_request(&again.url("/oauth/token"), &code))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    Ok(())
}

#[tokio::test]
async fn a_first_start_in_prod_without_a_key_creates_and_prints_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("app.conf");
    std::fs::write(
        &conf,
        "runmode = prod\norigin = http://127.0.0.1\nhttpaddr = 127.0.0.1\nhttpport = 0\n\
         dataSourceName = iam.db\n",
    )?;
    let out = Command::new(iam_e2e::binary("iam")?)
        .arg("--config")
        .arg(&conf)
        .current_dir(dir.path())
        .env_remove("IAM_ADMIN_PASSWORD")
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sessionKeyEncryptionKey"), "{err}");
    assert!(
        !err.contains("clientSecret") && !err.contains("password:"),
        "{err}"
    );
    assert!(!dir.path().join("iam.db").exists(), "nothing was created");
    Ok(())
}

#[tokio::test]
async fn a_misspelt_key_is_named_with_its_nearest_spelling() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("app.conf");
    std::fs::write(&conf, "runmode = prod\nhttpprot = 1234\n")?;
    let out = Command::new(iam_e2e::binary("iam")?)
        .arg("--config")
        .arg(&conf)
        .arg("migrate")
        .current_dir(dir.path())
        .output()?;
    assert!(!out.status.success(), "an error in prod");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("httpprot") && err.contains("did you mean httpport?"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_postgres_database_says_how_to_create_it() -> anyhow::Result<()> {
    let Some(admin) = iam_e2e::postgres_admin_url()? else {
        return Ok(());
    };
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let dir = tempfile::tempdir()?;
    let started = std::time::Instant::now();
    let out = Command::new(iam_e2e::binary("iam")?)
        .arg("migrate")
        .current_dir(dir.path())
        .env("driverName", "postgres")
        .env("dataSourceName", format!("{base}/iam_no_such_database"))
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("createdb") && err.contains("iam_no_such_database"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "at once, not after retries"
    );
    Ok(())
}

/// A mini program sign-in of `user` at `iam`: its access token.
async fn access_token(
    rec: &Recorder,
    sim: &WechatSim,
    iam: &Iam,
    user: &str,
) -> anyhow::Result<String> {
    let code = iam_e2e::wx_login(&rec.http, &sim.base, APPID, user).await?;
    let a = rec
        .send(rec.sign_in_request(&iam.url("/oauth/token"), &code))
        .await?;
    anyhow::ensure!(a.status == 200, "{}", a.text);
    Ok(a.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Verifies `token` as any relying party would: discovery → JWKS → the key of its `kid`.
async fn verify_via_discovery(rec: &Recorder, iam: &Iam, token: &str) -> anyhow::Result<String> {
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    iam_jwt::install_crypto_provider();
    let discovery = rec
        .send(rec.http.get(iam.url("/.well-known/openid-configuration")))
        .await?
        .json();
    // The document names the public origin; this test reaches the node directly.
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap_or_default();
    let path = jwks_uri
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/.well-known/jwks");
    let set: JwkSet = serde_json::from_str(&rec.send(rec.http.get(iam.url(path))).await?.text)?;
    let kid = decode_header(token)?.kid.unwrap_or_default();
    let jwk = set
        .find(&kid)
        .ok_or_else(|| anyhow::anyhow!("kid {kid} is not in the JWKS"))?;
    let mut v = Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[CLIENT_ID]);
    v.set_issuer(&[discovery["issuer"].as_str().unwrap_or_default()]);
    decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk)?, &v)?;
    Ok(kid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_signs_new_tokens_and_old_ones_still_verify() -> anyhow::Result<()> {
    let db = Db::sqlite()?;
    let sim = WechatSim::start()?;
    let iam = Iam::start(&fixture_options(&db, &sim))?;
    let rec = Recorder::default();
    let sign_in = |user| access_token(&rec, &sim, &iam, user);
    let before = sign_in("rotation-1").await?;
    assert_eq!(
        verify_via_discovery(&rec, &iam, &before).await?,
        "cert-built-in"
    );

    let (ok, out, err) = iam_cli(&iam, &["cert", "rotate"], None)?;
    assert!(ok, "{out}{err}");
    let new_kid = out.split_whitespace().next().unwrap_or_default().to_owned();
    assert!(new_kid.starts_with("cert-built-in-"), "{out}");
    tokio::time::sleep(Duration::from_millis(2100)).await; // the running node's 2 s cache

    let after = sign_in("rotation-2").await?;
    assert_eq!(verify_via_discovery(&rec, &iam, &after).await?, new_kid);
    assert_eq!(
        verify_via_discovery(&rec, &iam, &before).await?,
        "cert-built-in"
    );
    for token in [&before, &after] {
        let a = rec
            .send(rec.http.get(iam.url("/api/get-account")).bearer_auth(token))
            .await?;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // The old key leaves the JWKS only once the last token it signed has expired.
    let store = db.store().await?;
    let old = store.get_cert("cert-built-in").await?.expect("kept");
    let until = old.published_until().expect("a retired key has an end");
    assert!(until > chrono::Utc::now() + chrono::Duration::hours(100));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_from_sqlite_to_postgres_keeps_every_user_and_token() -> anyhow::Result<()> {
    let Some(pg) = Db::postgres()? else {
        return Ok(());
    };
    let sqlite = Db::sqlite()?;
    let sim = WechatSim::start()?;
    let options = |db| {
        let mut o = fixture_options(db, &sim);
        // One issuer for both, as behind one public URL.
        o.extra_env
            .push(("origin".into(), "http://iam.example.test".into()));
        o
    };
    let old = Iam::start(&options(&sqlite))?;
    let rec = Recorder::default();
    let sign_in = |iam, user| access_token(&rec, &sim, iam, user);
    let sub = |token: &str| -> anyhow::Result<String> {
        Ok(iam_e2e::claims(token)?["sub"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    };
    let mut before = Vec::new();
    for user in ["mover-1", "mover-2", "mover-3"] {
        before.push((user, sign_in(&old, user).await?));
    }

    let file = old.workdir.path().join("export.json");
    let (ok, out, err) = iam_cli(
        &old,
        &["export", "--out", file.to_str().unwrap_or_default()],
        None,
    )?;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("exported ") && err.contains(" users and "),
        "{err}"
    );
    let text = std::fs::read_to_string(&file)?;
    // An export never writes over a file: the second one stops before anything is written.
    let (ok, _, again) = iam_cli(
        &old,
        &["export", "--out", file.to_str().unwrap_or_default()],
        None,
    )?;
    assert!(!ok && again.contains("cannot create"), "{again}");
    assert_eq!(std::fs::read_to_string(&file)?, text);
    // A mistyped database is refused, not created empty and exported as nothing.
    let missing = old.workdir.path().join("elsewhere/iam.db");
    let nothing = old.workdir.path().join("nothing.json");
    let refused = Command::new(iam_e2e::binary("iam")?)
        .arg("--config")
        .arg(old.workdir.path().join("app.conf"))
        .args(["export", "--out"])
        .arg(&nothing)
        .env("driverName", "sqlite")
        .env("dataSourceName", &missing)
        .current_dir(old.workdir.path())
        .output()?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("no database at"), "{said}");
    assert!(!missing.exists() && !nothing.exists());
    assert!(
        !text.contains("BEGIN PRIVATE KEY"),
        "keys are sealed in the export"
    );
    assert!(
        !text.contains("demo-app-secret"),
        "client secrets are sealed in the export"
    );
    let export: serde_json::Value = serde_json::from_str(&text)?;
    assert!(export["users"].as_array().is_some_and(|u| u.len() >= 4));

    // A fresh PostgreSQL server loads it as its initDataFile, with the same sealing key.
    let mut opts = options(&pg);
    opts.init_data = Some(file.clone());
    let new = Iam::start(&opts)?;
    for (user, token) in &before {
        // The same person signs in again as the same sub...
        let again = sign_in(&new, user).await?;
        assert_eq!(sub(&again)?, sub(token)?, "{user} kept their sub");
        // ...and what the old server signed verifies against the new one's JWKS.
        verify_via_discovery(&rec, &new, token).await?;
    }
    // The administrator's password moved with them.
    let a = rec
        .send(rec.http.post(new.url("/oauth/token")).form(&[
            ("grant_type", "password"),
            ("client_id", new.built_in_client_id()?.as_str()),
            ("username", "built-in/admin"),
            ("password", iam_e2e::ADMIN_PASSWORD),
        ]))
        .await?;
    assert_eq!(a.status, 200, "{}", a.text);
    // Every user is there once: the sign-ins above found them, they did not create new ones.
    let (moved, kept) = (pg.store().await?, sqlite.store().await?);
    assert_eq!(
        moved.list_users(None).await?.len(),
        kept.list_users(None).await?.len()
    );
    assert_eq!(
        moved.list_wechat_identities().await?.len(),
        kept.list_wechat_identities().await?.len()
    );
    Ok(())
}
