//! `iam-load`: launch-day load against real `wechat-sim` and `iam` processes.
//!
//! Drives mini program sign-ins over real HTTP (each virtual phone calls `/sim/login`, then posts
//! the code to `/oauth/token` as the product page does) with a given concurrency and duration,
//! and prints sign-ins per second, p50/p95/p99 latency, errors by kind, and the server's peak RSS
//! and CPU seconds. It also measures `POST /bench/sign` (parse + one RS256 signature, no WeChat,
//! no database) on the same server stack as the ceiling, and prints the ratio.
//!
//! `cargo run --release -p iam-e2e --bin iam-load -- --help`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use iam_e2e::{Db, Iam, IamOptions, WechatSim, workspace_root};
use serde_json::json;

mod million;

const APPID: &str = "wx5f3c1b2a9d8e7f60";
const CLIENT_ID: &str = "6825f4f0af45554c8952";
/// The demo application's secret in `conf/init_data.json`.
const CLIENT_SECRET: &str = "b8a2f1c9d4e7a6b5c3d2e1f0a9b8c7d6e5f4a3b2";

#[derive(Parser, Clone)]
#[command(
    name = "iam-load",
    about = "Mini program sign-in load against real wechat-sim and iam processes"
)]
struct Cli {
    /// Seconds per measured scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent clients for the CPU-bound scenarios.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrent clients of the slowed-WeChat scenario.
    #[arg(long, default_value_t = 2000)]
    slow_concurrency: usize,
    /// Scenarios to run (comma list): bare, returning, client-credentials, bearer, first, slow,
    /// busy, postgres, purge, million (SQLite, and PostgreSQL when a URL is given), passwords
    /// (500 concurrent password attempts beside mini program sign-ins), nodes (returning
    /// sign-ins over 1, 2 and 3 nodes on one PostgreSQL, with its transactions per sign-in),
    /// held (sign-ins while another address holds 3,000 half-sent requests), export (`iam
    /// export` of --export-users users, loaded by new SQLite and PostgreSQL servers).
    #[arg(
        long,
        default_value = "bare,returning,client-credentials,bearer,first,slow,busy,postgres"
    )]
    scenarios: String,
    /// PostgreSQL admin URL for the postgres scenarios (default: IAM_TEST_POSTGRES_URL).
    #[arg(long)]
    postgres: Option<String>,
    /// Users signed in once before the returning-users scenario.
    #[arg(long, default_value_t = 500)]
    returning_users: usize,
    /// Users of the million scenario (SPEC §10's benchmark).
    #[arg(long, default_value_t = 1_000_000)]
    million_users: u64,
    /// Audit records of the million scenario.
    #[arg(long, default_value_t = 5_000_000)]
    million_records: u64,
    /// Users of the export scenario (`iam export`, then a new server loading the file).
    #[arg(long, default_value_t = 1_000_000)]
    export_users: u64,
    /// Sign-ins of the purge scenario.
    #[arg(long, default_value_t = 100_000)]
    purge_signins: u64,
    /// Target a running iam (base URL) instead of starting one per scenario. It needs
    /// `benchEndpoints = true` for the bare scenario and `tokenRateLimitPerIp = 0`.
    #[arg(long, requires = "sim_url")]
    iam_url: Option<String>,
    /// The running wechat-sim that iam uses (with --iam-url).
    #[arg(long, requires = "iam_url")]
    sim_url: Option<String>,
    /// The running iam's process id, for its peak RSS and CPU seconds (with --iam-url).
    #[arg(long)]
    iam_pid: Option<u32>,
}

/// Where the load goes: the simulator and the server, and the server's pid when known.
#[derive(Clone)]
struct Target {
    sim: String,
    iam: String,
    /// More nodes behind the same database: sign-ins are spread over `iam` and these, worker
    /// by worker, as a load balancer spreads clients.
    others: Vec<String>,
    pid: Option<u32>,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.iam)
    }

    /// `path` on the node worker `worker` talks to.
    fn url_for(&self, worker: usize, path: &str) -> String {
        match worker % (self.others.len() + 1) {
            0 => self.url(path),
            n => format!("{}{path}", self.others[n - 1]),
        }
    }

    async fn exchanges(&self) -> u64 {
        let v: serde_json::Value = match reqwest::get(format!("{}/sim/stats", self.sim)).await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return 0,
        };
        v["calls"]["jscode2session"].as_u64().unwrap_or(0)
    }

    async fn fault(&self, fault: serde_json::Value) -> Result<()> {
        reqwest::Client::new()
            .post(format!("{}/sim/faults", self.sim))
            .json(&fault)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    async fn clear_faults(&self) -> Result<()> {
        reqwest::Client::new()
            .delete(format!("{}/sim/faults", self.sim))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
    latencies: std::sync::Mutex<Vec<Duration>>,
}

impl Tally {
    fn error(&self, kind: String) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(kind).or_default() += 1;
        }
    }
}

