//! All SQL lives here (sqlx, SQLite). Writes go through one writer connection, grouped into
//! `BEGIN IMMEDIATE` transactions by group commit (`writer.rs`); reads use a small pool. Every write that changes what a
//! provider should hold writes its outbox mark in the same transaction.

mod codes;
mod coupons;
pub mod mirror;
pub mod outbox;
mod rows;
mod transactions;
mod writer;

pub use codes::CodeView;
pub use coupons::{CouponView, Redemption};
pub use outbox::SyncState;
pub use transactions::{TransactionFilter, TransactionRow};

use crate::domain::FieldErrors;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

/// Errors of the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A rule only the store can check (uniqueness, existence), named by field.
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<FieldErrors> for StoreError {
    fn from(e: FieldErrors) -> Self {
        StoreError::Invalid(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How hard SQLite syncs a commit to disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync on every commit: an acknowledged write survives power loss.
    Full,
    /// fsync at checkpoints: survives a process crash, may lose the last commits on power loss.
    Normal,
}

/// Store options.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    pub busy_timeout: Duration,
    pub read_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }
}

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    /// The one writer connection, shared by every write (group commit).
    writer: writer::Shared,
    path: std::path::PathBuf,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating if missing) and migrates the database at `path`.
    pub async fn open(path: &Path, opts: &StoreOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match opts.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let writer = writer::new(write.acquire().await?);
        let read = SqlitePoolOptions::new()
            .max_connections(opts.read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Self {
            read,
            write,
            writer,
            path: path.to_path_buf(),
        })
    }

    /// A write: a savepoint in the writer's group transaction (which holds SQLite's write lock
    /// from its start); `commit` returns once the group is committed.
    async fn begin(&self) -> Result<writer::WriteTx> {
        Ok(writer::WriteTx::begin(&self.writer).await?)
    }

    /// A round-trip through the writer (what `/status` probes).
    pub async fn ping_write(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS _probe (x INTEGER)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO _probe (x) VALUES (1)")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    /// The database file (tests reach it directly).
    #[doc(hidden)]
    pub fn path_for_tests(&self) -> &Path {
        &self.path
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.lock().await.close().await;
        self.write.close().await;
        self.read.close().await;
    }
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
