//! The storage adapter: Diesel repositories for SQLite (bundled, WAL) and PostgreSQL, chosen at
//! run time, with migrations embedded per dialect.
//!
//! Diesel is synchronous, so queries run on tokio's blocking pool through `Store::run`; the
//! async runtime's worker threads never wait on the database. One exception: a mini program
//! sign-in's read of its user runs on the request's thread when a SQLite connection is idle
//! (`Store::try_here`): SQLite's log lets a read wait for no writer, and the read costs less
//! than the hand-offs would.

mod access_tokens;
mod conn;
mod directory;
mod export;
mod fixed;
mod group;
mod identities;
mod passwords;
mod records;
mod repo;
mod rows;
mod schema;
mod secrets;
mod sessions;

use std::sync::Arc;

pub use conn::Driver;
use conn::{AnyConnection, DbError, Pool};
use iam_domain::StoreError;
pub use records::RecordWriter;

/// The repository. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Arc<Pool>,
    driver: Driver,
    url: String,
    /// Statements sent on this store's connections (round trips to the database).
    statements: Arc<std::sync::atomic::AtomicU64>,
    /// Seals secrets at rest (signing keys, client secrets, AppSecrets); without it they are
    /// written as they are (the storage contract tests, `iam` commands that need no secret).
    sealer: Option<Arc<dyn iam_domain::ports::SessionSealer>>,
    /// SQLite's sign-ins, committed together under a burst ([`group`]); PostgreSQL's are not
    /// grouped.
    sign_ins: group::SignInGroup,
}

/// The write-ahead log is restarted once it holds this much; below it a passive checkpoint,
/// which never waits for anyone, keeps the database file current. A returning sign-in writes
/// about 70 KB of log, so at 1,400 sign-ins/s one 200 ms tick adds about 20 MB: the file peaks
/// near this size plus a tick's growth, under the 64 MB it is held to.
pub const WAL_RESET_BYTES: u64 = 16 * 1024 * 1024;

impl Store {
    /// Opens a pool on the database. For SQLite the file (and its folder) is created if missing.
    pub async fn open(driver: Driver, url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let owned = url.to_owned();
        let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = statements.clone();
        let pool = tokio::task::spawn_blocking(move || {
            conn::build_pool(driver, &owned, pool_size, counter)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(Self {
            pool: Arc::new(pool),
            driver,
            url: url.to_owned(),
            statements,
            sealer: None,
            sign_ins: Default::default(),
        })
    }

    /// How many statements this store has sent to the database so far (each one a round trip;
    /// `BEGIN` and `COMMIT` count).
    pub fn statements_sent(&self) -> u64 {
        self.statements.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Secrets are sealed with `sealer` as they are written and opened as they are read.
    pub fn with_sealer(mut self, sealer: Arc<dyn iam_domain::ports::SessionSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Applies the pending embedded migrations of this dialect; returns how many ran.
    /// Then gives phones stored before E.164 was kept their E.164 form (SPEC §8.1).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        self.run(|c| {
            let ran = conn::run_migrations(c).map_err(DbError::from)?;
            let filled = identities::backfill_phones(c)?;
            if filled > 0 {
                tracing::info!(users = filled, "phones given their E.164 form");
            }
            Ok(ran)
        })
        .await
    }

    /// The size of the SQLite write-ahead log, in bytes (0 when there is none).
    pub fn wal_bytes(&self) -> u64 {
        std::fs::metadata(format!("{}-wal", self.url))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// One checkpoint of the SQLite write-ahead log. Passive (copies what it can, waits for
    /// nobody) while the log holds less than `reset_bytes` ([`WAL_RESET_BYTES`] in the server);
    /// past that, RESTART: it waits for readers, then the next commit writes the log again from
    /// its start. Under steady load passive checkpoints alone never get to restart the log,
    /// which then grows without end. RESTART keeps the file (a reset log is cut back to
    /// `journal_size_limit`), so its pages stay in the OS's cache and the next commits overwrite
    /// them instead of growing a truncated file page by page again, which cost about 4% of a
    /// sign-in's CPU. When `idle` (nothing was written since the last checkpoint) a log that is
    /// not empty is truncated, so a quiet server holds no log on disk. Returns whether it
    /// restarted or truncated the log.
    pub async fn checkpoint(&self, reset_bytes: u64, idle: bool) -> Result<bool, StoreError> {
        if self.driver != Driver::Sqlite {
            return Ok(false);
        }
        let truncate = idle && self.wal_bytes() > 0;
        let sign_ins = self.sign_ins.clone();
        // One pooled connection for the whole checkpoint: under load a second wait for one
        // would let the log grow for longer.
        self.run(move |c| {
            if truncate {
                return blocking_checkpoint(c, "TRUNCATE");
            }
            // A frame is a page and its 24-byte header; a restored database may not have
            // SQLite's default 4 KB pages.
            let frames = u64::try_from(wal_checkpoint(c, "PASSIVE")?.log).unwrap_or(0);
            let frame_bytes = page_size(c)?.saturating_add(24);
            if frames.saturating_mul(frame_bytes) <= reset_bytes {
                return Ok(false);
            }
            // This process's sign-ins wait for the restart whatever happens (it holds the
            // write lock); held between batches, they let it start at once.
            let _paused = sign_ins.pause(std::time::Duration::from_millis(50));
            blocking_checkpoint(c, "RESTART")
        })
        .await
    }

    /// Checkpoints the SQLite log from a task of its own, so no sign-in's commit ever runs one.
    /// Ends when the last other clone of the store is dropped.
    pub fn spawn_checkpointer(&self, every: std::time::Duration, reset_bytes: u64) {
        if self.driver != Driver::Sqlite {
            return;
        }
        let weak = Arc::downgrade(&self.pool);
        let (driver, url, statements) = (self.driver, self.url.clone(), self.statements.clone());
        let sign_ins = self.sign_ins.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seen = 0;
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { break };
                let store = Store {
                    pool,
                    driver,
                    url: url.clone(),
                    statements: statements.clone(),
                    sealer: None,
                    sign_ins: sign_ins.clone(),
                };
                // `seen` is counted after the last checkpoint's own statements.
                let idle = store.statements_sent() == seen;
                match store.checkpoint(reset_bytes, idle).await {
                    Ok(true) => tracing::debug!("write-ahead log reset"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "checkpoint failed; retried"),
                }
                seen = store.statements_sent();
            }
        });
    }

    /// A consistent copy of a live SQLite database into `path` (SQLite's `VACUUM INTO`: one
    /// read transaction, so writers keep going and the copy includes what the WAL holds).
    pub async fn backup(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.driver != Driver::Sqlite {
            return Err(StoreError::Unavailable(
                "iam backup copies a SQLite database; for PostgreSQL use pg_dump".into(),
            ));
        }
        if path.exists() {
            return Err(StoreError::Conflict(format!("{}", path.display())));
        }
        let target = path.display().to_string().replace('\'', "''");
        self.run(move |c| {
            use diesel::connection::SimpleConnection;
            c.batch_execute(&format!("VACUUM INTO '{target}'"))
                .map_err(DbError::from)
        })
        .await
    }

    /// Runs a short read on the caller's own thread, with a SQLite connection that is idle in
    /// the pool at this moment; `None` (nothing ran) on PostgreSQL, whose every statement waits
    /// on the network, or when no connection is idle. A point read of a few cached pages costs
    /// less than the hand-offs to the blocking pool and back (and far less than the signature
    /// the same thread makes next), and SQLite's log lets it wait for no writer. Nine
    /// interleaved pairs of runs on a 2-core machine (2026-12-04): a returning sign-in's server
    /// CPU fell from a median of 2.06× a bare sign's to 1.88×.
    fn try_here<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
    ) -> Option<Result<T, StoreError>> {
        if self.driver != Driver::Sqlite {
            return None;
        }
        Some(self.pool.try_get()?.run(f))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            pool.get()
                .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?
                .run(f)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }
}