struct Outcome {
    name: String,
    rate: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    ok: u64,
    errors: BTreeMap<String, u64>,
    peak_rss_mb: f64,
    cpu_secs: f64,
    wechat_calls: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// Peak RSS (VmHWM) in MB and CPU seconds (utime + stime) of a process, from /proc.
fn proc_usage(pid: Option<u32>) -> (f64, f64) {
    let Some(pid) = pid else {
        return (f64::NAN, f64::NAN);
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime is 11, stime is 12 (man 5 proc, minus 3).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (hwm_kb / 1024.0, cpu)
}

enum Mode {
    /// Sign in as one of `n` known users.
    Returning(usize),
    /// Sign in as someone new every time.
    First,
    /// `/bench/sign`: the ceiling.
    Bare,
    /// `client_credentials` at the token endpoint: an application token, nothing stored.
    ClientCredentials,
    /// `GET /api/get-account` with these users' access tokens (one per worker, round robin).
    Bearer(Vec<String>),
    /// `GET /healthz`: the ceiling of a request that does nothing.
    Healthz,
}

impl Mode {
    /// Whether each request needs a fresh `wx.login()` code.
    fn signs_in(&self) -> bool {
        matches!(self, Mode::Returning(_) | Mode::First)
    }
}

async fn run_scenario(
    name: &str,
    target: &Target,
    mode: Mode,
    concurrency: usize,
    duration: Duration,
) -> Result<Outcome> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency + 16)
        .timeout(Duration::from_secs(30))
        .build()?;
    let tally = Arc::new(Tally::default());
    let pid = target.pid;
    let (_, cpu_before) = proc_usage(pid);
    let calls_before = target.exchanges().await;
    let mode = Arc::new(mode);
    // wx.login() runs on the phones and WeChat's servers, not on the server under test: mint the
    // codes before the measured window so only the sign-ins themselves share this machine.
    let pools = premint(&client, &target.sim, &mode, concurrency, duration).await?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (worker, mut pool) in pools.into_iter().enumerate() {
        let (client, tally, mode) = (client.clone(), tally.clone(), mode.clone());
        let (sim_base, token_url) = (target.sim.clone(), target.url_for(worker, "/oauth/token"));
        let bench_url = target.url_for(worker, "/bench/sign");
        let account_url = target.url_for(worker, "/api/get-account");
        let health_url = target.url_for(worker, "/healthz");
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                n += 1;
                let code = match &*mode {
                    Mode::Bare => format!("0bench{worker}x{n}"),
                    m if m.signs_in() => match pool.pop() {
                        Some(c) => c,
                        None => {
                            let user = match m {
                                Mode::Returning(k) => {
                                    format!("returning-{}", (worker as u64 * 7919 + n) % *k as u64)
                                }
                                _ => format!("new-{worker}-{n}-{}", uuid::Uuid::new_v4().simple()),
                            };
                            let login = client
                                .post(format!("{sim_base}/sim/login"))
                                .json(&json!({"appid": APPID, "user": user}))
                                .send()
                                .await;
                            let v: serde_json::Value = match login {
                                Ok(r) => r.json().await.unwrap_or_default(),
                                Err(_) => {
                                    tally.error("sim login failed".into());
                                    continue;
                                }
                            };
                            v["code"].as_str().unwrap_or_default().to_owned()
                        }
                    },
                    _ => String::new(),
                };
                let sign_in = [
                    ("tag", "wechat_miniprogram"),
                    ("client_id", CLIENT_ID),
                    ("code", code.as_str()),
                    ("username", "Load"),
                    ("avatar", "https://thirdwx.qlogo.cn/load/132"),
                ];
                let request = match &*mode {
                    Mode::Bare => client.post(&bench_url).form(&sign_in),
                    Mode::Returning(_) | Mode::First => client.post(&token_url).form(&sign_in),
                    Mode::ClientCredentials => client.post(&token_url).form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", CLIENT_ID),
                        ("client_secret", CLIENT_SECRET),
                    ]),
                    Mode::Bearer(tokens) => client
                        .get(&account_url)
                        .bearer_auth(&tokens[(worker + n as usize) % tokens.len()]),
                    Mode::Healthz => client.get(&health_url),
                };
                let expect = match &*mode {
                    Mode::Bearer(_) => "\"status\":\"ok\"",
                    Mode::Healthz => "",
                    _ => "access_token",
                };
                let t = Instant::now();
                let r = request.send().await;
                match r {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body = resp.text().await.unwrap_or_default();
                        lat.push(t.elapsed());
                        if status == 200 && body.contains(expect) {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            let kind = serde_json::from_str::<serde_json::Value>(&body)
                                .ok()
                                .and_then(|v| v["error"].as_str().map(str::to_owned))
                                .unwrap_or_else(|| "unparsable".into());
                            tally.error(format!("HTTP {status} {kind}"));
                        }
                    }
                    Err(e) => tally.error(if e.is_timeout() {
                        "client timeout".into()
                    } else {
                        "connection".into()
                    }),
                }
            }
            if let Ok(mut l) = tally.latencies.lock() {
                l.extend(lat);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (peak_rss_mb, cpu_after) = proc_usage(pid);
    let mut lat = tally
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    lat.sort();
    let ok = tally.ok.load(Ordering::Relaxed);
    Ok(Outcome {
        name: name.into(),
        rate: ok as f64 / elapsed,
        p50: percentile(&lat, 0.50),
        p95: percentile(&lat, 0.95),
        p99: percentile(&lat, 0.99),
        ok,
        errors: tally.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        peak_rss_mb,
        cpu_secs: cpu_after - cpu_before,
        wechat_calls: target.exchanges().await.saturating_sub(calls_before),
    })
}

/// Codes minted ahead per second of the window: above the fastest sign-in rate measured (3,549/s
/// on a machine that signed 6,678 bare tokens a second), so no worker mints a code inside the
/// measured window, where it would share the machine with the server.
const PREMINTED_PER_SECOND: f64 = 5000.0;

/// Codes for each worker: enough for a generous rate over the whole window.
async fn premint(
    client: &reqwest::Client,
    sim: &str,
    mode: &Mode,
    concurrency: usize,
    duration: Duration,
) -> Result<Vec<Vec<String>>> {
    let per_worker = match mode {
        m if !m.signs_in() => 0,
        _ => ((PREMINTED_PER_SECOND * duration.as_secs_f64()) / concurrency as f64).ceil() as usize,
    };
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, sim) = (client.clone(), sim.to_owned());
        let users: Vec<String> = (0..per_worker)
            .map(|n| match mode {
                Mode::Returning(k) => format!("returning-{}", (worker * 7919 + n) % *k),
                _ => format!("new-{worker}-{n}-{}", uuid::Uuid::new_v4().simple()),
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::with_capacity(users.len());
            for user in users {
                let v: serde_json::Value = client
                    .post(format!("{sim}/sim/login"))
                    .json(&json!({"appid": APPID, "user": user}))
                    .send()
                    .await?
                    .json()
                    .await?;
                codes.push(v["code"].as_str().unwrap_or_default().to_owned());
            }
            Ok::<_, anyhow::Error>(codes)
        }));
    }
    let mut pools = Vec::new();
    for t in tasks {
        pools.push(t.await??);
    }
    Ok(pools)
}

