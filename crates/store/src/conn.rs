//! Connections, the pool and the plumbing that keeps blocking database IO off the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use iam_domain::StoreError;
use iam_domain::error::USER_PHONE_RULE;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection type for both dialects, so one binary serves either.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs `$body` on whichever backend's own connection `$c` holds. For a statement the
/// multi-backend connection cannot express (raw SQL, a multi-row insert), and on the sign-in's
/// path: diesel's own connection finds a query of a static type in its prepared-statement cache
/// by that type, where the multi-backend one builds the query's SQL text again to look it up
/// (about 1% of a returning sign-in's CPU for each statement, in a profile).
macro_rules! on_any {
    ($c:expr, |$conn:ident| $body:expr) => {
        match $c {
            $crate::conn::AnyConnection::Sqlite($conn) => $body,
            $crate::conn::AnyConnection::Postgresql($conn) => $body,
        }
    };
}
pub(crate) use on_any;

/// Inserts rows into `table` inside the caller's transaction: one statement for all of them
/// on PostgreSQL (the caller keeps them under its 65,535 bind parameters); one (prepared,
/// cached) statement each on SQLite, whose batch insert opens a transaction of its own, which
/// cannot nest in the caller's. The multi-backend connection has no multi-row insert.
pub(crate) fn insert_rows<T, R>(
    c: &mut AnyConnection,
    table: T,
    rows: Vec<R>,
) -> Result<(), DbError>
where
    T: diesel::Table + Copy,
    R: Insertable<T>,
    Vec<R>: Insertable<T>,
    diesel::query_builder::InsertStatement<T, <R as Insertable<T>>::Values>:
        diesel::query_dsl::methods::ExecuteDsl<diesel::SqliteConnection>,
    diesel::query_builder::InsertStatement<T, <Vec<R> as Insertable<T>>::Values>:
        diesel::query_dsl::methods::ExecuteDsl<diesel::PgConnection>,
{
    if rows.is_empty() {
        return Ok(());
    }
    match c {
        AnyConnection::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(table).values(row).execute(c)?;
            }
        }
        AnyConnection::Postgresql(c) => {
            diesel::insert_into(table).values(rows).execute(c)?;
        }
    }
    Ok(())
}

/// Which database the server talks to (`driverName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Sqlite,
    Postgres,
}

