//! `wechat-sim`: a standalone server that behaves like api.weixin.qq.com for code2Session, access
//! tokens, phone numbers and checkSession, plus a control API under `/sim` that plays the phone's
//! side and lets tests inject faults and move the clock. It depends on nothing of the server.

pub mod control;
pub mod state;
pub mod wechat;

use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server, get, post};

pub use state::{DEFAULT_APPID, DEFAULT_SECRET, Sim};

pub struct Options {
    pub addr: String,
    /// (appid, secret, open platform id)
    pub apps: Vec<(String, String, Option<String>)>,
    pub session_key_min_age_secs: i64,
    pub jscode2session_content_type: String,
}

/// `APPID:SECRET[:OPEN_PLATFORM_ID]`.
pub fn parse_app(spec: &str) -> Result<(String, String, Option<String>), String> {
    let mut parts = spec.splitn(3, ':');
    let appid = parts.next().unwrap_or_default();
    let secret = parts.next().unwrap_or_default();
    if appid.is_empty() || secret.is_empty() {
        return Err("expected APPID:SECRET[:OPEN_PLATFORM_ID]".into());
    }
    let platform = parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
    Ok((appid.to_owned(), secret.to_owned(), platform))
}

pub fn routes(sim: Arc<Sim>) -> impl poem::Endpoint {
    Route::new()
        .at("/sns/jscode2session", get(wechat::jscode2session))
        .at("/cgi-bin/token", get(wechat::token))
        .at("/cgi-bin/stable_token", post(wechat::stable_token))
        .at(
            "/wxa/business/getuserphonenumber",
            post(wechat::getuserphonenumber),
        )
        .at("/wxa/checksession", get(wechat::checksession))
        .at("/wxa/resetusersessionkey", get(wechat::resetusersessionkey))
        .at("/sim/encrypted-data", post(control::encrypted_data))
        .at("/sim/session-key", post(control::set_session_key))
        .at("/sim/login", post(control::login))
        .at("/sim/phone-code", post(control::phone_code))
        .at("/sim/apps", post(control::add_app))
        .at(
            "/sim/faults",
            post(control::add_fault).delete(control::clear_faults),
        )
        .at("/sim/risky", post(control::risky))
        .at("/sim/clock", post(control::clock))
        .at("/sim/stats", get(control::stats))
        .at("/sim/user", get(control::user))
        .data(sim)
}

/// SIGTERM or Ctrl-C, with both handlers installed *now*: a signal that arrives after the
/// "listening" line but before the server first polls this future still stops it gracefully
/// instead of killing the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
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
    }
}

pub async fn run(options: Options) -> Result<(), String> {
    // Thousands of concurrent slowed requests need thousands of sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let sim = Arc::new(Sim::new(
        options.session_key_min_age_secs,
        options.jscode2session_content_type,
    ));
    if options.apps.is_empty() {
        sim.add_app(DEFAULT_APPID, DEFAULT_SECRET, None);
    }
    for (appid, secret, platform) in options.apps {
        sim.add_app(&appid, &secret, platform);
    }
    let sweeper = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                every.tick().await;
                sim.sweep();
            }
        })
    };
    let acceptor = TcpListener::bind(options.addr.clone())
        .into_acceptor()
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.addr))?;
    let local = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or("no local address")?;
    let stop = shutdown_signal();
    println!("wechat-sim listening on {local}");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(routes(sim), stop, Some(Duration::from_secs(5)))
        .await
        .map_err(|e| e.to_string())?;
    sweeper.abort();
    Ok(())
}
