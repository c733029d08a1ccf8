//! Wiring: the one place that knows every adapter.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use iam_api::{AppState, Metrics};
use iam_store::{Driver, Store};
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};

use crate::bootstrap;
use crate::config::Config;

async fn open_store(config: &Config) -> Result<Store> {
    let driver = Driver::parse(&config.driver_name).with_context(|| {
        format!(
            "driverName {:?} is not sqlite or postgres",
            config.driver_name
        )
    })?;
    let store = Store::open(driver, &config.data_source_name, config.db_pool_size)
        .await
        .context("cannot open the database")?;
    let applied = store.migrate().await?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    Ok(store)
}

pub async fn migrate_only(config: &Config) -> Result<()> {
    open_store(config).await?;
    tracing::info!("database is up to date");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

pub async fn serve(config: Config) -> Result<()> {
    tracing::info!(
        config = %config.source,
        driver = %config.driver_name,
        wechat_api_base = %config.wechat_api_base,
        "starting"
    );
    let store = open_store(&config).await?;
    bootstrap::ensure_built_ins(&store).await?;
    bootstrap::load_init_data(&store, &config).await?;

    let state = Arc::new(AppState {
        repo: Arc::new(store),
        metrics: Metrics::new(),
    });
    let app = iam_api::app(state);

    let addr = format!("{}:{}", config.http_addr, config.http_port);
    let acceptor = TcpListener::bind(addr.clone())
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let Some(local) = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
    else {
        bail!("listener on {addr} has no local address");
    };
    // The exact line end-to-end tests and scripts wait for, with the real port when httpport = 0.
    tracing::info!(addr = %local, "listening on {local}");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown_signal(), Some(Duration::from_secs(30)))
        .await
        .context("server error")?;
    tracing::info!("stopped");
    Ok(())
}
