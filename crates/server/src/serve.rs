//! Wiring: the one place that knows every adapter.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use iam_api::{AppState, IpLimiter, Metrics};
use iam_domain::Secret;
use iam_domain::access_tokens::ClusterAccessTokens;
use iam_domain::ports::{Repository, SessionSealer};
use iam_domain::service::{Iam, Ports};
use iam_jwt::JwtCodec;
use iam_jwt::password::Argon2Passwords;
use iam_jwt::seal::SessionKeySealer;
use iam_store::RecordWriter;
use iam_store::{Driver, Store};
use iam_wechat::{CodeGate, WechatClient, WechatConfig};
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};

use crate::bootstrap;
use crate::config::{Config, RunMode};

/// The store, migrated; with the sealing key, its secrets sealed at rest (those an older version
/// left in plaintext are sealed now).
async fn open_store(config: &Config, sealer: Option<Arc<dyn SessionSealer>>) -> Result<Store> {
    let driver = Driver::parse(&config.driver_name).with_context(|| {
        format!(
            "driverName {:?} is not sqlite or postgres",
            config.driver_name
        )
    })?;
    let store = Store::open(driver, &config.data_source_name, config.db_pool_size)
        .await
        .context("cannot open the database")?;
    let store = match sealer {
        Some(sealer) => store.with_sealer(sealer),
        None => store,
    };
    let applied = store.migrate().await?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    let sealed = store.seal_plaintext_secrets().await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "secrets stored in plaintext by an older version are now sealed"
        );
    }
    Ok(store)
}

pub async fn migrate_only(config: &Config) -> Result<()> {
    open_store(config, None).await?;
    tracing::info!("database is up to date");
    Ok(())
}

/// SIGTERM or Ctrl-C, with the handlers installed when this is *called*, not when the server
/// first polls the future: a signal that arrives right after the "listening on" line (a test or
/// an orchestrator stopping a node that just came up) drains and exits 0 instead of killing
/// the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; draining in-flight requests");
    }
}

