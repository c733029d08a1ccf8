//! The operator's commands: `iam admin`, `iam app`, `iam backup`. They work on the configured
//! database through the same use cases as the API. Secrets go to standard output, once, and
//! never through the log.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, Result};
use iam_domain::values::split_id;

use crate::config::Config;
use crate::serve::{open_iam, write_private};
use crate::{AdminCommand, AppCommand, CertCommand};

pub async fn admin(config: &Config, command: AdminCommand) -> Result<()> {
    let AdminCommand::ResetPassword { user } = command;
    let (owner, name) = split_id("--user", &user)?;
    let (_, iam) = open_iam(config).await?;
    let stdin = std::io::stdin();
    // One line from standard input when something is piped in; otherwise (a terminal, or
    // nothing) a random password, printed once.
    let mut piped = String::new();
    if !stdin.is_terminal() {
        stdin
            .lock()
            .read_to_string(&mut piped)
            .context("cannot read the new password from standard input")?;
    }
    let line = piped.lines().next().unwrap_or_default().to_owned();
    let (password, generated) = if line.is_empty() {
        (iam_jwt::password::random_password(), true)
    } else {
        (line, false)
    };
    iam.set_password(owner.as_str(), name.as_str(), &password)
        .await?;
    tracing::info!(user = %user, "password reset by the operator");
    if generated {
        println!("{password}");
    } else {
        println!("password of {user} set");
    }
    Ok(())
}

fn app_name(id: &str) -> &str {
    id.split_once('/').map(|(_, n)| n).unwrap_or(id)
}

pub async fn app(config: &Config, command: AppCommand) -> Result<()> {
    let (_, iam) = open_iam(config).await?;
    match command {
        AppCommand::ShowCredentials { id } => {
            let (client_id, secret) = iam.client_credentials(app_name(&id)).await?;
            println!("clientId:     {client_id}");
            println!("clientSecret: {}", secret.expose());
        }
        AppCommand::RotateSecret { id } => {
            let secret = iam.rotate_client_secret(app_name(&id)).await?;
            tracing::info!(application = %id, "client secret rotated by the operator");
            println!("clientSecret: {}", secret.expose());
        }
    }
    Ok(())
}

pub async fn backup(config: &Config, file: &Path) -> Result<()> {
    let (store, _) = open_iam(config).await?;
    store
        .backup(file)
        .await
        .with_context(|| format!("backup into {}", file.display()))?;
    println!(
        "backed up {} into {}",
        config.data_source_name,
        file.display()
    );
    Ok(())
}

pub async fn cert(config: &Config, command: CertCommand) -> Result<()> {
    let CertCommand::Rotate { cert } = command;
    let (_, iam) = open_iam(config).await?;
    let new = iam.rotate_signing_cert(&cert).await?;
    tracing::info!(old = %cert, new = %new, "signing key rotated by the operator");
    println!("{new} now signs instead of {cert}; {cert} stays in the JWKS until its tokens expire");
    Ok(())
}

pub async fn export(config: &Config, out: Option<&Path>, secrets: &str) -> Result<()> {
    let how = match secrets {
        "sealed" => iam_domain::seed::ExportSecrets::Sealed,
        "omit" => iam_domain::seed::ExportSecrets::Omitted,
        other => anyhow::bail!("--secrets {other:?}: sealed or omit"),
    };
    let (_, iam) = open_iam(config).await?;
    // The database is read on one thread and the file written on another, two pages apart at
    // most: what the export holds is bounded, however many users there are.
    let (to, parts) = std::sync::mpsc::sync_channel(2);
    let write = move |out: &mut dyn std::io::Write| {
        iam_wire::write_export(parts, out).map_err(std::io::Error::from)
    };
    let (read, written) = match out {
        Some(path) => tokio::join!(iam.export(how, to), write_private(path, write)),
        None => {
            let to_stdout = tokio::task::spawn_blocking(move || {
                let mut out =
                    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
                let n = write(&mut out)?;
                std::io::Write::flush(&mut out)?;
                Ok::<_, std::io::Error>(n)
            });
            let (read, written) = tokio::join!(iam.export(how, to), to_stdout);
            let written = written
                .map_err(anyhow::Error::from)
                .and_then(|w| w.context("cannot write the export to standard output"));
            (read, written)
        }
    };
    // A failed read is the cause when both fail: the writer then only saw the parts stop.
    if !read? {
        return Err(written
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("the export stopped early")));
    }
    let n = written?;
    let into = out.map_or("standard output".to_owned(), |p| p.display().to_string());
    eprintln!(
        "exported {} users and {} WeChat identities into {into}",
        n.users, n.identities
    );
    Ok(())
}