fn print(o: &Outcome) {
    let errors: u64 = o.errors.values().sum();
    println!(
        "  {:<44} {:>8.0}/s  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms  ok {:>7}  errors {:>5}  peak RSS {:>6.1} MB  CPU {:>6.1} s",
        o.name,
        o.rate,
        o.p50.as_secs_f64() * 1e3,
        o.p95.as_secs_f64() * 1e3,
        o.p99.as_secs_f64() * 1e3,
        o.ok,
        errors,
        o.peak_rss_mb,
        o.cpu_secs,
    );
    for (k, v) in &o.errors {
        println!("      {v:>7} × {k}");
    }
}

/// A target, and the processes and database behind it when this tool started them.
struct Stack {
    target: Target,
    _procs: Option<(WechatSim, Iam, Db)>,
}

impl Stack {
    /// The rows of the session tables and, on SQLite, the database and write-ahead log sizes,
    /// when this tool owns the database.
    async fn print_sizes(&self) {
        let Some((_, _, db)) = &self._procs else {
            return;
        };
        if let Ok(store) = db.store().await {
            use iam_domain::ports::Repository;
            if let Ok([sessions, refresh, revocations, _]) = store.session_table_counts().await {
                println!(
                    "      rows: {sessions} sessions, {refresh} refresh tokens, {revocations} revocations"
                );
            }
        }
        if let Db::Sqlite { .. } = db {
            let size = |p: String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
            println!(
                "      database {:.1} MB, write-ahead log {:.1} MB",
                size(db.url()),
                size(format!("{}-wal", db.url()))
            );
        }
    }

    fn db(&self) -> Option<&Db> {
        self._procs.as_ref().map(|(_, _, db)| db)
    }
}

fn start(cli: &Cli, db: Db, extra: &[(&str, &str)]) -> Result<Stack> {
    if let (Some(iam), Some(sim)) = (&cli.iam_url, &cli.sim_url) {
        return Ok(Stack {
            target: Target {
                sim: sim.trim_end_matches('/').to_owned(),
                iam: iam.trim_end_matches('/').to_owned(),
                others: Vec::new(),
                pid: cli.iam_pid,
            },
            _procs: None,
        });
    }
    let sim = WechatSim::start()?;
    let mut opts = IamOptions::new(&db);
    opts.wechat_api_base = sim.base.clone();
    opts.init_data = Some(workspace_root().join("conf/init_data.json"));
    opts.extra_env
        .push(("tokenRateLimitPerIp".into(), "0".into()));
    opts.extra_env
        .push(("benchEndpoints".into(), "true".into()));
    opts.extra_env
        .push(("IAM_LOG".into(), "warn,iam::serve=info".into()));
    for (k, v) in extra {
        opts.extra_env.push(((*k).into(), (*v).into()));
    }
    let iam = Iam::start(&opts)?;
    let target = Target {
        sim: sim.base.clone(),
        iam: iam.base.clone(),
        others: Vec::new(),
        pid: Some(iam.proc.child.id()),
    };
    Ok(Stack {
        target,
        _procs: Some((sim, iam, db)),
    })
}