impl Driver {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// Opens connections of the configured dialect only. diesel's own `establish` for a multi
/// connection tries every dialect in turn, which would quietly create a SQLite file named like a
/// PostgreSQL URL while PostgreSQL is down.
#[derive(Debug)]
pub struct Manager {
    driver: Driver,
    url: String,
    statements: Arc<AtomicU64>,
}

impl Manager {
    pub fn new(driver: Driver, url: impl Into<String>, statements: Arc<AtomicU64>) -> Self {
        Self {
            driver,
            url: url.into(),
            statements,
        }
    }
}

/// Counts the statements a connection sends (each one a round trip to PostgreSQL, `BEGIN` and
/// `COMMIT` included): what a sign-in costs the database, in `/metrics`.
struct StatementCounter(Arc<AtomicU64>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A pooled connection that remembers when a query found it dead, so the pool drops it instead
/// of handing it out again (cheaper than testing every connection on every checkout).
pub struct Conn {
    pub inner: AnyConnection,
    pub broken: bool,
}

impl Conn {
    /// Runs `f` on this connection; an error that leaves the connection unusable marks it so the
    /// pool closes it instead of handing it out again.
    pub(crate) fn run<T>(
        &mut self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
    ) -> Result<T, StoreError> {
        let result = f(&mut self.inner);
        if let Err(e) = &result
            && e.breaks_connection()
        {
            self.broken = true;
        }
        result.map_err(DbError::into_domain)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Conn, Self::Error> {
        self.open().map(|inner| Conn {
            inner,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        conn.inner
            .batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}

/// How long a SQLite statement waits for a lock before it fails with "database is locked".
pub(crate) const BUSY_TIMEOUT_MS: u32 = 10_000;

impl Manager {
    fn open(&self) -> Result<AnyConnection, diesel::r2d2::Error> {
        match self.driver {
            Driver::Sqlite => {
                let mut c = diesel::SqliteConnection::establish(&self.url)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the one writer; the busy timeout makes writers queue
                // instead of failing; foreign keys are off by default in SQLite. No commit runs
                // a checkpoint itself (wal_autocheckpoint = 0): the store's checkpointer does,
                // in the background, and a reset log is cut back to journal_size_limit. (A
                // memory-mapped database was tried: more CPU per sign-in, and a larger log.)
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                     PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;"
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                c.set_instrumentation(StatementCounter(self.statements.clone()));
                Ok(AnyConnection::Sqlite(c))
            }
            Driver::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                c.set_instrumentation(StatementCounter(self.statements.clone()));
                Ok(AnyConnection::Postgresql(c))
            }
        }
    }
}

pub type Pool = r2d2::Pool<Manager>;

pub fn build_pool(
    driver: Driver,
    url: &str,
    size: u32,
    statements: Arc<AtomicU64>,
) -> Result<Pool, StoreError> {
    if driver == Driver::Sqlite
        && let Some(dir) = std::path::Path::new(url).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    if driver == Driver::Sqlite {
        private_database_file(url)?;
    }
    if driver == Driver::Postgres {
        check_database_exists(url)?;
    }
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(3))
        .test_on_check_out(false)
        .build(Manager::new(driver, url, statements))
        .map_err(|e| StoreError::Unavailable(redact(&e.to_string())))
}

/// The SQLite file holds password hashes, signing keys and secrets: a new one is created
/// readable by its owner only (SQLite gives its -wal and -shm files the same mode); an existing
/// one others can read is named in a warning.
fn private_database_file(path: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    match std::fs::metadata(path) {
        Ok(m) => {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = path,
                    mode = format!("{:o}", m.permissions().mode() & 0o777),
                    "the database file can be read by other users: chmod 600 it"
                );
            }
            Ok(())
        }
        Err(_) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(|_| ())
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(StoreError::Unavailable(format!(
                    "cannot create {path}: {e}"
                ))),
            }),
    }
}

/// A database that does not exist will not appear by waiting: say so at once, with the command
/// that creates it. Other failures (the server still starting) are left to the pool's retries.
/// The first connection, tried a bounded number of times (a database starting beside the
/// server gets a few seconds): a missing database is named with the command that creates it,
/// an unreachable server with its host and port. The password never appears.
fn check_database_exists(url: &str) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 4;
    let target = PgTarget::of(url);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << (attempt - 1)));
        }
        match diesel::PgConnection::establish(url) {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("does not exist") => {
                return Err(StoreError::Unavailable(format!(
                    "{}; create it with: {}",
                    redact(e.to_string().trim()),
                    target.createdb()
                )));
            }
            Err(e) => {
                last = redact(e.to_string().trim());
                tracing::warn!(
                    host = %target.host,
                    port = %target.port,
                    attempt = attempt + 1,
                    error = %last,
                    "cannot connect to PostgreSQL"
                );
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "dataSourceName: cannot connect to PostgreSQL at {}:{} as {} (database {}) after {ATTEMPTS} \
         attempts: {last}",
        if target.host.is_empty() {
            "localhost"
        } else {
            &target.host
        },
        if target.port.is_empty() {
            "5432"
        } else {
            &target.port
        },
        if target.user.is_empty() {
            "(default user)"
        } else {
            &target.user
        },
        target.db(),
    )))
}

/// The parts of a `postgres://user:pass@host:port/db` URL that may be shown (no password).
struct PgTarget {
    user: String,
    host: String,
    port: String,
    db: String,
}

