//! Fault drills: the server killed mid-burst, its own PostgreSQL stopped and started under load,
//! WeChat unreachable or silent.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use iam_domain::ports::Repository;
use iam_e2e::{Db, Iam, IamOptions, Recorder, WechatSim, workspace_root, wx_login};

use crate::signin::APPID;

fn options<'a>(db: &'a Db, sim: &WechatSim) -> IamOptions<'a> {
    let mut opts = IamOptions::new(db);
    opts.wechat_api_base = sim.base.clone();
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    // A fixed issuer: tokens must survive the restart on another port.
    opts.extra_env
        .push(("origin".into(), "http://iam.test".into()));
    opts
}

async fn sign_in(
    rec: &Recorder,
    sim_base: &str,
    url: &str,
    person: &str,
) -> anyhow::Result<Option<String>> {
    let code = wx_login(&rec.http, sim_base, APPID, person).await?;
    match rec.send(rec.sign_in_request(url, &code)).await {
        Ok(a) if a.status == 200 => Ok(a.json()["access_token"].as_str().map(str::to_owned)),
        _ => Ok(None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_token_and_duplicates_no_one() -> anyhow::Result<()> {
    let db = Db::sqlite()?;
    let sim = WechatSim::start()?;
    let opts = options(&db, &sim);
    let mut iam = Iam::start(&opts)?;
    let rec = Recorder::default();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let (rec, sim_base, url) = (rec.clone(), sim.base.clone(), iam.url("/oauth/token"));
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            for round in 0..40 {
                let person = format!("burst-{}", (i + round) % 24);
                if let Ok(Some(t)) = sign_in(&rec, &sim_base, &url, &person).await {
                    tokens.push(t);
                }
            }
            tokens
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    iam.proc.kill9()?;
    let mut answered = Vec::new();
    for t in tasks {
        answered.extend(t.await?);
    }
    assert!(
        !answered.is_empty(),
        "some sign-ins were answered before the kill"
    );

    let restarted = Iam::start(&opts)?;
    let mut valid = 0;
    for t in &answered {
        let a = rec
            .send(
                rec.http
                    .get(restarted.url("/api/get-account"))
                    .bearer_auth(t),
            )
            .await?;
        assert_eq!(
            a.status, 200,
            "a token answered before the crash was lost: {}",
            a.text
        );
        valid += 1;
    }
    let store = db.store().await?;
    let users = store.list_users(Some("demo")).await?;
    let wechat_users: Vec<_> = users
        .iter()
        .filter(|u| u.name.starts_with("wechat-"))
        .collect();
    let openids: HashSet<_> = wechat_users.iter().map(|u| u.wechat.clone()).collect();
    assert_eq!(openids.len(), wechat_users.len(), "no person has two users");
    assert!(wechat_users.len() <= 24);
    eprintln!(
        "{valid} tokens answered before kill -9 all validate after restart; {} users",
        wechat_users.len()
    );
    Ok(())
}

/// A PostgreSQL of the test's own: initdb into a temporary directory, on its own port.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl OwnPostgres {
    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
        let tool = self.bin.join(args[0]);
        let status = if is_root {
            Command::new("runuser")
                .arg("-u")
                .arg("postgres")
                .arg("--")
                .arg(&tool)
                .args(&args[1..])
                .status()?
        } else {
            Command::new(&tool).args(&args[1..]).status()?
        };
        anyhow::ensure!(status.success(), "{args:?} failed: {status}");
        Ok(())
    }

    fn create() -> anyhow::Result<Option<Self>> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .find(|p| p.join("initdb").exists())
        }) else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = Self { dir, port, bin };
        let data = pg.dir.path().join("data");
        pg.run(&[
            "initdb",
            "-D",
            data.to_str().unwrap_or_default(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        pg.start()?;
        Ok(Some(pg))
    }

    fn start(&self) -> anyhow::Result<()> {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap_or_default(),
            "-o",
            &opts,
            "-w",
            "-l",
            self.dir.path().join("log").to_str().unwrap_or_default(),
            "start",
        ])
    }

    fn stop(&self) -> anyhow::Result<()> {
        let data = self.dir.path().join("data");
        self.run(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap_or_default(),
            "-m",
            "fast",
            "-w",
            "stop",
        ])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_is_a_503_and_the_server_recovers_by_itself() -> anyhow::Result<()>
{
    let Some(pg) = OwnPostgres::create()? else {
        eprintln!("no PostgreSQL binaries to initdb with: skipped");
        return Ok(());
    };
    let db = Db::external_postgres(pg.url());
    let sim = WechatSim::start()?;
    let mut opts = options(&db, &sim);
    opts.extra_env.push(("dbPoolSize".into(), "4".into()));
    let iam = Iam::start(&opts)?;
    let rec = Recorder::default();
    let url = iam.url("/oauth/token");
    let steady = sign_in(&rec, &sim.base, &url, "steady").await?;
    let Some(steady) = steady else {
        anyhow::bail!("the first sign-in failed");
    };

    // Load in the background for the whole drill.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let mut load = Vec::new();
    for i in 0..4 {
        let (rec, sim_base, url, stop, statuses) = (
            rec.clone(),
            sim.base.clone(),
            url.clone(),
            stop.clone(),
            statuses.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(code) = wx_login(&rec.http, &sim_base, APPID, &format!("load-{i}")).await
                else {
                    continue;
                };
                if let Ok(a) = rec
                    .send(
                        rec.sign_in_request(&url, &code)
                            .timeout(Duration::from_secs(15)),
                    )
                    .await
                    && let Ok(mut s) = statuses.lock()
                {
                    s.push(a.status);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop()?;
    // While it is gone: 503 with Retry-After, and /readyz says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_503 = false;
    while Instant::now() < deadline && !saw_503 {
        let code = wx_login(&rec.http, &sim.base, APPID, "during").await?;
        let a = rec.send(rec.sign_in_request(&url, &code)).await?;
        assert_ne!(
            a.status, 500,
            "never a 500 for a database outage: {}",
            a.text
        );
        if a.status == 503 {
            assert!(a.header("retry-after").is_some());
            assert_eq!(a.json()["error"], "temporarily_unavailable");
            saw_503 = true;
        }
    }
    assert!(
        saw_503,
        "the token endpoint answered 503 while the database was gone"
    );
    assert_eq!(
        rec.send(rec.http.get(iam.url("/readyz"))).await?.status,
        503
    );
    assert_eq!(
        rec.send(rec.http.get(iam.url("/healthz"))).await?.status,
        200,
        "alive all the same"
    );
    // Client credentials on an /api route while the database is gone: an outage, never a 401
    // that would tell a client its (uncached) credentials are wrong.
    let a = rec
        .send(rec.http.get(
            iam.url("/api/get-users?owner=demo&clientId=never-cached-client&clientSecret=whatever"),
        ))
        .await?;
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.header("retry-after").is_some());
    assert!(a.header("www-authenticate").is_none());
    // A mini program route of a signed-in user: the outage too, never a 400 that blames the
    // request (the mini program lookup used to turn any failure into "no such mini program").
    let code = wx_login(&rec.http, &sim.base, APPID, "steady").await?;
    let a = rec
        .send(
            rec.http
                .post(iam.url("/api/wechat/bind"))
                .bearer_auth(&steady)
                .json(&serde_json::json!({"code": code})),
        )
        .await?;
    assert_eq!(a.status, 503, "{}", a.text);

    pg.start()?;
    // Back by itself, without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recovered = false;
    while Instant::now() < deadline && !recovered {
        recovered = sign_in(&rec, &sim.base, &url, "after").await?.is_some();
        if !recovered {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(recovered, "sign-in works again once the database is back");
    assert_eq!(
        rec.send(rec.http.get(iam.url("/readyz"))).await?.status,
        200
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await?;
    }
    let s = statuses.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        s.iter().all(|c| [200, 503].contains(c)),
        "only 200 and 503 under the drill: {s:?}"
    );
    assert!(s.contains(&200));
    Ok(())
}

#[tokio::test]
async fn wechat_unreachable_or_silent_is_a_503_within_the_timeout() -> anyhow::Result<()> {
    let db = Db::sqlite()?;
    // Silent: accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent_addr = silent.local_addr()?;
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let mut opts = IamOptions::new(&db);
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    opts.wechat_api_base = format!("http://{silent_addr}");
    opts.extra_env
        .push(("wechatTimeoutMs".into(), "1000".into()));
    let iam = Iam::start(&opts)?;
    let rec = Recorder::default();
    let started = Instant::now();
    let a = rec
        .send(rec.sign_in_request(&iam.url("/oauth/token"), "0silent"))
        .await?;
    let took = started.elapsed();
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.header("retry-after").is_some());
    assert!(
        took < Duration::from_millis(1800),
        "bounded by wechatTimeoutMs (1 s), took {took:?}"
    );

    // Unreachable: nothing listens (connection refused), after the bounded retries.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let db2 = Db::sqlite()?;
    let mut opts = IamOptions::new(&db2);
    opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
    opts.wechat_api_base = format!("http://{closed}");
    let iam = Iam::start(&opts)?;
    let started = Instant::now();
    let a = rec
        .send(rec.sign_in_request(&iam.url("/oauth/token"), "0closed"))
        .await?;
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.header("retry-after").is_some());
    assert!(started.elapsed() < Duration::from_secs(3));
    Ok(())
}