/// Signs each of `users` returning users in once; their access tokens, in order.
async fn warm_returning(stack: &Stack, users: usize) -> Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for chunk in (0..users)
        .collect::<Vec<_>>()
        .chunks(users.div_ceil(16).max(1))
    {
        let chunk = chunk.to_vec();
        let (client, sim, url) = (
            client.clone(),
            stack.target.sim.clone(),
            stack.target.url("/oauth/token"),
        );
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::with_capacity(chunk.len());
            for i in chunk {
                let v: serde_json::Value = client
                    .post(format!("{sim}/sim/login"))
                    .json(&json!({"appid": APPID, "user": format!("returning-{i}")}))
                    .send()
                    .await?
                    .json()
                    .await?;
                let code = v["code"].as_str().unwrap_or_default().to_owned();
                let r = client
                    .post(&url)
                    .form(&[
                        ("tag", "wechat_miniprogram"),
                        ("client_id", CLIENT_ID),
                        ("code", code.as_str()),
                    ])
                    .send()
                    .await?;
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                let token = body["access_token"].as_str().unwrap_or_default();
                anyhow::ensure!(
                    status == 200 && !token.is_empty(),
                    "warm-up sign-in failed: {status} {body}"
                );
                tokens.push(token.to_owned());
            }
            Ok::<_, anyhow::Error>(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(users);
    for t in tasks {
        tokens.extend(t.await??);
    }
    Ok(tokens)
}

/// CPU microseconds the server spent per successful request.
fn cpu_per_request(o: &Outcome) -> f64 {
    o.cpu_secs * 1e6 / o.ok.max(1) as f64
}

/// `client-credentials` and `bearer` on a stack, each beside its ceiling of the same run.
async fn token_and_bearer(
    cli: &Cli,
    stack: &Stack,
    label: &str,
    bare_rate: Option<f64>,
    want: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let duration = Duration::from_secs(cli.duration);
    if want("client-credentials") {
        let o = run_scenario(
            &format!("client_credentials, {label}"),
            &stack.target,
            Mode::ClientCredentials,
            cli.concurrency,
            duration,
        )
        .await?;
        print(&o);
        if let Some(b) = bare_rate {
            println!(
                "      ratio client_credentials / bare-sign = {:.2} (target ≥ 0.90)",
                o.rate / b
            );
        }
    }
    if want("bearer") {
        let h = run_scenario(
            &format!("GET /healthz, {label}"),
            &stack.target,
            Mode::Healthz,
            cli.concurrency,
            duration,
        )
        .await?;
        print(&h);
        let tokens = warm_returning(stack, cli.concurrency.clamp(1, 256)).await?;
        let o = run_scenario(
            &format!("Bearer GET /api/get-account, {label}"),
            &stack.target,
            Mode::Bearer(tokens),
            cli.concurrency,
            duration,
        )
        .await?;
        print(&o);
        println!(
            "      ratio get-account / healthz = {:.2} (target ≥ 0.30, goal 0.50); CPU {:.0} µs per call",
            o.rate / h.rate,
            cpu_per_request(&o)
        );
    }
    Ok(())
}

/// 100,000 sign-ins (`--purge-signins`) with sessions that end 5 s after they start, purged
/// every second: the session tables stay bounded while sign-ins go on. An application's
/// shortest lifetime is an hour, so the tool plays the clock: every second it moves the expiry
/// of each session (and its refresh tokens) older than 5 s to its start + 5 s.
async fn purge_run(cli: &Cli) -> Result<()> {
    let stack = start(cli, Db::sqlite()?, &[("purgeIntervalSeconds", "1")])?;
    let Some(db) = stack.db() else {
        println!("  (purge scenario skipped: it needs a database this tool owns)");
        return Ok(());
    };
    warm_returning(&stack, cli.returning_users).await?;
    let url = db.url();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ager = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut c = diesel::SqliteConnection::establish(&url)?;
            c.batch_execute("PRAGMA busy_timeout = 10000")?;
            while !stop.load(Ordering::Relaxed) {
                let fmt = |t: chrono::DateTime<chrono::Utc>| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                };
                let now = chrono::Utc::now();
                let cut = fmt(now - chrono::Duration::seconds(5));
                c.batch_execute(&format!(
                    "UPDATE sessions SET expires_time = '{cut}' WHERE created_time < '{cut}' AND expires_time > '{cut}';
                     UPDATE refresh_tokens SET expires_time = '{cut}' WHERE created_time < '{cut}' AND expires_time > '{cut}';"
                ))?;
                std::thread::sleep(Duration::from_secs(1));
            }
            Ok(())
        })
    };
    println!(
        "  purge: {} sign-ins, sessions ending 5 s after they start",
        cli.purge_signins
    );
    stack.print_sizes().await;
    let mut done = 0;
    while done < cli.purge_signins {
        let o = run_scenario(
            "returning users while the purge runs, SQLite",
            &stack.target,
            Mode::Returning(cli.returning_users),
            cli.concurrency,
            Duration::from_secs(10),
        )
        .await?;
        done += o.ok;
        print(&o);
        stack.print_sizes().await;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    ager.await??;
    println!("  after {done} sign-ins and 8 s of quiet:");
    stack.print_sizes().await;
    let metrics = reqwest::get(stack.target.url("/metrics"))
        .await?
        .text()
        .await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("iam_purged_rows_total"))
    {
        println!("      {line}");
    }
    Ok(())
}

/// Makes a fresh database of one kind.
type MakeDb = Box<dyn Fn() -> Result<Db>>;