impl PgTarget {
    fn of(url: &str) -> Self {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let rest = rest.split('?').next().unwrap_or_default();
        let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (u.split(':').next().unwrap_or_default(), h),
            None => ("", authority),
        };
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, ""));
        Self {
            user: user.to_owned(),
            host: host.to_owned(),
            port: port.to_owned(),
            db: db.to_owned(),
        }
    }

    fn db(&self) -> &str {
        if self.db.is_empty() { "iam" } else { &self.db }
    }

    /// `createdb` with the host, port and user.
    fn createdb(&self) -> String {
        let mut cmd = String::from("createdb");
        for (flag, value) in [("-h", &self.host), ("-p", &self.port), ("-U", &self.user)] {
            if !value.is_empty() {
                cmd.push_str(&format!(" {flag} {value}"));
            }
        }
        cmd.push(' ');
        cmd.push_str(self.db());
        cmd
    }
}

/// Keeps a PostgreSQL password out of error messages.
fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for word in msg.split_inclusive(' ') {
        if let (Some(scheme), Some(at)) = (word.find("://"), word.rfind('@'))
            && at > scheme
        {
            out.push_str(&word[..scheme + 3]);
            out.push_str("***");
            out.push_str(&word[at..]);
            continue;
        }
        out.push_str(word);
    }
    out
}

