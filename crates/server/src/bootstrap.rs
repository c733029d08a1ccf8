//! First-start objects (SPEC §6) and the seed file. Existing objects are never overwritten here,
//! and certs are never regenerated: a restart finds everything as it was.

use anyhow::{Context, Result};
use chrono::Utc;
use iam_domain::Secret;
use iam_domain::model::{BUILT_IN_APP, BUILT_IN_CERT, BUILT_IN_ORG, SeedBundle};
use iam_domain::objects::random_hex;
use iam_domain::ports::Repository;
use iam_domain::seed;
use iam_domain::service::Iam;
use iam_domain::values::{ClientId, CryptoAlgorithm, ObjectName};

use crate::config::Config;
use crate::init_data;

/// Says something to the operator once, outside the log stream: generated credentials go to the
/// terminal that started the server and never through `tracing`.
fn tell_operator(lines: &[String]) {
    eprintln!("==================================================================");
    for l in lines {
        eprintln!("  {l}");
    }
    eprintln!("  (shown once here and never logged: keep it now)");
    eprintln!("==================================================================");
}

/// Creates what a first start creates, except what the seed file brings (an `iam export` of
/// another server carries its built-ins: its signing key, its administrator).
pub async fn ensure_built_ins(repo: &dyn Repository, seed: Option<&SeedBundle>) -> Result<()> {
    let now = Utc::now();
    let seeded = |f: &dyn Fn(&SeedBundle) -> bool| seed.is_some_and(f);
    if !seeded(&|b| b.organizations.iter().any(|o| o.name == BUILT_IN_ORG))
        && repo.get_organization(BUILT_IN_ORG).await?.is_none()
    {
        repo.insert_organization(&seed::built_in_organization(now))
            .await
            .context("creating organization built-in")?;
        tracing::info!("created organization built-in");
    }
    if !seeded(&|b| b.certs.iter().any(|c| c.name == BUILT_IN_CERT))
        && repo.get_cert(BUILT_IN_CERT).await?.is_none()
    {
        let name = ObjectName::parse("name", BUILT_IN_CERT)?;
        let cert = tokio::task::spawn_blocking(move || {
            iam_jwt::certs::generate_cert(&name, CryptoAlgorithm::Rs256, now)
        })
        .await??;
        repo.insert_cert(&cert)
            .await
            .context("storing cert-built-in")?;
        tracing::info!("generated cert-built-in (RSA 2048, self-signed X.509)");
    }
    if !seeded(&|b| b.applications.iter().any(|a| a.name == BUILT_IN_APP))
        && repo.get_application(BUILT_IN_APP).await?.is_none()
    {
        let client_id = ClientId::parse(&random_hex(20))?;
        let client_secret = random_hex(40);
        let app =
            seed::built_in_application(client_id.clone(), Secret::new(client_secret.clone()), now);
        repo.insert_application(&app)
            .await
            .context("creating application app-built-in")?;
        tracing::info!(client_id = %client_id, "created application app-built-in");
        tell_operator(&[
            "Application app-built-in (global administrator credentials):".into(),
            format!("clientId:     {client_id}"),
            format!("clientSecret: {client_secret}"),
        ]);
    }
    if !seeded(&|b| {
        b.users
            .iter()
            .any(|u| u.owner == BUILT_IN_ORG && u.name == "admin")
    }) && repo.get_user(BUILT_IN_ORG, "admin").await?.is_none()
    {
        let (password, generated) = match std::env::var("IAM_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (iam_jwt::password::random_password(), true),
        };
        let hash = tokio::task::spawn_blocking(move || {
            iam_jwt::password::hash_password(&password).map(|h| (h, password))
        })
        .await?
        .map_err(anyhow::Error::msg)?;
        let admin = seed::built_in_admin(uuid::Uuid::new_v4().to_string(), hash.0, now);
        repo.insert_user(&admin)
            .await
            .context("creating user built-in/admin")?;
        tracing::info!("created user built-in/admin");
        if generated {
            tell_operator(&[
                "User built-in/admin was created with a random password:".into(),
                format!("password: {}", hash.1),
                "Set IAM_ADMIN_PASSWORD before the first start to choose it.".into(),
            ]);
        }
    }
    Ok(())
}

/// Reads and builds `initDataFile` (a missing file is `None`), writing nothing: a bad file
/// stops the start before anything is created.
pub async fn prepare_init_data(iam: &Iam, config: &Config) -> Result<Option<SeedBundle>> {
    let path = config.init_data_file.clone();
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f.into_std().await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(file = %path.display(), "no init data file; skipped");
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let inputs = tokio::task::spawn_blocking(move || {
        init_data::read(std::io::BufReader::with_capacity(1 << 20, file))
    })
    .await?
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bundle = iam
        .build_seed(inputs)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((!bundle.is_empty()).then_some(bundle))
}

/// Writes the seed in one transaction: all of it or nothing.
pub async fn apply_init_data(iam: &Iam, bundle: SeedBundle, config: &Config) -> Result<()> {
    let path = &config.init_data_file;
    let report = iam
        .apply_seed(bundle, config.init_data_new_only)
        .await
        .with_context(|| format!("{}: cannot load", path.display()))?;
    tracing::info!(
        file = %path.display(),
        created = report.created,
        replaced = report.replaced,
        kept = report.kept,
        "init data loaded"
    );
    Ok(())
}
