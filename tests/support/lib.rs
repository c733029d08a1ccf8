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
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target/debug"))
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

    /// `None` when `IAM_TEST_POSTGRES_URL` is not set.
    pub fn postgres() -> Result<Option<Self>> {
        let Ok(admin_url) = std::env::var("IAM_TEST_POSTGRES_URL") else {
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

    /// A store on the same database, to look at what the server wrote.
    pub async fn store(&self) -> Result<iam_store::Store> {
        let driver = iam_store::Driver::parse(self.driver()).ok_or_else(|| anyhow!("driver"))?;
        Ok(iam_store::Store::open(driver, &self.url(), 2).await?)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut c) = diesel::PgConnection::establish(admin_url)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
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
}

impl<'a> IamOptions<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self {
            db,
            wechat_api_base: "http://127.0.0.1:9".into(),
            extra_env: Vec::new(),
            init_data: None,
        }
    }
}

pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

impl Iam {
    pub fn start(opts: &IamOptions<'_>) -> Result<Self> {
        let workdir = tempfile::tempdir()?;
        let conf = workdir.path().join("app.conf");
        let init = opts
            .init_data
            .clone()
            .unwrap_or_else(|| workspace_root().join("conf/init_data.json"));
        std::fs::write(
            &conf,
            format!(
                "httpaddr = 127.0.0.1\nhttpport = 0\nrunmode = prod\ndriverName = {}\n\
                 dataSourceName = {}\ninitDataFile = {}\nwechatApiBase = {}\n\
                 sessionKeyFile = {}\n",
                opts.db.driver(),
                opts.db.url(),
                init.display(),
                opts.wechat_api_base,
                workdir.path().join("session-key.secret").display(),
            ),
        )?;
        let mut cmd = Command::new(binary("iam")?);
        cmd.arg("--config")
            .arg(&conf)
            .current_dir(workdir.path())
            .env("IAM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("IAM_SESSION_KEY_ENCRYPTION_KEY", "7f".repeat(32))
            .env_remove("IAM_CONFIG");
        for (k, v) in &opts.extra_env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn("iam", cmd)?;
        let rest = proc.wait_for("listening on ", Duration::from_secs(60))?;
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
}
