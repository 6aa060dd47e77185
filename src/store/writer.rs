//! Group commit on the one writer connection. A write runs in a savepoint inside a transaction
//! that stays open while other writes queue behind it; the transaction is committed (one fsync)
//! once the queue has drained, and every write in it is acknowledged only after that commit.
//! A single writer sees no difference: its write is committed at once.

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// The writer connection and the group transaction open on it.
#[derive(Debug)]
pub(crate) struct Writer {
    conn: Option<PoolConnection<Sqlite>>,
    /// `BEGIN IMMEDIATE` ran and no `COMMIT` yet.
    open: bool,
    /// Writes released into the open transaction, waiting for its commit.
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    /// Group commits so far (tests and the benchmark's explanation).
    commits: u64,
}

pub(crate) type Shared = Arc<Mutex<Writer>>;

pub(crate) fn new(conn: PoolConnection<Sqlite>) -> Shared {
    Arc::new(Mutex::new(Writer {
        conn: Some(conn),
        open: false,
        waiters: Vec::new(),
        commits: 0,
    }))
}

impl Writer {
    fn conn(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        self.conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
    }

    async fn exec(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::query(sql).execute(self.conn()?).await.map(|_| ())
    }

    /// Commits the open transaction and answers every write in it.
    async fn finish(&mut self) {
        if !self.open {
            return;
        }
        let r = self.exec("COMMIT").await;
        self.commits += 1;
        if r.is_err() {
            let _ = self.exec("ROLLBACK").await;
        }
        self.open = false;
        let r = r.map_err(|e| e.to_string());
        for w in self.waiters.drain(..) {
            let _ = w.send(r.clone());
        }
    }

    /// Undoes the current write; ends the transaction when no released write is in it.
    async fn undo(&mut self) -> Result<(), sqlx::Error> {
        let r = async {
            self.exec("ROLLBACK TO w").await?;
            self.exec("RELEASE w").await
        }
        .await;
        if self.waiters.is_empty() && self.open {
            let _ = self.exec("ROLLBACK").await;
            self.open = false;
        }
        r
    }

    /// Ends the open transaction (committing what is in it) and gives the connection back.
    pub(crate) async fn close(&mut self) {
        self.finish().await;
        self.conn = None;
    }
}

/// One write: a savepoint in the group transaction, holding the writer until committed or
/// rolled back. Dereferences to the connection.
pub struct WriteTx {
    guard: Option<OwnedMutexGuard<Writer>>,
    shared: Shared,
}

impl WriteTx {
    pub(crate) async fn begin(shared: &Shared) -> Result<Self, sqlx::Error> {
        let mut g = shared.clone().lock_owned().await;
        if !g.open {
            g.exec("BEGIN IMMEDIATE").await?;
            g.open = true;
        }
        if let Err(e) = g.exec("SAVEPOINT w").await {
            g.finish().await;
            return Err(e);
        }
        Ok(Self {
            guard: Some(g),
            shared: shared.clone(),
        })
    }

    /// Keeps this write in the group and waits until the group is committed (fsynced).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut g = self.guard.take().expect("a live write");
        if let Err(e) = g.exec("RELEASE w").await {
            let _ = g.undo().await;
            return Err(e);
        }
        let (tx, rx) = oneshot::channel();
        g.waiters.push(tx);
        drop(g);
        // The writes queued meanwhile go first (the lock is fair) and join the transaction; the
        // finisher then commits them all. It is a task of its own, so a caller that goes away
        // cannot leave the transaction open.
        let shared = self.shared.clone();
        tokio::spawn(async move {
            shared.lock().await.finish().await;
        });
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(m)) => Err(sqlx::Error::Protocol(format!("group commit failed: {m}"))),
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Undoes this write (the others in the group are kept). When the group holds other writes,
    /// this waits for their commit too: what this write read of them (a claim taken, a row that
    /// exists) is then also what the read pool sees when the caller acts on it.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        let mut g = self.guard.take().expect("a live write");
        let r = g.undo().await;
        if g.waiters.is_empty() {
            return r;
        }
        let (tx, rx) = oneshot::channel();
        g.waiters.push(tx);
        drop(g);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            shared.lock().await.finish().await;
        });
        let _ = rx.await;
        r
    }
}

impl Drop for WriteTx {
    /// Dropped without commit or rollback (an error on the way): undone, as sqlx does.
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = g.undo().await;
            });
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.guard
            .as_ref()
            .and_then(|g| g.conn.as_deref())
            .expect("a live write")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.guard
            .as_mut()
            .and_then(|g| g.conn.as_deref_mut())
            .expect("a live write")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    async fn setup() -> (tempfile::TempDir, Shared, sqlx::SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&write)
            .await
            .unwrap();
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts.read_only(true))
            .await
            .unwrap();
        (dir, new(write.acquire().await.unwrap()), read)
    }

    async fn count(read: &sqlx::SqlitePool, x: i64) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE x = ?")
            .bind(x)
            .fetch_one(read)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_each_is_committed_when_acknowledged() {
        let (_dir, w, read) = setup().await;
        let mut tasks = Vec::new();
        for i in 0..40i64 {
            let (w, read) = (w.clone(), read.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = WriteTx::begin(&w).await.unwrap();
                sqlx::query("INSERT INTO t (x) VALUES (?)")
                    .bind(i)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                // acknowledged means committed: another connection sees it
                assert_eq!(count(&read, i).await, 1, "write {i}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let commits = w.lock().await.commits;
        assert!(commits < 40, "40 concurrent writes took {commits} commits");
        assert!(commits >= 1);
    }

    #[tokio::test]
    async fn a_rolled_back_or_dropped_write_is_undone_and_the_others_kept() {
        let (_dir, w, read) = setup().await;
        let mut tx = WriteTx::begin(&w).await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let mut tx = WriteTx::begin(&w).await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        let mut tx = WriteTx::begin(&w).await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (3)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            (
                count(&read, 1).await,
                count(&read, 2).await,
                count(&read, 3).await
            ),
            (0, 0, 1)
        );
        assert!(!w.lock().await.open, "no transaction left open");
    }
}