pub fn run_migrations(conn: &mut AnyConnection) -> Result<usize, StoreError> {
    let applied = match conn {
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        AnyConnection::Postgresql(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    applied.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
}

/// Errors inside a blocking closure: a driver error still to be mapped, or a domain error already.
#[derive(Debug)]
pub enum DbError {
    Diesel(DieselError),
    Domain(StoreError),
    /// The connection is left in a state no other caller may meet (a setting that could not be
    /// restored): it must not go back into the pool.
    Broken(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        Self::Diesel(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        Self::Domain(e)
    }
}

impl DbError {
    /// The connection itself failed (closed, unreachable): it must not go back into the pool.
    pub fn breaks_connection(&self) -> bool {
        match self {
            Self::Diesel(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => {
                true
            }
            Self::Diesel(DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                let m = info.message().to_ascii_lowercase();
                m.contains("connection") || m.contains("terminat") || m.contains("server closed")
            }
            Self::Diesel(DieselError::BrokenTransactionManager) | Self::Broken(_) => true,
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Diesel(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// The one place driver errors become domain errors.
    pub fn into_domain(self) -> StoreError {
        match self {
            Self::Domain(e) => e,
            Self::Broken(why) => StoreError::Unavailable(why),
            Self::Diesel(DieselError::DatabaseError(kind, info)) => {
                let what = info
                    .constraint_name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| info.message().to_owned());
                match kind {
                    DatabaseErrorKind::UniqueViolation => StoreError::Conflict(describe(&what)),
                    DatabaseErrorKind::ForeignKeyViolation => {
                        StoreError::MissingReference(describe(&what))
                    }
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::SerializationFailure => StoreError::Unavailable(what),
                    _ => StoreError::Unavailable(info.message().to_owned()),
                }
            }
            Self::Diesel(DieselError::NotFound) => StoreError::Corrupt("row vanished".into()),
            Self::Diesel(DieselError::DeserializationError(e)) => {
                StoreError::Corrupt(e.to_string())
            }
            Self::Diesel(e) => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// Turns a constraint name or SQLite's "UNIQUE constraint failed: users.owner, users.name" into
/// words a caller understands.
fn describe(what: &str) -> String {
    let w = what.to_ascii_lowercase();
    let known = [
        ("users_owner_name", "user owner/name"),
        ("users_owner_phone_e164", USER_PHONE_RULE),
        ("users.owner, users.phone_e164", USER_PHONE_RULE),
        ("users.owner, users.name", "user owner/name"),
        ("users_pkey", "user id"),
        ("users.id", "user id"),
        ("applications_client_id", "application clientId"),
        ("applications.client_id", "application clientId"),
        ("applications_pkey", "application name"),
        ("applications.name", "application name"),
        ("organizations_pkey", "organization name"),
        ("organizations.name", "organization name"),
        ("providers_pkey", "provider owner/name"),
        ("providers.owner", "provider owner/name"),
        ("certs_pkey", "cert name"),
        ("certs.name", "cert name"),
        ("wechat_identities_pkey", "wechat identity"),
        ("wechat_identities.appid", "wechat identity"),
        (
            "wechat_identities_user_id_fkey",
            "user of the wechat identity",
        ),
        (
            "applications_organization_fkey",
            "organization of the application",
        ),
        ("users_owner_fkey", "organization of the user"),
        ("tokens_", "token"),
        ("tokens.", "token"),
    ];
    known
        .iter()
        .find(|(k, _)| w.contains(k))
        .map(|(_, v)| (*v).to_owned())
        .unwrap_or_else(|| what.to_owned())
}

/// The writers of this process queue here before `BEGIN IMMEDIATE`. SQLite admits one writer
/// at a time; without this queue the others wait in SQLite's busy handler, which *sleeps* (1,
/// 2, 5, … up to 100 ms between tries), so the write lock sat idle while sign-ins slept and a
/// returning sign-in's p99 reached 360 ms at 64 clients. A mutex hands the lock on at once.
/// Another process on the same file (the `iam` CLI, a checkpoint) still meets the busy timeout.
/// One lock for the process: a server opens one database; tests that open several only have
/// their writes to different files take turns. Write transactions never nest (SQLite refuses
/// `BEGIN` inside one), so holding it cannot deadlock.
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes the write lock
/// up front instead of failing with SQLITE_BUSY when a deferred transaction tries to upgrade,
/// after the process's writer queue ([`SQLITE_WRITER`]); on PostgreSQL an ordinary transaction.
pub fn write_tx<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    match conn {
        AnyConnection::Sqlite(_) => {
            // A panic while holding it poisons nothing we rely on: the guard only orders turns.
            let _turn = SQLITE_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            conn.batch_execute("BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(v) => match conn.batch_execute("COMMIT") {
                    Ok(()) => Ok(v),
                    Err(e) => {
                        let _ = conn.batch_execute("ROLLBACK");
                        Err(e.into())
                    }
                },
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(e)
                }
            }
        }
        AnyConnection::Postgresql(_) => conn.transaction(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_sqlite_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("iam.db");
        let url = path.to_string_lossy().to_string();
        let pool = build_pool(Driver::Sqlite, &url, 1, Default::default()).expect("pool");
        drop(pool);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("cannot connect to postgres://u:secret@db:5432/x now"),
            "cannot connect to postgres://***@db:5432/x now"
        );
    }

    #[test]
    fn createdb_hint_names_host_port_user_and_database() {
        assert_eq!(
            PgTarget::of("postgres://postgres:pw@127.0.0.1:5432/iam?sslmode=disable").createdb(),
            "createdb -h 127.0.0.1 -p 5432 -U postgres iam"
        );
        assert_eq!(
            PgTarget::of("postgres://db.local/app").createdb(),
            "createdb -h db.local app"
        );
    }

    #[test]
    fn an_unreachable_server_is_named_after_bounded_retries_without_its_password() {
        // Port 1 on loopback refuses at once: four attempts, about two seconds.
        let started = std::time::Instant::now();
        let err = check_database_exists("postgres://iam:s3cret-pw@127.0.0.1:1/iam")
            .expect_err("nothing listens on port 1");
        let msg = err.to_string();
        assert!(msg.contains("127.0.0.1:1"), "{msg}");
        assert!(msg.contains("after 4 attempts"), "{msg}");
        assert!(msg.contains("dataSourceName"), "{msg}");
        assert!(!msg.contains("s3cret-pw"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn constraint_names_are_described() {
        assert_eq!(
            describe("UNIQUE constraint failed: users.owner, users.name"),
            "user owner/name"
        );
        assert_eq!(
            describe("UNIQUE constraint failed: users.owner, users.phone_e164"),
            USER_PHONE_RULE
        );
        assert_eq!(describe("users_owner_phone_e164_key"), USER_PHONE_RULE);
        assert_eq!(
            describe("applications_client_id_key"),
            "application clientId"
        );
    }
}