/// SPEC §10's benchmark on SQLite and (with a URL) PostgreSQL: see `million.rs`.
async fn million_run(cli: &Cli, duration: Duration, pg_url: Option<&str>) -> Result<()> {
    let mut dbs: Vec<(&str, MakeDb)> = vec![("SQLite", Box::new(Db::sqlite))];
    if let Some(url) = pg_url {
        // SAFETY of the environment: only this thread reads it before the children start.
        unsafe { std::env::set_var("IAM_TEST_POSTGRES_URL", url) };
        dbs.push((
            "PostgreSQL",
            Box::new(|| Db::postgres()?.ok_or_else(|| anyhow::anyhow!("no PostgreSQL"))),
        ));
    }
    let (users, records) = (cli.million_users, cli.million_records);
    for (label, make) in dbs {
        println!("\n== {label}: {users} users with identities and phones, {records} records");
        let empty = start(cli, make()?, &[])?;
        warm_returning(&empty, cli.returning_users).await?;
        let base = run_scenario(
            &format!("returning users, {label}, empty database"),
            &empty.target,
            Mode::Returning(cli.returning_users),
            cli.concurrency,
            duration,
        )
        .await?;
        print(&base);
        drop(empty);

        let stack = start(cli, make()?, &[])?;
        let db = stack
            .db()
            .ok_or_else(|| anyhow::anyhow!("the tool owns the database"))?;
        let took = million::seed(db, users, records)?;
        println!(
            "  seeded in {:.0} s; database {:.0} MB",
            took.as_secs_f64(),
            million::size_mb(db)
        );
        let client = reqwest::Client::new();
        let built_in = match &stack._procs {
            Some((_, iam, _)) => iam.built_in_client_id()?,
            None => anyhow::bail!("the tool owns the database"),
        };
        let admin: serde_json::Value = client
            .post(format!("{}/oauth/token", stack.target.iam))
            .form(&[
                ("grant_type", "password"),
                ("client_id", built_in.as_str()),
                ("username", "built-in/admin"),
                ("password", iam_e2e::ADMIN_PASSWORD),
            ])
            .send()
            .await?
            .json()
            .await?;
        let token = admin["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let since = (chrono::Utc::now() - chrono::Duration::hours(24))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let some = users / 2 + 17;
        let queries = [
            (
                "get-users, first page",
                "/api/get-users?owner=demo&p=1&pageSize=20".to_owned(),
            ),
            (
                "get-users, page 10,000",
                "/api/get-users?owner=demo&p=10000&pageSize=20".to_owned(),
            ),
            (
                "search by openid",
                format!(
                    "/api/get-users?owner=demo&p=1&pageSize=20&field=wechat&value={}",
                    million::openid(some)
                ),
            ),
            (
                "search by phone prefix",
                "/api/get-users?owner=demo&p=1&pageSize=20&field=phone&value=1300012".to_owned(),
            ),
            (
                "search by name prefix",
                format!(
                    "/api/get-users?owner=demo&p=1&pageSize=20&field=name&value=wechat-oSEED00000000000000{}",
                    some / 1000
                ),
            ),
            (
                "get-user-count",
                "/api/get-user-count?owner=demo".to_owned(),
            ),
            (
                "get-records of a user, 24 h",
                format!(
                    "/api/get-records?owner=demo&p=1&pageSize=20&user=wechat-{}&from={since}",
                    million::openid(some)
                ),
            ),
            (
                "get-records of an action, 24 h",
                format!(
                    "/api/get-records?owner=demo&p=1&pageSize=20&action=signin-password&from={since}"
                ),
            ),
            ("get-dashboard", "/api/get-dashboard?owner=demo".to_owned()),
        ];
        let bearer = million::Auth::Bearer(token.clone());
        let cookie = million::Auth::Cookie(
            million::console_cookie(&stack.target.iam, iam_e2e::ADMIN_PASSWORD).await?,
        );
        // The console's pages (SPEC §11), whole HTML pages as a browser gets them.
        let pages = [
            (
                "console: users page",
                "/console/users?organization=demo".to_owned(),
            ),
            (
                "console: search by openid",
                format!(
                    "/console/users?organization=demo&by=openid&q={}",
                    million::openid(some)
                ),
            ),
            (
                "console: forbidden users",
                "/console/users?organization=demo&forbidden=yes".to_owned(),
            ),
            ("console: dashboard", "/console/".to_owned()),
        ];
        let timed = queries
            .iter()
            .map(|q| (q, &bearer, 50))
            .chain(pages.iter().map(|q| (q, &cookie, 300)));
        for ((name, path), auth, target_ms) in timed {
            // The first call warms caches (and rolls up the dashboard's days once).
            million::timed(&client, &stack.target.iam, path, auth, 1).await?;
            let (p50, p95) = million::timed(&client, &stack.target.iam, path, auth, 50).await?;
            println!(
                "  {name:<32} p50 {:>7.1} ms  p95 {:>7.1} ms  (target ≤ {target_ms}: {})",
                p50.as_secs_f64() * 1e3,
                p95.as_secs_f64() * 1e3,
                if p95 <= Duration::from_millis(target_ms) {
                    "met"
                } else {
                    "NOT met"
                }
            );
        }
        warm_returning(&stack, cli.returning_users).await?;
        let full = run_scenario(
            &format!("returning users, {label}, {users} users / {records} records"),
            &stack.target,
            Mode::Returning(cli.returning_users),
            cli.concurrency,
            duration,
        )
        .await?;
        print(&full);
        println!(
            "      ratio full / empty = {:.2} (target ≥ 0.8); database now {:.0} MB",
            full.rate / base.rate.max(1e-9),
            million::size_mb(db)
        );
    }
    Ok(())
}

/// SPEC §12's bound on password hashing: 500 clients sending wrong passwords as fast as they
/// can (each check is ~19 MB of argon2 while it runs) beside mini program sign-ins. Reports the
/// node's peak resident memory (target < 300 MB), how the attempts were answered (a check that
/// waits too long for a hashing slot is a 503) and the sign-ins meanwhile.
/// How one held connection ended.
enum Held {
    /// The server closed it after this long.
    Closed(Duration),
    /// Still open when the drill stopped looking.
    Open,
    /// Refused or reset at connect.
    Refused,
}

/// One connection from `ip` that sends half a request and then nothing; how long until the
/// server lets go (at most `patience`).
/// A command run to its end: its wall time and peak RSS (MB, from `VmHWM`, read every 10 ms).
fn watched(mut cmd: std::process::Command) -> Result<(Duration, f64)> {
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let mut peak: f64 = 0.0;
    loop {
        let (rss, _) = proc_usage(Some(child.id()));
        if rss.is_finite() {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{cmd:?} ended with {status}");
            }
            return Ok((started.elapsed(), peak));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SPEC §10's move between databases, at size: a SQLite database of `--export-users` users
/// (each with a WeChat identity and a phone), `iam export` of it, and new SQLite and (with a
/// URL) PostgreSQL servers loading the file as their `initDataFile`: the wall time and peak
/// memory of each step, and every user and identity counted on arrival.
async fn export_run(cli: &Cli, pg_url: Option<&str>) -> Result<()> {
    let users = cli.export_users;
    println!("\n== export: {users} users with identities and phones, moved by `iam export`");
    let stack = start(cli, Db::sqlite()?, &[])?;
    let Some((_, old, db)) = &stack._procs else {
        bail!("the export scenario starts its own server")
    };
    let took = million::seed(db, users, 0)?;
    let want = million::counts(db)?;
    println!(
        "  seeded in {:.1} s: {} users, {} WeChat identities, database {:.0} MB",
        took.as_secs_f64(),
        want.0,
        want.1,
        million::size_mb(db)
    );
    let file = old.workdir.path().join("export.json");
    let mut cmd = std::process::Command::new(iam_e2e::binary("iam")?);
    cmd.arg("--config")
        .arg(old.workdir.path().join("app.conf"))
        .arg("export")
        .arg("--out")
        .arg(&file)
        .current_dir(old.workdir.path())
        .env_remove("IAM_CONFIG")
        .stdout(std::process::Stdio::null());
    let (took, rss) = watched(cmd)?;
    println!(
        "  iam export: {:.1} s, peak RSS {rss:.0} MB, file {:.0} MB",
        took.as_secs_f64(),
        std::fs::metadata(&file)?.len() as f64 / 1e6
    );
    let mut dbs = vec![("SQLite", Db::sqlite()?)];
    if let Some(url) = pg_url {
        // SAFETY of the environment: only this thread reads it before the children start.
        unsafe { std::env::set_var("IAM_TEST_POSTGRES_URL", url) };
        dbs.push((
            "PostgreSQL",
            Db::postgres()?.ok_or_else(|| anyhow::anyhow!("no PostgreSQL"))?,
        ));
    }
    for (label, db) in dbs {
        let mut opts = IamOptions::new(&db);
        opts.init_data = Some(file.clone());
        opts.start_timeout = Duration::from_secs(3600);
        let started = Instant::now();
        let new = Iam::start(&opts)?;
        let took = started.elapsed();
        let (rss, _) = proc_usage(Some(new.proc.child.id()));
        let got = million::counts(&db)?;
        println!(
            "  a new {label} server loading it: listening after {:.1} s, peak RSS {rss:.0} MB; \
             {} users, {} WeChat identities{}",
            took.as_secs_f64(),
            got.0,
            got.1,
            if got == want { " (all there)" } else { "" }
        );
        if got != want {
            bail!("{label} holds {got:?} users and identities; the export had {want:?}");
        }
    }
    Ok(())
}

async fn hold_half_sent(
    ip: std::net::IpAddr,
    to: std::net::SocketAddr,
    patience: Duration,
) -> Held {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return Held::Refused;
    };
    if socket.bind(std::net::SocketAddr::new(ip, 0)).is_err() {
        return Held::Refused;
    }
    let Ok(mut s) = socket.connect(to).await else {
        return Held::Refused;
    };
    let opened = Instant::now();
    if s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: iam\r\nContent-Type: application/x-www-")
        .await
        .is_err()
    {
        return Held::Closed(opened.elapsed());
    }
    let mut buf = [0u8; 512];
    let deadline = opened + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Held::Closed(opened.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return Held::Open,
        }
    }
}

/// SPEC §12's slow-client drill: one address (127.0.0.2) opens thousands of connections that
/// send half a request and then nothing, while mini program sign-ins go on from another
/// (127.0.0.1). The server's defaults: 256 connections per address, a 10 s header timeout.
async fn held_run(cli: &Cli, duration: Duration) -> Result<()> {
    const ATTACK: usize = 3000;
    // The defaults, not the test harness's raised per-address cap.
    let stack = start(cli, Db::sqlite()?, &[("maxConnectionsPerAddress", "256")])?;
    warm_returning(&stack, cli.returning_users).await?;
    let addr: std::net::SocketAddr = stack
        .target
        .iam
        .trim_start_matches("http://")
        .parse()
        .context("the server's address")?;
    let attacker: std::net::IpAddr = "127.0.0.2".parse()?;
    let patience = Duration::from_secs(30);
    let mut holds = Vec::with_capacity(ATTACK);
    for _ in 0..ATTACK {
        holds.push(tokio::spawn(hold_half_sent(attacker, addr, patience)));
    }
    let o = run_scenario(
        &format!("sign-ins while 127.0.0.2 holds {ATTACK} half-sent requests"),
        &stack.target,
        Mode::Returning(cli.returning_users),
        cli.concurrency,
        duration,
    )
    .await?;
    print(&o);
    let (mut refused, mut open, mut at_once, mut held) = (0, 0, 0, Vec::new());
    for h in holds {
        match h.await? {
            Held::Refused => refused += 1,
            Held::Open => open += 1,
            Held::Closed(d) if d < Duration::from_secs(1) => at_once += 1,
            Held::Closed(d) => held.push(d),
        }
    }
    held.sort();
    println!(
        "      {ATTACK} held connections: {at_once} closed at once (over the per-address cap), {} \
         closed by the header timeout (the last after {:.1} s), {open} still open after {} s, \
         {refused} refused",
        held.len(),
        held.last().map_or(0.0, |d| d.as_secs_f64()),
        patience.as_secs()
    );
    Ok(())
}

/// What PostgreSQL counted for one database: transactions, rows written.
#[derive(Default, Clone, Copy)]
struct PgCounts {
    xacts: i64,
    rows_written: i64,
}

fn pg_counts(url: &str) -> Result<PgCounts> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        xacts: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows_written: i64,
    }
    let mut c = diesel::PgConnection::establish(url)?;
    let r: Row = diesel::sql_query(
        "SELECT (xact_commit + xact_rollback)::bigint AS xacts, \
                (tup_inserted + tup_updated + tup_deleted)::bigint AS rows_written \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result(&mut c)?;
    Ok(PgCounts {
        xacts: r.xacts,
        rows_written: r.rows_written,
    })
}

