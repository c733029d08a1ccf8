//! `iam`: the identity server.

mod bootstrap;
mod config;
mod guard;
mod init_data;
mod operate;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, RunMode};

/// Hanzo IAM in Rust: WeChat Mini Program sign-in without an OAuth redirect, wire-compatible with
/// Casdoor.
#[derive(Parser)]
#[command(name = "iam", version)]
struct Cli {
    /// The configuration file (default conf/app.conf).
    #[arg(long, global = true, env = "IAM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default): migrate, create built-ins, load init data, listen.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Administrators: recover access.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Applications: show or rotate client credentials.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Copy a live SQLite database, consistently, into FILE (which must not exist).
    Backup { file: PathBuf },
    /// Write everything (configuration, keys, users with their WeChat identities) in Casdoor's
    /// init_data.json shape, for another server's initDataFile.
    Export {
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// `sealed` (with the sealing key: the new server needs the same key) or `omit` (new
        /// secrets and signing keys are made on import; issued tokens then stop verifying).
        #[arg(long, default_value = "sealed")]
        secrets: String,
    },
    /// Signing keys: rotate.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// A new key signs from now on, for every application the old one signed for; the old one
    /// stays in the JWKS until the last token it signed has expired.
    Rotate {
        /// The cert to rotate out.
        #[arg(long, default_value = "cert-built-in")]
        cert: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a user's password: read from standard input when it is not a terminal, else a random
    /// one is printed once.
    ResetPassword {
        /// The user, `owner/name`.
        #[arg(long, default_value = "built-in/admin")]
        user: String,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Print an application's client id and secret.
    ShowCredentials {
        /// The application, `admin/name` (or just its name).
        id: String,
    },
    /// Give an application a new client secret (printed once); the old one stops working.
    RotateSecret {
        /// The application, `admin/name` (or just its name).
        id: String,
    },
}

fn init_tracing(mode: RunMode) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IAM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match mode {
        RunMode::Prod => builder.json().flatten_event(true).init(),
        RunMode::Dev => builder.init(),
    }
}

/// Large allocations (argon2's 19 MB per password check) are mapped and unmapped on their own
/// instead of staying in the arena of whichever blocking thread ran them: glibc's threshold
/// otherwise rises after the first such free, and each thread keeps its 19 MB (a burst of
/// password attempts left 650 MB resident though only two checks ever ran at once).
fn keep_large_allocations_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called once, first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Open connections hold file descriptors: the soft limit goes up to the hard one, and the
/// connection cap stays below it (SPEC §12).
pub fn raise_descriptor_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit on this process's own limits, with a valid pointer.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1024;
        }
        if l.rlim_cur < l.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l.rlim_cur = l.rlim_max;
            }
        }
        l.rlim_cur
    }
}

fn main() -> ExitCode {
    keep_large_allocations_apart();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", iam_api::openapi_json());
        return ExitCode::SUCCESS;
    }
    let (path, explicit) = match cli.config {
        Some(p) => (p, true),
        None => (PathBuf::from("conf/app.conf"), false),
    };
    let config = match Config::load(&path, explicit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("iam: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.run_mode);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    iam_jwt::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("iam: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Migrate) => serve::migrate_only(&config).await,
            Some(Command::Admin { command }) => operate::admin(&config, command).await,
            Some(Command::App { command }) => operate::app(&config, command).await,
            Some(Command::Backup { file }) => operate::backup(&config, &file).await,
            Some(Command::Cert { command }) => operate::cert(&config, command).await,
            Some(Command::Export { out, secrets }) => {
                operate::export(&config, out.as_deref(), &secrets).await
            }
            _ => serve::serve(config).await,
        }
    });
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("iam: {e:#}");
            1
        }
    };
    // Dropping the runtime waits for every task and blocking call to finish.
    drop(runtime);
    exit_now(code)
}

/// Ends the process without the C library's exit handlers. The connection pool's own threads
/// are not joined when it is dropped: one may still be opening or closing a PostgreSQL
/// connection, and libpq's TLS library tears itself down in those handlers — a SIGSEGV on
/// SIGTERM was seen in CI. Everything worth keeping is written by now; the streams are flushed.
fn exit_now(code: i32) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; nothing after it runs, no memory is touched.
    unsafe { libc::_exit(code) }
}
