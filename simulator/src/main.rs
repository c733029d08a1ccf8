//! `wechat-sim`: a standalone fake of api.weixin.qq.com (see the crate's lib docs).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "wechat-sim",
    version,
    about = "A fake of api.weixin.qq.com for tests and benchmarks, with a control API under /sim"
)]
struct Cli {
    /// Address to listen on (port 0 picks a free one; the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: String,
    /// A mini program: APPID:SECRET[:OPEN_PLATFORM_ID] (repeatable). Without any, the default app
    /// wx5f3c1b2a9d8e7f60 / 0c6d2a1b9e8f7d6c5b4a39281706f5e4 is registered.
    #[arg(long = "app")]
    apps: Vec<String>,
    /// A user's session key rotates on a new login at most this often.
    #[arg(long, default_value_t = 60)]
    session_key_min_age_secs: i64,
    /// Content-Type of /sns/jscode2session answers (WeChat sends text/plain).
    #[arg(long, default_value = "text/plain")]
    jscode2session_content_type: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut apps = Vec::new();
    for spec in &cli.apps {
        match wechat_sim::parse_app(spec) {
            Ok(a) => apps.push(a),
            Err(e) => {
                eprintln!("wechat-sim: --app {spec:?}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wechat-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = wechat_sim::Options {
        addr: cli.addr,
        apps,
        session_key_min_age_secs: cli.session_key_min_age_secs,
        jscode2session_content_type: cli.jscode2session_content_type,
    };
    match runtime.block_on(wechat_sim::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wechat-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