/// The statements (round trips) the nodes have sent their database, from their `/metrics`.
async fn statements_sent(target: &Target) -> u64 {
    let mut total = 0;
    for base in std::iter::once(&target.iam).chain(&target.others) {
        let text = match reqwest::get(format!("{base}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => continue,
        };
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("iam_db_statements_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
    }
    total
}

/// SPEC §12's drill on this machine: returning sign-ins spread over 1, 2 and 3 nodes on one
/// PostgreSQL, beside what the database counted (transactions and rows written per sign-in).
/// On 2 cores the nodes, the database, the simulator and this tool share the CPU: the figures
/// say what one PostgreSQL takes per sign-in more than how nodes scale.
async fn nodes_run(cli: &Cli, duration: Duration, pg_url: &str) -> Result<()> {
    println!("  nodes: returning sign-ins over N nodes on one PostgreSQL");
    // SAFETY of the environment: only this thread reads it before the children start.
    unsafe { std::env::set_var("IAM_TEST_POSTGRES_URL", pg_url) };
    for n in 1..=3usize {
        let Some(db) = Db::postgres()? else {
            bail!("postgres")
        };
        let extra = [("origin", "http://iam.load.test")];
        let stack = start(cli, db, &extra)?;
        let (Some((sim, _, db)), mut target) = (&stack._procs, stack.target.clone()) else {
            bail!("the tool owns the nodes")
        };
        let mut more = Vec::new();
        for _ in 1..n {
            let mut opts = IamOptions::new(db);
            opts.wechat_api_base = sim.base.clone();
            opts.init_data = Some(workspace_root().join("conf/init_data.json"));
            for (k, v) in [
                ("tokenRateLimitPerIp", "0"),
                ("IAM_LOG", "warn,iam::serve=info"),
                ("origin", "http://iam.load.test"),
            ] {
                opts.extra_env.push((k.into(), v.into()));
            }
            let node = Iam::start(&opts)?;
            target.others.push(node.base.clone());
            more.push(node);
        }
        target.pid = None;
        warm_returning(&stack, cli.returning_users).await?;
        let url = db.url();
        // Idle backends report their counts within 10 s (PostgreSQL 15's stats flush).
        tokio::time::sleep(Duration::from_secs(11)).await;
        let before = pg_counts(&url)?;
        let statements_before = statements_sent(&target).await;
        let o = run_scenario(
            &format!("returning users, {n} node(s), PostgreSQL"),
            &target,
            Mode::Returning(cli.returning_users),
            cli.concurrency,
            duration,
        )
        .await?;
        let statements = statements_sent(&target).await - statements_before;
        tokio::time::sleep(Duration::from_secs(11)).await;
        let after = pg_counts(&url)?;
        println!(
            "  {:<48} {:>5.0}/s  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms  ok {:>7}  errors {:>5}",
            o.name,
            o.rate,
            o.p50.as_secs_f64() * 1e3,
            o.p95.as_secs_f64() * 1e3,
            o.p99.as_secs_f64() * 1e3,
            o.ok,
            o.errors.values().sum::<u64>(),
        );
        let secs = duration.as_secs_f64();
        let per = |d: i64| d as f64 / o.ok.max(1) as f64;
        println!(
            "      database: {:.0} transactions/s; per sign-in {:.2} statements (round trips), \
             {:.2} transactions, {:.2} rows written",
            (after.xacts - before.xacts) as f64 / secs,
            per(statements as i64),
            per(after.xacts - before.xacts),
            per(after.rows_written - before.rows_written),
        );
        drop(more);
    }
    Ok(())
}

async fn passwords_run(cli: &Cli, duration: Duration) -> Result<()> {
    const ATTACKERS: usize = 500;
    let stack = start(cli, Db::sqlite()?, &[])?;
    warm_returning(&stack, cli.returning_users).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(ATTACKERS + 16)
        .timeout(Duration::from_secs(30))
        .build()?;
    let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        u64,
    >::new()));
    let deadline = Instant::now() + duration;
    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        let (client, statuses) = (client.clone(), statuses.clone());
        let url = stack.target.url("/oauth/token");
        attackers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                // Unknown users: nobody is locked, and each costs a full argon2 check.
                let user = format!("nobody-{i}-{n}");
                let r = client
                    .post(&url)
                    .form(&[
                        ("grant_type", "password"),
                        ("client_id", CLIENT_ID),
                        ("username", user.as_str()),
                        ("password", "wrong"),
                    ])
                    .send()
                    .await;
                let key = match r {
                    Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
                    Err(e) if e.is_timeout() => "client timeout".into(),
                    Err(_) => "connection".into(),
                };
                if let Ok(mut m) = statuses.lock() {
                    *m.entry(key).or_default() += 1;
                }
            }
        }));
    }
    let o = run_scenario(
        &format!("returning users beside {ATTACKERS} password attackers, SQLite"),
        &stack.target,
        Mode::Returning(cli.returning_users),
        16,
        duration,
    )
    .await?;
    for a in attackers {
        a.await?;
    }
    print(&o);
    let answered = statuses.lock().map(|m| m.clone()).unwrap_or_default();
    println!(
        "      password attempts answered: {}",
        answered
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "      peak RSS {:.0} MB (target < 300); sign-ins meanwhile {:.0}/s, p99 {:.1} ms, errors {}",
        o.peak_rss_mb,
        o.rate,
        o.p99.as_secs_f64() * 1e3,
        o.errors.values().sum::<u64>()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let scenarios: Vec<&str> = cli.scenarios.split(',').map(str::trim).collect();
    let want = |s: &str| scenarios.contains(&s);
    let duration = Duration::from_secs(cli.duration);
    let pg_url = cli
        .postgres
        .clone()
        .or_else(|| std::env::var("IAM_TEST_POSTGRES_URL").ok());
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }

    println!(
        "iam-load: {} cores, {} s per scenario, {} clients ({} for slowed WeChat); {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cli.duration,
        cli.concurrency,
        cli.slow_concurrency,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    let mut bare_rate = None;
    let mut bare_cpu = None;
    let mut returning_rate = None;

    if want("bare") || want("returning") {
        let stack = start(&cli, Db::sqlite()?, &[])?;
        if want("bare") {
            let o = run_scenario(
                "bare sign (parse + RS256, no WeChat/DB)",
                &stack.target,
                Mode::Bare,
                cli.concurrency,
                duration,
            )
            .await?;
            print(&o);
            bare_rate = Some(o.rate);
            bare_cpu = Some(cpu_per_request(&o));
        }
        if want("returning") {
            warm_returning(&stack, cli.returning_users)
                .await
                .context("warming returning users")?;
            let o = run_scenario(
                "returning users, SQLite",
                &stack.target,
                Mode::Returning(cli.returning_users),
                cli.concurrency,
                duration,
            )
            .await?;
            print(&o);
            stack.print_sizes().await;
            returning_rate = Some(o.rate);
            if let (Some(b), Some(cpu)) = (bare_rate, bare_cpu) {
                let errors: u64 = o.errors.values().sum();
                println!(
                    "      ratio sign-in / bare-sign = {:.2} (target ≥ 0.50, goal 0.60); p99 {:.1} ms (target ≤ 50); errors {} (target 0)",
                    o.rate / b,
                    o.p99.as_secs_f64() * 1e3,
                    errors
                );
                println!(
                    "      server CPU per sign-in {:.0} µs, per bare sign {:.0} µs: {:.2}× (target ≤ 2.0)",
                    cpu_per_request(&o),
                    cpu,
                    cpu_per_request(&o) / cpu
                );
            }
        }
    }
    if want("client-credentials") || want("bearer") {
        let stack = start(&cli, Db::sqlite()?, &[])?;
        token_and_bearer(&cli, &stack, "SQLite", bare_rate, &want).await?;
    }
    if want("first") {
        let stack = start(&cli, Db::sqlite()?, &[])?;
        let o = run_scenario(
            "first sign-ins (new users), SQLite",
            &stack.target,
            Mode::First,
            cli.concurrency,
            duration,
        )
        .await?;
        print(&o);
        stack.print_sizes().await;
        if let Some(b) = bare_rate {
            println!(
                "      ratio sign-in / bare-sign = {:.2} (target ≥ 0.40)",
                o.rate / b
            );
        }
    }
    if want("postgres") && cli.iam_url.is_some() {
        println!(
            "  (PostgreSQL scenarios skipped: a running iam uses the database it was started with)"
        );
    } else if want("postgres") {
        match &pg_url {
            Some(url) => {
                // SAFETY of the environment: only this thread reads it before the child starts.
                unsafe { std::env::set_var("IAM_TEST_POSTGRES_URL", url) };
                let Some(db) = Db::postgres()? else {
                    bail!("postgres")
                };
                let stack = start(&cli, db, &[])?;
                warm_returning(&stack, cli.returning_users).await?;
                let o = run_scenario(
                    "returning users, PostgreSQL",
                    &stack.target,
                    Mode::Returning(cli.returning_users),
                    cli.concurrency,
                    duration,
                )
                .await?;
                print(&o);
                stack.print_sizes().await;
                let o = run_scenario(
                    "first sign-ins (new users), PostgreSQL",
                    &stack.target,
                    Mode::First,
                    cli.concurrency,
                    duration,
                )
                .await?;
                print(&o);
                token_and_bearer(&cli, &stack, "PostgreSQL", bare_rate, &want).await?;
            }
            None => {
                println!("  (PostgreSQL scenarios skipped: no --postgres or IAM_TEST_POSTGRES_URL)")
            }
        }
    }
    if want("purge") {
        purge_run(&cli).await?;
    }
    if want("million") {
        million_run(&cli, duration, pg_url.as_deref()).await?;
    }
    if want("export") {
        match cli.iam_url {
            None => export_run(&cli, pg_url.as_deref()).await?,
            Some(_) => println!("  (export scenario skipped: it starts its own servers)"),
        }
    }
    if want("passwords") {
        passwords_run(&cli, duration).await?;
    }
    if want("held") {
        match cli.iam_url {
            None => held_run(&cli, duration).await?,
            Some(_) => println!("  (held scenario skipped: it starts its own server)"),
        }
    }
    if want("nodes") {
        match &pg_url {
            Some(url) if cli.iam_url.is_none() => nodes_run(&cli, duration, url).await?,
            _ => println!(
                "  (nodes scenario skipped: it starts its own nodes on --postgres or \
                 IAM_TEST_POSTGRES_URL)"
            ),
        }
    }
    if want("slow") {
        let stack = start(&cli, Db::sqlite()?, &[])?;
        warm_returning(&stack, cli.returning_users).await?;
        stack
            .target
            .fault(json!({"api": "jscode2session", "latencyMs": 200}))
            .await?;
        let o = run_scenario(
            &format!("WeChat slowed to 200 ms, {} clients", cli.slow_concurrency),
            &stack.target,
            Mode::Returning(cli.returning_users),
            cli.slow_concurrency,
            duration,
        )
        .await;
        stack.target.clear_faults().await?;
        let o = o?;
        print(&o);
        let little = cli.slow_concurrency as f64 / 0.2;
        let bound = returning_rate.map_or(little, |r| r.min(little));
        let errors: u64 = o.errors.values().sum();
        println!(
            "      {:.0}% of min(Little's law {:.0}/s, CPU-bound {:.0}/s) (target ≥ 80%); errors {} (target 0); peak RSS {:.0} MB (target ≤ 256)",
            100.0 * o.rate / bound,
            little,
            returning_rate.unwrap_or(f64::NAN),
            errors,
            o.peak_rss_mb
        );
    }
    if want("busy") {
        let stack = start(&cli, Db::sqlite()?, &[])?;
        warm_returning(&stack, cli.returning_users).await?;
        stack
            .target
            .fault(json!({"api": "jscode2session", "errcode": -1, "percent": 10}))
            .await?;
        let o = run_scenario(
            "WeChat answers -1 to 10% of calls",
            &stack.target,
            Mode::Returning(cli.returning_users),
            cli.concurrency,
            duration,
        )
        .await;
        stack.target.clear_faults().await?;
        let o = o?;
        print(&o);
        let total = o.ok + o.errors.values().sum::<u64>();
        let server_errors: u64 = o
            .errors
            .iter()
            .filter(|(k, _)| k.starts_with("HTTP 500"))
            .map(|(_, v)| *v)
            .sum();
        println!(
            "      {:.3}% succeeded (target ≥ 99.9%), {} answered 500 (target 0), {} WeChat calls for {} sign-ins (retries)",
            100.0 * o.ok as f64 / total.max(1) as f64,
            server_errors,
            o.wechat_calls,
            total
        );
    }
    Ok(())
}