/// The use cases on this configuration's adapters: the one place that wires them.
pub fn build_iam(
    config: &Config,
    store: Store,
    sealer: Arc<dyn SessionSealer>,
    metrics: &Metrics,
) -> Result<Iam> {
    let observer = {
        let m = metrics.clone();
        Arc::new(move |api: &str, errcode: &str| m.wechat_call(api, errcode))
    };
    let wechat = WechatClient::new(WechatConfig::new(
        config.wechat_api_base.clone(),
        Duration::from_millis(config.wechat_timeout_ms),
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .with_observer(observer);
    let repo: Arc<dyn iam_domain::ports::Repository> = Arc::new(store);
    // One access token per appid for every node on this database (SPEC §12).
    let wechat = wechat.with_shared_tokens(Arc::new(ClusterAccessTokens::new(
        repo.clone(),
        sealer.clone(),
    )));
    let dropped = {
        let m = metrics.clone();
        Arc::new(move || m.record_dropped())
    };
    let (audit, _writer) = RecordWriter::spawn(repo.clone(), config.audit_queue_size, dropped);
    Ok(Iam::new(Ports {
        repo,
        wechat: Arc::new(CodeGate::new(wechat)),
        codec: Arc::new(JwtCodec::new()),
        sealer,
        passwords: Arc::new({
            let wait = Duration::from_millis(config.password_hash_wait_ms);
            match config.password_hash_concurrency {
                0 => Argon2Passwords::per_core(wait),
                n => Argon2Passwords::new(n, wait),
            }
        }),
        events: Arc::new(metrics.clone()),
        audit: Arc::new(audit),
    }))
}

/// The use cases on a server's existing database, for the operator's commands (`iam admin`,
/// `app`, `backup`, `cert`, `export`). Unlike a start, they never create a SQLite database: a
/// mistyped `dataSourceName` would otherwise be a new empty one, and `iam export` of it a
/// "successful" export of nothing.
pub async fn open_iam(config: &Config) -> Result<(Store, Iam)> {
    let path = config.data_source_name.as_str();
    if Driver::parse(&config.driver_name) == Some(Driver::Sqlite)
        && path != ":memory:"
        && !path.starts_with("file:")
        && !std::path::Path::new(path).exists()
    {
        anyhow::bail!(
            "no database at {path} (dataSourceName): this command works on a server's existing \
             database, which the server creates on its first start"
        );
    }
    let sealer: Arc<dyn SessionSealer> = Arc::new(session_key_sealer(config).await?);
    let store = open_store(config, Some(sealer.clone())).await?;
    let iam = build_iam(config, store.clone(), sealer, &Metrics::new())?;
    Ok((store, iam))
}

pub async fn serve(config: Config) -> Result<()> {
    tracing::info!(
        config = %config.source,
        driver = %config.driver_name,
        wechat_api_base = %config.wechat_api_base,
        "starting"
    );
    // Everything that can stop a start is checked before anything is created: the sealing key,
    // the database, the listening address, the seed file. So the credentials a first start
    // prints are never printed and then lost to a failed start.
    let sealer: Arc<dyn SessionSealer> = Arc::new(session_key_sealer(&config).await?);
    let store = open_store(&config, Some(sealer.clone())).await?;
    // Every 200 ms. Once a second was tried (a page written many times within the second is
    // copied once): no less CPU per sign-in within the runs' spread, and the longer log made the
    // tail slower (p99 410 ms against 242) and the log larger.
    store.spawn_checkpointer(Duration::from_millis(200), iam_store::WAL_RESET_BYTES);
    let addr = format!("{}:{}", config.http_addr, config.http_port);
    let acceptor = TcpListener::bind(addr.clone())
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // What one client can hold of this node (SPEC §12): connections per address and in all
    // (below the descriptor limit, raised to its hard limit), and a header's arrival time.
    let descriptors = crate::raise_descriptor_limit();
    let total = match config.max_connections {
        0 => (descriptors.saturating_sub(256) as usize).max(64),
        n => n,
    };
    if total as u64 + 64 > descriptors {
        tracing::warn!(
            max_connections = total,
            descriptors,
            "maxConnections is near the descriptor limit: other files may fail to open"
        );
    }
    let limits = crate::guard::Limits::new(
        config.max_connections_per_address,
        total,
        Duration::from_millis(config.header_timeout_ms),
    );
    tracing::info!(
        max_connections = total,
        per_address = config.max_connections_per_address,
        descriptors,
        "connection caps"
    );
    let acceptor = crate::guard::Guarded::new(acceptor, limits);
    let Some(local) = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
    else {
        bail!("listener on {addr} has no local address");
    };
    // The issuer is never taken from a request (SPEC §12): a prod configuration without an
    // origin does not load; dev without one issues for this listener on localhost.
    let origin = match config.origin.as_str() {
        "" => format!("http://localhost:{}", local.port()),
        o => o.to_owned(),
    };
    tracing::info!(origin = %origin, "issuer");
    let metrics = Metrics::new();
    let counted = store.clone();
    metrics.count_statements(Box::new(move || counted.statements_sent()));
    let iam = build_iam(&config, store.clone(), sealer, &metrics)?;
    let seed = bootstrap::prepare_init_data(&iam, &config).await?;

    bootstrap::ensure_built_ins(&store, seed.as_ref()).await?;
    if let Some(bundle) = seed {
        bootstrap::apply_init_data(&iam, bundle, &config).await?;
    }
    let bench_cert = if config.bench_endpoints {
        tracing::warn!("benchEndpoints = true: POST /bench/sign is served (for load tests only)");
        store.get_cert(iam_domain::model::BUILT_IN_CERT).await?
    } else {
        None
    };
    let state = Arc::new(AppState {
        iam,
        metrics,
        origin: origin.clone(),
        rate_limit: IpLimiter::new(config.token_rate_limit_per_ip),
        bench_cert,
        user_list_max: config.user_list_max,
        trusted_proxies: config.trusted_proxies.clone(),
        metrics_elsewhere: config.metrics_addr.is_some(),
    });
    // Revocations made before this start are in force from the first request.
    state.iam.sync_revocations().await?;
    spawn_session_tasks(
        state.clone(),
        Duration::from_secs(config.purge_interval_seconds),
        config.audit_retention_days,
    );
    if let Some(addr) = config.metrics_addr {
        let listener = TcpListener::bind(addr.to_string())
            .into_acceptor()
            .await
            .with_context(|| format!("metricsAddr: cannot listen on {addr}"))?;
        let endpoint = iam_api::health::metrics_only(state.metrics.clone());
        tracing::info!(addr = %addr, "metrics served on their own address");
        tokio::spawn(async move {
            if let Err(e) = Server::new_with_acceptor(listener).run(endpoint).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let audit = state.iam.clone();
    let console = iam_console::Console::new(
        state.iam.clone(),
        origin,
        config.console_signin_limit_per_minute,
        config.trusted_proxies.clone(),
    );
    // The console beside the API, over the same use cases; `GET /` leads to it.
    let app = poem::EndpointExt::around(
        poem::Route::new()
            .nest("/console", iam_console::routes(console))
            .nest("/", iam_api::app(state)),
        iam_console::root_redirect,
    );
    let body_timeout = Duration::from_millis(config.body_timeout_ms);
    let app = poem::EndpointExt::around(app, move |ep, req| {
        crate::guard::body_deadline(ep, req, body_timeout)
    });
    let stop = shutdown_signal();
    // The exact line end-to-end tests and scripts wait for, with the real port when httpport = 0.
    tracing::info!(addr = %local, "listening on {local}");
    let served = Server::new_with_acceptor(acceptor)
        .idle_timeout(Duration::from_secs(config.idle_timeout_secs))
        .run_with_graceful_shutdown(app, stop, Some(Duration::from_secs(30)))
        .await
        .context("server error");
    // The audit records the last requests queued are written before the process ends.
    if tokio::time::timeout(Duration::from_secs(10), audit.flush_audit())
        .await
        .is_err()
    {
        tracing::warn!("audit records still queued after 10 s; stopping without them");
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Every node reads the revocation list every 250 ms (so a revocation made on another node is
/// honoured here within about a third of a second), and purges what expired every `purge`, in
/// bounded batches. Failures are logged and retried on the next tick; neither task ever holds
/// up a request.
fn spawn_session_tasks(state: Arc<AppState>, purge: Duration, retention_days: u32) {
    let poll = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = poll.iam.sync_revocations().await {
                tracing::warn!(error = %e, "cannot read the revocation list; retrying");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(purge);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match state
                .iam
                .purge_expired(PURGE_BATCH, PURGE_MAX_PASSES, retention_days)
                .await
            {
                Ok(r) if r.total() > 0 => tracing::info!(
                    sessions = r.sessions,
                    refresh_tokens = r.refresh_tokens,
                    revocations = r.revocations,
                    legacy_tokens = r.legacy_tokens,
                    records = r.records,
                    "purged expired rows"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed; retrying on the next tick"),
            }
            if let Err(e) = state.iam.roll_up_finished_days().await {
                tracing::warn!(error = %e, "cannot roll up the dashboard's days; retrying");
            }
        }
    });
}

/// Rows per table per purge transaction, and transactions per tick: a tick deletes at most
/// 100,000 rows per table, each transaction short enough never to hold up sign-ins.
const PURGE_BATCH: u32 = 1000;
const PURGE_MAX_PASSES: u32 = 100;

/// The key that seals WeChat session keys at rest. Configured: used. Missing in `prod`: start-up
/// stops. Missing in `dev`: one is generated into `sessionKeyFile` (mode 0600) and reused.
async fn session_key_sealer(config: &Config) -> Result<SessionKeySealer> {
    if let Some(key) = &config.session_key_encryption_key {
        return SessionKeySealer::from_text(key)
            .map_err(|e| anyhow::anyhow!("sessionKeyEncryptionKey: {e}"));
    }
    // Every node of a cluster must have the same key: from sessionKeyEncryptionKey (the file or
    // an environment variable of that name), or from a file the operator put at sessionKeyFile.
    // Only dev makes one up.
    let path = config.session_key_file.clone();
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => {
            warn_if_readable_by_others(&path);
            Secret::new(t.trim())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.run_mode == RunMode::Prod => {
            bail!(
                "sessionKeyEncryptionKey is not set and sessionKeyFile {} does not exist: in prod, \
                 session keys, signing keys, client secrets and AppSecrets are sealed with a key \
                 you keep, the same on every node (64 hex characters, e.g. from `openssl rand \
                 -hex 32`, in sessionKeyEncryptionKey or in that file)",
                path.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SessionKeySealer::generate_text().map_err(|e| anyhow::anyhow!("{e}"))?;
            let text = key.expose().to_owned();
            write_private(&path, move |f| f.write_all(text.as_bytes())).await?;
            tracing::warn!(
                file = %path.display(),
                "sessionKeyEncryptionKey is not set: generated a key for development into this \
                 file; set sessionKeyEncryptionKey in production"
            );
            key
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    SessionKeySealer::from_text(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The sealing key's file should be its owner's only: say so when it is not.
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", m.permissions().mode() & 0o777),
            "the sealing key file can be read by other users: chmod 600 it"
        );
    }
}

/// Writes a file only its owner can read (a sealing key; an export's password hashes and
/// sealed keys), through `write`, off the async workers. It is never written over, reaches the
/// disk before this returns, and a failed write leaves no half-written file behind.
pub(crate) async fn write_private<T: Send + 'static>(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> Result<T> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, f);
        let written = write(&mut out).and_then(|t| {
            out.flush()?;
            out.get_ref().sync_all()?;
            Ok(t)
        });
        written.or_else(|e| {
            drop(out);
            let _ = std::fs::remove_file(&path);
            Err(e).with_context(|| format!("cannot write {}", path.display()))
        })
    })
    .await?
}
