//! Stopping and restarting on the same database keeps every object exactly as it was, and no
//! secret reaches a log line.

use std::time::Duration;

use iam_domain::ports::Repository;
use iam_e2e::{Db, Iam, IamOptions};

/// Everything the server stores at start, in a comparable form (secrets included).
async fn snapshot(db: &Db) -> anyhow::Result<String> {
    let s = db.store().await?;
    let mut out = String::new();
    for o in s.list_organizations().await? {
        out += &format!("{o:?}\n");
    }
    for a in s.list_applications(None).await? {
        out += &format!("{a:?} secret={}\n", a.client_secret.expose());
    }
    for p in s.list_providers(None).await? {
        out += &format!("{p:?} secret={}\n", p.client_secret.expose());
    }
    for c in s.list_certs().await? {
        out += &format!("{c:?} key={}\n", c.private_key.expose());
    }
    for u in s.list_users(None).await? {
        out += &format!(
            "{u:?} hash={}\n",
            u.password_hash
                .as_ref()
                .map(|h| h.expose())
                .unwrap_or_default()
        );
    }
    Ok(out)
}

async fn secrets(db: &Db) -> anyhow::Result<Vec<String>> {
    let s = db.store().await?;
    let mut out = Vec::new();
    for a in s.list_applications(None).await? {
        out.push(a.client_secret.expose().to_owned());
    }
    for p in s.list_providers(None).await? {
        out.push(p.client_secret.expose().to_owned());
    }
    for c in s.list_certs().await? {
        // Any full line of the key's base64 body.
        out.extend(
            c.private_key
                .expose()
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 40)
                .map(str::to_owned),
        );
    }
    for u in s.list_users(None).await? {
        if let Some(h) = u.password_hash {
            out.push(h.expose().to_owned());
        }
    }
    Ok(out)
}

async fn restart_keeps_everything(db: Db) -> anyhow::Result<()> {
    let opts = IamOptions::new(&db);

    let mut first = Iam::start(&opts)?;
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(first.url("/healthz")).send().await?.status(),
        200
    );
    assert_eq!(client.get(first.url("/readyz")).send().await?.status(), 200);
    let status = first.proc.terminate(Duration::from_secs(30))?;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    let log1 = first.proc.lines();
    let before = snapshot(&db).await?;
    assert!(before.contains("cert-built-in"), "{before}");
    assert!(
        before.contains("6825f4f0af45554c8952"),
        "the demo application is seeded"
    );

    let mut second = Iam::start(&opts)?;
    assert_eq!(
        client.get(second.url("/readyz")).send().await?.status(),
        200
    );
    assert!(second.proc.terminate(Duration::from_secs(30))?.success());
    let log2 = second.proc.lines();
    let after = snapshot(&db).await?;
    assert_eq!(before, after, "a restart changes nothing that was stored");
    assert!(
        !log2.iter().any(|l| l.contains("clientSecret:")),
        "built-in credentials are not regenerated"
    );

    // Logs are JSON in prod; none of them carries a secret.
    let json_lines: Vec<&String> = log1
        .iter()
        .chain(&log2)
        .filter(|l| l.starts_with('{'))
        .collect();
    assert!(json_lines.len() > 5, "prod logs are JSON lines");
    for secret in secrets(&db).await? {
        for line in &json_lines {
            assert!(
                !line.contains(&secret),
                "a secret reached a log line: {line}"
            );
        }
    }
    // The seeded application's and provider's secrets appear nowhere in the output at all.
    let all = log1.join("\n") + &log2.join("\n");
    assert!(!all.contains("b8a2f1c9d4e7a6b5c3d2e1f0a9b8c7d6e5f4a3b2"));
    assert!(!all.contains("0c6d2a1b9e8f7d6c5b4a39281706f5e4"));
    Ok(())
}

#[tokio::test]
async fn restart_keeps_everything_on_sqlite() -> anyhow::Result<()> {
    restart_keeps_everything(Db::sqlite()?).await
}

#[tokio::test]
async fn restart_keeps_everything_on_postgres() -> anyhow::Result<()> {
    let Some(db) = Db::postgres()? else {
        return Ok(());
    };
    restart_keeps_everything(db).await
}

