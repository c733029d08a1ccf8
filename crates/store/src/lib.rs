//! The storage adapter: Diesel repositories for SQLite (bundled, WAL) and PostgreSQL, chosen at
//! run time, with migrations embedded per dialect.
//!
//! Diesel is synchronous, so every query runs on tokio's blocking pool through [`Store::run`];
//! the async runtime's worker threads never wait on the database.

mod conn;
mod repo;
mod rows;
mod schema;

use std::sync::Arc;

pub use conn::Driver;
use conn::{AnyConnection, DbError, Pool};
use iam_domain::StoreError;

/// The repository. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Arc<Pool>,
    driver: Driver,
}

impl Store {
    /// Opens a pool on the database. For SQLite the file (and its folder) is created if missing.
    pub async fn open(driver: Driver, url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let url = url.to_owned();
        let pool = tokio::task::spawn_blocking(move || conn::build_pool(driver, &url, pool_size))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(Self {
            pool: Arc::new(pool),
            driver,
        })
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Applies the pending embedded migrations of this dialect; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        self.run(|c| conn::run_migrations(c).map_err(DbError::from))
            .await
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

    /// Runs `f` with a pooled connection on the blocking thread pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?;
            let result = f(&mut conn.inner);
            if let Err(e) = &result
                && e.breaks_connection()
            {
                conn.broken = true;
            }
            result.map_err(DbError::into_domain)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }
}
