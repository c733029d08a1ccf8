//! Test support: build and start the real `iam` and `wechat-sim` binaries on ephemeral ports,
//! give each test its own database, stop them with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use diesel::Connection;
use diesel::connection::SimpleConnection;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `target/<profile>` of the running test binary (`target/<profile>/deps/e2e-…`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Tests run from target/<profile>/deps; binaries (the load tool) from target/<profile>.
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else if dir.as_os_str().is_empty() {
        workspace_root().join("target/debug")
    } else {
        dir
    }
}

/// Builds the two binaries once per test run (cargo's own up-to-date check makes this quick),
/// so `cargo test` alone always tests the current code.
pub fn binary(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let release = bin_dir().ends_with("release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "iam-server",
            "-p",
            "wechat-sim",
        ]);
        if release {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build of the binaries failed: {s}")),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    if let Err(e) = built {
        bail!("{e}");
    }
    let path = bin_dir().join(name);
    if !path.exists() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// A child process whose stderr is collected, stopped with SIGTERM when dropped.
pub struct Proc {
    pub child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
    pub name: String,
}

impl Proc {
    /// Starts any command with its output collected (for tests that need their own flags).
    pub fn spawn_for_test(name: &str, cmd: Command) -> Result<Self> {
        Self::spawn(name, cmd)
    }

    fn spawn(name: &str, mut cmd: Command) -> Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut o) = out.lock() {
                        o.push(line);
                    }
                }
            });
        }
        Ok(Self {
            child,
            output,
            name: name.into(),
        })
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Waits for a line containing `needle`; returns the text after it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines().iter().find(|l| l.contains(needle)) {
                let at = line.find(needle).unwrap_or(0) + needle.len();
                return Ok(line[at..].to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads drain what the process wrote before it exited.
                std::thread::sleep(Duration::from_millis(300));
                bail!(
                    "{} exited ({status}) before saying {needle:?}:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not say {needle:?} in time:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait (SIGKILL after `grace`).
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return Ok(s);
        }
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("kill -TERM")?;
        let deadline = Instant::now() + grace;
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("{} did not stop within {grace:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.terminate(Duration::from_secs(5));
    }
}

/// Where an `iam` keeps its data: a SQLite file in a temp dir, or a PostgreSQL database of the
/// test's own.
pub enum Db {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl Db {
    pub fn sqlite() -> Result<Self> {
        Ok(Self::Sqlite {
            dir: tempfile::tempdir()?,
        })
    }

    /// `None` when `IAM_TEST_POSTGRES_URL` is not set (said on stderr); an error when `CI` is
    /// set without it, so CI can never pass by skipping PostgreSQL.
    pub fn postgres() -> Result<Option<Self>> {
        let Some(admin_url) = postgres_admin_url()? else {
            return Ok(None);
        };
        let name = format!("iam_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&admin_url)
            .map_err(|e| anyhow!("cannot connect to IAM_TEST_POSTGRES_URL: {e}"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b.to_owned(), format!("?{q}")),
            None => (admin_url.clone(), String::new()),
        };
        let base = base
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(base);
        let url = format!("{base}/{name}{query}");
        Ok(Some(Self::Postgres {
            admin_url,
            name,
            url,
        }))
    }

    /// A PostgreSQL database someone else created (and will drop).
    pub fn external_postgres(url: String) -> Self {
        Self::Postgres {
            admin_url: String::new(),
            name: String::new(),
            url,
        }
    }

    pub fn driver(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => dir.path().join("iam.db").display().to_string(),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    /// A store on the same database, to look at what the server wrote, with the sealing key
    /// every test server gets (so secrets sealed at rest open).
    pub async fn store(&self) -> Result<iam_store::Store> {
        let driver = iam_store::Driver::parse(self.driver()).ok_or_else(|| anyhow!("driver"))?;
        let sealer = iam_jwt::seal::SessionKeySealer::from_text(&iam_domain::Secret::new(
            SESSION_KEY_ENCRYPTION_KEY.to_owned(),
        ))?;
        Ok(iam_store::Store::open(driver, &self.url(), 2)
            .await?
            .with_sealer(Arc::new(sealer)))
    }
}

/// A connection to a test's SQLite file, as an operator's shell would open one, that waits for
/// locks as the server's connections do. Without the wait a statement fails at once with
/// "database is locked" while a store just dropped is still closing its connections (the last
/// one to close checkpoints the log under an exclusive lock).
pub fn sqlite_shell(url: &str) -> Result<diesel::SqliteConnection> {
    let mut c = diesel::SqliteConnection::establish(url)?;
    c.batch_execute("PRAGMA busy_timeout = 10000")?;
    Ok(c)
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && !admin_url.is_empty()
            && let Ok(mut c) = diesel::PgConnection::establish(admin_url)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// `IAM_TEST_POSTGRES_URL`. Unset: `None`, and the skip is said on stderr; unset while `CI` is
/// set: an error, because a PostgreSQL run skipped in CI would pass without testing anything.
pub fn postgres_admin_url() -> Result<Option<String>> {
    match std::env::var("IAM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var_os("CI").is_some() => {
            bail!(
                "CI is set but IAM_TEST_POSTGRES_URL is not: the PostgreSQL runs cannot be skipped"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: IAM_TEST_POSTGRES_URL is not set, so this PostgreSQL run tests nothing"
            );
            Ok(None)
        }
    }
}

/// Runs a test body (`async fn(Db) -> anyhow::Result<()>`) on SQLite and on PostgreSQL (see
/// [`postgres_admin_url`] for when PostgreSQL is skipped).
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                super::$body($crate::Db::sqlite()?).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                match $crate::Db::postgres()? {
                    Some(db) => super::$body(db).await,
                    None => Ok(()),
                }
            }
        }
    };
}

