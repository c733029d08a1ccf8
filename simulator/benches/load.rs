//! Load check of the simulator as a separate process: plain exchanges per second, and 5,000
//! concurrent requests held under a latency fault without refusing any.
//!
//! `cargo bench -p wechat-sim --bench load` (env: SIM_BENCH_SECS, SIM_BENCH_CLIENTS,
//! SIM_BENCH_HELD).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-sim"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wechat-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(10_000)
        .build()
        .expect("client");

    // 1. Plain exchanges: each client logs a user in (control API) and exchanges the code.
    let secs = env_or("SIM_BENCH_SECS", 5);
    let clients = env_or("SIM_BENCH_CLIENTS", 64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (client, base, done, errors) =
            (client.clone(), base.clone(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let login: Value = match client
                    .post(format!("{base}/sim/login"))
                    .json(&json!({"appid": "wx5f3c1b2a9d8e7f60", "user": format!("u{i}-{n}")}))
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let code = login["code"].as_str().unwrap_or_default().to_owned();
                let t = Instant::now();
                let r = client
                    .get(format!("{base}/sns/jscode2session"))
                    .query(&[
                        ("appid", "wx5f3c1b2a9d8e7f60"),
                        ("secret", "0c6d2a1b9e8f7d6c5b4a39281706f5e4"),
                        ("js_code", code.as_str()),
                        ("grant_type", "authorization_code"),
                    ])
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r
                        .text()
                        .await
                        .map(|t| t.contains("openid"))
                        .unwrap_or(false),
                    Err(_) => false,
                };
                lat.push(t.elapsed());
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    lat.sort();
    let ok = done.load(Ordering::Relaxed);
    println!(
        "wechat-sim load report ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "  plain exchanges: {clients} clients x {secs}s: {ok} ok, {} errors, {:.0} exchanges/s \
         (each also paid one /sim/login), p50 {:?}, p99 {:?}",
        errors.load(Ordering::Relaxed),
        ok as f64 / secs as f64,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // 2. Held: every call slowed by 1 s; N requests at once; none may be refused.
    let held = env_or("SIM_BENCH_HELD", 5000);
    client
        .post(format!("{base}/sim/faults"))
        .json(&json!({"api": "jscode2session", "latencyMs": 1000}))
        .send()
        .await
        .expect("arm fault");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..held {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            client
                .get(format!("{base}/sns/jscode2session"))
                .query(&[
                    ("appid", "wx5f3c1b2a9d8e7f60"),
                    ("secret", "0c6d2a1b9e8f7d6c5b4a39281706f5e4"),
                    ("js_code", "x"),
                ])
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().is_success())
        }));
    }
    let mut answered = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(true)) => answered += 1,
            _ => refused += 1,
        }
    }
    println!(
        "  held under 1 s latency: {held} concurrent: {answered} answered, {refused} refused or failed, \
         all done in {:.2?}",
        started.elapsed()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