/// A RESTART or TRUNCATE checkpoint; whether it finished. Either holds new writers back while it
/// waits for readers, so a long read (a backup's VACUUM INTO, an operator's shell) must not stall
/// sign-ins for the whole busy timeout: it waits 50 ms at most, and the next tick tries again.
fn blocking_checkpoint(c: &mut AnyConnection, mode: &'static str) -> Result<bool, DbError> {
    use diesel::connection::SimpleConnection;
    c.batch_execute("PRAGMA busy_timeout = 50")?;
    let done = wal_checkpoint(c, mode);
    // A pooled connection left at 50 ms would fail its next caller's busy writes: if the
    // setting cannot be restored, the connection is closed instead of pooled again.
    c.batch_execute(&format!("PRAGMA busy_timeout = {}", conn::BUSY_TIMEOUT_MS))
        .map_err(|e| DbError::Broken(format!("cannot restore the busy timeout: {e}")))?;
    Ok(done?.busy == 0)
}

/// What `PRAGMA wal_checkpoint` answers: whether it could not finish (`busy` 1), and how many
/// frames the log holds.
#[derive(diesel::QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
}

#[derive(diesel::QueryableByName)]
struct PageSize {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    page_size: i64,
}

fn page_size(c: &mut AnyConnection) -> Result<u64, DbError> {
    let p: PageSize = diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA page_size"), c)?;
    Ok(u64::try_from(p.page_size).unwrap_or(4096))
}

fn wal_checkpoint(c: &mut AnyConnection, mode: &'static str) -> Result<Checkpoint, DbError> {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")),
        c,
    )
    .map_err(DbError::from)
}

/// A migrated SQLite store in a temporary directory (dropped with the directory), with
/// `pool_size` connections, for the crate's own tests.
#[cfg(test)]
pub(crate) async fn test_store(pool_size: u32) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iam.db");
    let store = Store::open(Driver::Sqlite, path.to_str().expect("utf-8"), pool_size)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    (dir, store)
}