/// A port nobody listens on now, on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `iam`.
pub struct Iam {
    pub proc: Proc,
    pub base: String,
    pub workdir: tempfile::TempDir,
}

pub struct IamOptions<'a> {
    pub db: &'a Db,
    pub wechat_api_base: String,
    pub extra_env: Vec<(String, String)>,
    pub init_data: Option<PathBuf>,
    /// How long it may take to say it is listening (a large `initDataFile` loads first).
    pub start_timeout: Duration,
}

impl<'a> IamOptions<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self {
            db,
            wechat_api_base: "http://127.0.0.1:9".into(),
            // Tests send bursts from one address; the rate-limit and slow-client tests set
            // their own.
            extra_env: vec![
                ("tokenRateLimitPerIp".into(), "10000".into()),
                ("maxConnectionsPerAddress".into(), "100000".into()),
            ],
            init_data: None,
            start_timeout: Duration::from_secs(60),
        }
    }
}

pub const ADMIN_PASSWORD: &str = "e2e-admin-password";
pub const SESSION_KEY_ENCRYPTION_KEY: &str =
    "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f";

impl Iam {
    pub fn start(opts: &IamOptions<'_>) -> Result<Self> {
        // Production mode needs an origin (the issuer is never a request's Host): a test that
        // sets none gets this node's own address, on a port picked before the start (picked
        // again should another process take it in between).
        let explicit = opts
            .extra_env
            .iter()
            .find(|(k, _)| k == "origin")
            .map(|(_, v)| v.clone());
        let mut attempt = 0;
        loop {
            let (port, origin) = match &explicit {
                Some(o) => (0, o.clone()),
                None => {
                    let port = free_port()?;
                    (port, format!("http://127.0.0.1:{port}"))
                }
            };
            match Self::start_on(opts, port, &origin) {
                Ok(iam) => return Ok(iam),
                Err(e) if attempt < 3 && format!("{e:#}").contains("cannot listen") => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Written into the configuration file too, so the `iam` commands a test runs beside the
    /// server (which read that file) load it.
    fn start_on(opts: &IamOptions<'_>, port: u16, origin: &str) -> Result<Self> {
        let workdir = tempfile::tempdir()?;
        let conf = workdir.path().join("app.conf");
        let init = opts
            .init_data
            .clone()
            .unwrap_or_else(|| workspace_root().join("conf/init_data.json"));
        std::fs::write(
            &conf,
            format!(
                "httpaddr = 127.0.0.1\nhttpport = {port}\nrunmode = prod\norigin = {origin}\n\
                 driverName = {}\n\
                 dataSourceName = {}\ninitDataFile = {}\nwechatApiBase = {}\n\
                 sessionKeyFile = {}\nsessionKeyEncryptionKey = {}\n",
                opts.db.driver(),
                opts.db.url(),
                init.display(),
                opts.wechat_api_base,
                workdir.path().join("session-key.secret").display(),
                SESSION_KEY_ENCRYPTION_KEY,
            ),
        )?;
        let mut cmd = Command::new(binary("iam")?);
        cmd.arg("--config")
            .arg(&conf)
            .current_dir(workdir.path())
            .env("IAM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("IAM_CONFIG");
        for (k, v) in &opts.extra_env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn("iam", cmd)?;
        let rest = proc.wait_for("listening on ", opts.start_timeout)?;
        let addr = rest
            .split(|c: char| c == '"' || c.is_whitespace())
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            proc,
            base: format!("http://{addr}"),
            workdir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `app-built-in`'s client id, read as an operator reads it (`iam app show-credentials`):
    /// global administrators sign in through it, never through another application.
    pub fn built_in_client_id(&self) -> Result<String> {
        let out = Command::new(binary("iam")?)
            .arg("--config")
            .arg(self.workdir.path().join("app.conf"))
            .args(["app", "show-credentials", "app-built-in"])
            .current_dir(self.workdir.path())
            .env_remove("IAM_CONFIG")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("clientId:"))
            .map(|id| id.trim().to_owned())
            .filter(|id| out.status.success() && !id.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "iam app show-credentials: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }
}

/// A mini program the simulator knows and no fixture connects: the console's tests connect it.
pub const CONSOLE_APPID: &str = "wx0123456789abcdef";
pub const CONSOLE_APPSECRET: &str = "00112233445566778899aabbccddeeff";

/// A running `wechat-sim`.
pub struct WechatSim {
    pub proc: Proc,
    pub base: String,
    http: reqwest::Client,
}

impl WechatSim {
    /// With the default app, `wxaaaaaaaaaaaaaaaa`/`secret-a` (open platform `platform-1`) and
    /// [`CONSOLE_APPID`].
    pub fn start() -> Result<Self> {
        let mut cmd = Command::new(binary("wechat-sim")?);
        cmd.args([
            "--addr",
            "127.0.0.1:0",
            "--app",
            "wx5f3c1b2a9d8e7f60:0c6d2a1b9e8f7d6c5b4a39281706f5e4",
            "--app",
            "wxaaaaaaaaaaaaaaaa:secret-a:platform-1",
            "--app",
            &format!("{CONSOLE_APPID}:{CONSOLE_APPSECRET}"),
        ]);
        let mut proc = Proc::spawn("wechat-sim", cmd)?;
        let addr = proc.wait_for("listening on ", Duration::from_secs(30))?;
        Ok(Self {
            proc,
            base: format!("http://{}", addr.trim()),
            http: reqwest::Client::new(),
        })
    }

    /// What `wx.login()` gives the phone: (code, openid).
    pub async fn login(&self, appid: &str, user: &str) -> Result<(String, String)> {
        let v = sim_login(&self.http, &self.base, appid, user).await?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok((s("code"), s("openid")))
    }

    pub async fn fault(&self, fault: serde_json::Value) -> Result<()> {
        self.http
            .post(format!("{}/sim/faults", self.base))
            .json(&fault)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub async fn clear_faults(&self) -> Result<()> {
        self.http
            .delete(format!("{}/sim/faults", self.base))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Result<()> {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The user's current session key, as WeChat knows it.
    pub async fn session_key(&self, appid: &str, user: &str) -> Result<String> {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/sim/user", self.base))
            .query(&[("appid", appid), ("user", user)])
            .send()
            .await?
            .json()
            .await?;
        Ok(v["sessionKey"].as_str().unwrap_or_default().to_owned())
    }

    /// How many jscode2session calls reached the simulator.
    pub async fn exchanges(&self) -> Result<u64> {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/sim/stats", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(v["calls"]["jscode2session"].as_u64().unwrap_or(0))
    }
}

/// An HTTP client that keeps every response body it saw, so a test can scan them all (for
/// session keys, secrets) at the end.
#[derive(Clone, Default)]
pub struct Recorder {
    pub http: reqwest::Client,
    bodies: Arc<Mutex<Vec<String>>>,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The envelope's `msg`.
    pub fn msg(&self) -> String {
        self.json()["msg"].as_str().unwrap_or_default().to_owned()
    }

    /// The body as JSON. A body that is not JSON fails the test here, so a check of a field
    /// can never pass vacuously on an HTML or text error page.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "the answer ({}) is not JSON ({e}): {:?}",
                self.status, self.text
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// The demo application's client id (in `conf/init_data.json` and the e2e fixtures).
pub const DEMO_CLIENT_ID: &str = "6825f4f0af45554c8952";

/// `POST /sim/login` on the simulator at `sim_base`: what `wx.login()` gives the phone.
async fn sim_login(
    http: &reqwest::Client,
    sim_base: &str,
    appid: &str,
    user: &str,
) -> Result<serde_json::Value> {
    Ok(http
        .post(format!("{sim_base}/sim/login"))
        .json(&serde_json::json!({"appid": appid, "user": user}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// A fresh login code for `user` from the simulator at `sim_base`.
pub async fn wx_login(
    http: &reqwest::Client,
    sim_base: &str,
    appid: &str,
    user: &str,
) -> Result<String> {
    let v = sim_login(http, sim_base, appid, user).await?;
    Ok(v["code"].as_str().unwrap_or_default().to_owned())
}

impl Recorder {
    /// The product page's token request for `code`, to the demo application.
    pub fn sign_in_request(&self, url: &str, code: &str) -> reqwest::RequestBuilder {
        self.http.post(url).form(&[
            ("tag", "wechat_miniprogram"),
            ("client_id", DEMO_CLIENT_ID),
            ("code", code),
        ])
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer> {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        if let Ok(mut b) = self.bodies.lock() {
            b.push(text.clone());
        }
        Ok(Answer {
            status,
            headers,
            text,
        })
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// The claims of a JWT, read without checking its signature: what a test asserts about a token.
pub fn claims(token: &str) -> Result<serde_json::Value> {
    use base64::Engine;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow!("not a JWT: {token}"))?;
    Ok(serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?,
    )?)
}

/// A demo-app user's access token signed with the server's own key, issued at `issued` and
/// living an hour, in session `sid` (none when empty: what servers from before sessions
/// issued).
pub fn sign_user_token(
    cert: &iam_domain::model::Cert,
    issuer: &str,
    user_id: &str,
    sid: &str,
    issued: chrono::DateTime<chrono::Utc>,
) -> Result<String> {
    use iam_domain::ports::TokenCodec;
    iam_jwt::install_crypto_provider();
    let codec = iam_jwt::JwtCodec::new();
    let mut claims = iam_domain::service::access_claims(
        DEMO_CLIENT_ID,
        chrono::Duration::hours(1),
        iam_domain::service::Subject {
            sub: user_id,
            owner: "demo",
            name: "",
            display_name: "",
            avatar: "",
        },
        "",
        issuer,
        issued,
    );
    claims.sid = sid.to_owned();
    codec.sign(cert, &claims).map_err(|e| anyhow!("{e}"))
}

/// The hash under which the server stores a token.
pub fn token_hash(token: &str) -> String {
    use iam_domain::ports::TokenCodec;
    iam_jwt::JwtCodec::new().hash(token)
}