#[tokio::test]
async fn a_bad_config_value_stops_startup_naming_file_line_and_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("app.conf");
    std::fs::write(&conf, "httpport = 8000\nhttpport = abc\n")?;
    let out = std::process::Command::new(iam_e2e::binary("iam")?)
        .arg("--config")
        .arg(&conf)
        .current_dir(dir.path())
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: key httpport", conf.display())),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_malformed_seed_file_stops_startup_and_writes_nothing() -> anyhow::Result<()> {
    let db = Db::sqlite()?;
    let dir = tempfile::tempdir()?;
    let seed = dir.path().join("init_data.json");
    std::fs::write(
        &seed,
        r#"{"organizations":[{"name":"acme"}],
            "applications":[{"name":"acme-app","organization":"acme","providers":[{"name":"nope"}]}]}"#,
    )?;
    let mut opts = IamOptions::new(&db);
    opts.init_data = Some(seed);
    let err = match Iam::start(&opts) {
        Ok(_) => anyhow::bail!("start-up should fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        // The message reaches the test through a JSON log line, quotes escaped.
        err.contains("nope") && err.contains("listed by application") && err.contains("acme-app"),
        "{err}"
    );
    let store = db.store().await?;
    assert!(
        store.get_organization("acme").await?.is_none(),
        "nothing half-loaded"
    );
    Ok(())
}

#[tokio::test]
async fn the_sealing_key_is_required_in_prod_and_generated_privately_in_dev() -> anyhow::Result<()>
{
    use std::os::unix::fs::PermissionsExt;
    let db = Db::sqlite()?;
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("app.conf");
    let base = format!(
        "httpaddr = 127.0.0.1\nhttpport = 0\ndataSourceName = {}\ninitDataFile = none.json\n\
         sessionKeyFile = {}\n",
        db.url(),
        dir.path().join("keys/session.key").display()
    );
    std::fs::write(
        &conf,
        format!("{base}runmode = prod\norigin = http://127.0.0.1\n"),
    )?;
    let out = std::process::Command::new(iam_e2e::binary("iam")?)
        .arg("--config")
        .arg(&conf)
        .current_dir(dir.path())
        .env("IAM_ADMIN_PASSWORD", "x")
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sessionKeyEncryptionKey is not set"), "{err}");

    std::fs::write(&conf, format!("{base}runmode = dev\n"))?;
    let mut cmd = std::process::Command::new(iam_e2e::binary("iam")?);
    cmd.arg("--config")
        .arg(&conf)
        .current_dir(dir.path())
        .env("IAM_ADMIN_PASSWORD", "x");
    let mut child = iam_e2e::Proc::spawn_for_test("iam", cmd)?;
    let warning = child.wait_for("generated a key for development", Duration::from_secs(30))?;
    assert!(!warning.is_empty());
    child.wait_for("listening on ", Duration::from_secs(30))?;
    assert!(child.terminate(Duration::from_secs(10))?.success());
    let key_file = dir.path().join("keys/session.key");
    let mode = std::fs::metadata(&key_file)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its owner can read the generated key");
    let key = std::fs::read_to_string(&key_file)?;
    assert!(
        !child.lines().iter().any(|l| l.contains(key.trim())),
        "the key itself is never logged"
    );
    // In prod a key file the operator put there (the same on every node) is used as it is.
    std::fs::write(
        &conf,
        format!("{base}runmode = prod\norigin = http://127.0.0.1\n"),
    )?;
    let mut cmd = std::process::Command::new(iam_e2e::binary("iam")?);
    cmd.arg("--config")
        .arg(&conf)
        .current_dir(dir.path())
        .env("IAM_ADMIN_PASSWORD", "x");
    let mut child = iam_e2e::Proc::spawn_for_test("iam", cmd)?;
    child.wait_for("listening on ", Duration::from_secs(30))?;
    assert!(child.terminate(Duration::from_secs(10))?.success());
    assert_eq!(
        std::fs::read_to_string(&key_file)?,
        key,
        "read, never replaced"
    );
    Ok(())
}
