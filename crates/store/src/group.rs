//! Group commit of sign-ins on SQLite.
//!
//! SQLite has one writer at a time, and each commit writes every page it changed to the log as
//! a whole 4 KB frame: a sign-in's session, refresh token, audit record and sign-in time touch
//! a dozen pages of tables and indexes, and `BEGIN IMMEDIATE` / `COMMIT` cost as much again.
//! Under a burst the sign-ins that are waiting for the write lock are written together instead:
//! the first to arrive leads — it takes one connection on the blocking pool and commits whatever
//! has queued in one transaction — and the others wait for their answer without a thread of
//! their own. Pages shared by the batch (the tail of each index) are written once. A sign-in
//! that fails (its session id taken, a phone claimed in between) fails alone: the batch is
//! then written again one transaction per sign-in. A lone sign-in is a batch of one.
//!
//! Two waits make the batches worth having under a steady stream (measured with iam-load,
//! returning sign-ins at ~1,000/s: 1.5 sign-ins a transaction before, 4.7 after; 9–16% more
//! sign-ins a second, p99 150–155 ms → 125–126 ms, the log a third smaller):
//! - the leader [`LINGER`]s for the next sign-in before it steps down, so a stream is not a
//!   chain of blocking-pool hand-offs and pool check-outs, one per sign-in or two;
//! - once a batch held more than one sign-in (others are signing in at the same moment), the
//!   leader [`GATHER`]s the next for a moment, since each commit writes every page it changed
//!   (each index's tail) as a whole frame whatever the number of rows on it. A lone sign-in
//!   never waits: its batch of one lets the next go at once.
//!
//! PostgreSQL is not grouped: tried (returning sign-ins 619/s → 885/s in one run), it failed a
//! two-node race of first sign-ins in CI with a 503 that is not yet understood. The batch
//! still locks rows in one order (see [`commit`]) should it be used there again.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use iam_domain::StoreError;
use iam_domain::model::SignInWrite;
use tokio::sync::oneshot;

use crate::conn::{AnyConnection, DbError, Pool, write_tx};
use crate::sessions;

/// At most this many sign-ins per transaction: the first of a batch waits for the others'
/// writes, so a batch stays well under a millisecond of work per item.
const MAX_BATCH: usize = 64;

/// How long a leader whose queue ran dry waits for another sign-in before stepping down. It
/// holds a blocking thread and a pooled connection meanwhile (only while another connection is
/// idle in the pool), but no transaction and no lock.
const LINGER: Duration = Duration::from_millis(5);

/// After a batch of several, how long the leader waits for [`GATHER_TARGET`] sign-ins before
/// the next commit: at most this much on a sign-in whose WeChat call alone takes tens of ms.
const GATHER: Duration = Duration::from_millis(2);
const GATHER_TARGET: usize = 16;

type Answer = oneshot::Sender<Result<Vec<String>, StoreError>>;

/// The longest a leader holds its next batch back for a checkpoint that asked it to
/// ([`SignInGroup::pause`]); past it, the batch goes and the checkpoint waits for the lock.
const PAUSE_LIMIT: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Queue {
    pending: Vec<(SignInWrite, Answer)>,
    /// A leader is writing; whatever queues meanwhile is its next batch.
    leading: bool,
    /// A batch's transaction is open.
    writing: bool,
    /// A checkpoint is restarting the log: the leader starts no batch meanwhile.
    paused: bool,
}

#[derive(Default, Clone)]
pub(crate) struct SignInGroup {
    queue: Arc<Mutex<Queue>>,
    /// Signalled when a sign-in queues behind a leader (who may be lingering or gathering), and
    /// when a checkpoint's pause ends.
    arrived: Arc<Condvar>,
    /// Signalled when a batch's transaction ends, for a checkpoint waiting to restart the log.
    between: Arc<Condvar>,
}

/// The sign-in writer held between batches ([`SignInGroup::pause`]); dropped, it goes on.
pub(crate) struct Paused<'a>(&'a SignInGroup);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.lock().paused = false;
        self.0.arrived.notify_all();
    }
}

impl SignInGroup {
    /// Writes `write` with whatever sign-ins are queued beside it; answers what
    /// [`sessions::record_sign_in`] answers for this one.
    pub(crate) async fn record(
        &self,
        pool: Arc<Pool>,
        write: SignInWrite,
    ) -> Result<Vec<String>, StoreError> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut q = self.lock();
            q.pending.push((write, tx));
            !std::mem::replace(&mut q.leading, true)
        };
        if !lead {
            self.arrived.notify_one();
        }
        if lead {
            // The batch runs to its end even if this request is dropped meanwhile: the others'
            // answers depend on it.
            let group = self.clone();
            tokio::task::spawn_blocking(move || group.lead(&pool));
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("the sign-in writer stopped".into()))?
    }

    /// Holds the writer between batches, for a checkpoint that restarts the log: it returns
    /// once the batch being written (if any) has committed, or after `wait`. A RESTART needs
    /// the write lock, and under a stream of sign-ins the leader takes it back batch after
    /// batch: polling for it (SQLite's busy handler sleeps 1, 2, 5, 10… ms between tries) made
    /// restarts slow and let some give up (4 of 45 in one run of first sign-ins) while the log
    /// kept growing.
    pub(crate) fn pause(&self, wait: Duration) -> Paused<'_> {
        let mut q = self.lock();
        q.paused = true;
        drop(
            self.between
                .wait_timeout_while(q, wait, |q| q.writing)
                .map_or_else(|e| e.into_inner().0, |(q, _)| q),
        );
        Paused(self)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue stays consistent whatever panicked while it was held: a push or a take.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits (the queue's lock released meanwhile) until `enough` holds or `wait` has passed.
    fn wait_for<'a>(
        &self,
        q: std::sync::MutexGuard<'a, Queue>,
        wait: Duration,
        enough: impl Fn(&Queue) -> bool,
    ) -> std::sync::MutexGuard<'a, Queue> {
        self.arrived
            .wait_timeout_while(q, wait, |q| !enough(q))
            .map_or_else(|e| e.into_inner().0, |(q, _)| q)
    }

    /// Commits batches until none is waiting, then steps down (under the queue's lock, so a
    /// sign-in that queues after the last take finds no leader and leads itself).
    fn lead(&self, pool: &Pool) {
        let _guard = StepDown(self);
        let mut conn = match pool.get() {
            Ok(c) => c,
            Err(e) => {
                let why = format!("no database connection: {e}");
                let mut q = self.lock();
                q.leading = false;
                for (_, answer) in q.pending.drain(..) {
                    let _ = answer.send(Err(StoreError::Unavailable(why.clone())));
                }
                return;
            }
        };
        let mut last = 0;
        loop {
            let batch: Vec<(SignInWrite, Answer)> = {
                let mut q = self.lock();
                // Only while the pool has a connection to spare for everyone else.
                if q.pending.is_empty() && pool.state().idle_connections > 0 {
                    q = self.wait_for(q, LINGER, |q| !q.pending.is_empty());
                }
                if q.pending.is_empty() {
                    q.leading = false;
                    return;
                }
                if last > 1 {
                    q = self.wait_for(q, GATHER, |q| q.pending.len() >= GATHER_TARGET);
                }
                if q.paused {
                    q = self.wait_for(q, PAUSE_LIMIT, |q| !q.paused);
                }
                let n = q.pending.len().min(MAX_BATCH);
                last = n;
                q.writing = true;
                q.pending.drain(..n).collect()
            };
            let (writes, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let committed = commit(&mut conn.inner, &writes);
            self.lock().writing = false;
            self.between.notify_all();
            match committed {
                Ok(results) => {
                    for (answer, r) in answers.into_iter().zip(results) {
                        let _ = answer.send(r.map_err(DbError::into_domain));
                    }
                }
                Err(e) => {
                    if e.breaks_connection() {
                        conn.broken = true;
                    }
                    let e = e.into_domain();
                    for answer in answers {
                        let _ = answer.send(Err(e.clone()));
                    }
                    if conn.broken {
                        // A dead connection goes back marked; the next batch takes a new one.
                        drop(conn);
                        return self.lead(pool);
                    }
                }
            }
        }
    }
}

/// Should a leader panic, the queue is not left waiting for it: the sign-ins queued behind it
/// are answered with an error and the next one to arrive leads.
struct StepDown<'a>(&'a SignInGroup);

impl Drop for StepDown<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.lock();
            q.leading = false;
            q.writing = false;
            for (_, answer) in q.pending.drain(..) {
                let _ = answer.send(Err(StoreError::Unavailable(
                    "the sign-in writer failed; try again".into(),
                )));
            }
        }
    }
}

/// One transaction for the batch. A sign-in that fails (rare: its session id taken, a phone
/// claimed in between) aborts it, and then each is written in a transaction of its own, so the
/// failed one fails alone. (A savepoint per sign-in would say the same at every batch's cost:
/// SQLite journals each page a savepoint touches, 5% of a sign-in's CPU when measured.)
fn commit(
    c: &mut AnyConnection,
    writes: &[SignInWrite],
) -> Result<Vec<Result<Vec<String>, DbError>>, DbError> {
    if writes.len() > 1 {
        // Rows are locked in one order by every batch of every node — by user, then WeChat
        // identity — so two nodes' batches cannot wait on each other in a cycle.
        let mut order: Vec<usize> = (0..writes.len()).collect();
        order.sort_by_key(|&i| {
            let w = &writes[i];
            let key = w
                .wechat_key
                .as_ref()
                .map(|(a, o, _)| (a.as_str(), o.as_str()));
            (w.session.user_id.as_str(), key)
        });
        let together = write_tx(c, |c| {
            let mut ended = vec![Vec::new(); writes.len()];
            for &i in &order {
                ended[i] = sessions::record_sign_in(c, &writes[i])?;
            }
            Ok(ended)
        });
        match together {
            Ok(ended) => return Ok(ended.into_iter().map(Ok).collect()),
            Err(e) if e.breaks_connection() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(writes
        .iter()
        .map(|w| crate::repo::retry_unique(|| write_tx(c, |c| sessions::record_sign_in(c, w))))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::Utc;
    use iam_domain::model::{RefreshToken, Session, UserTouch};
    use iam_domain::ports::Repository;

    use super::*;

    fn write(sid: &str) -> SignInWrite {
        let at = Utc::now();
        let expires = at + chrono::Duration::hours(1);
        SignInWrite {
            user: UserTouch::Nothing,
            wechat_key: None,
            identity_unionid: None,
            record: None,
            session: Session {
                id: sid.into(),
                organization: "demo".into(),
                application: "a1".into(),
                user_id: "u1".into(),
                user_name: "u1".into(),
                created_time: at,
                last_active_time: at,
                expires_time: expires,
                client_ip: "127.0.0.1".into(),
                user_agent: "test".into(),
                revoked_time: None,
                revoked_reason: String::new(),
            },
            refresh: RefreshToken {
                hash: format!("h-{sid}"),
                session_id: sid.into(),
                application: "a1".into(),
                organization: "demo".into(),
                user_id: "u1".into(),
                scope: "openid".into(),
                created_time: at,
                expires_time: expires,
                used: false,
            },
            max_sessions: 0,
        }
    }

    /// A paused writer starts no batch until the pause ends (or [`PAUSE_LIMIT`] passes), and
    /// then writes what queued meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_writer_waits_for_the_pause_to_end() {
        let (_dir, store) = crate::test_store(4).await;
        let paused = store.sign_ins.pause(Duration::ZERO);
        let started = Instant::now();
        let s = store.clone();
        let queued = tokio::spawn(async move { s.record_sign_in(&write("held")).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let held = store.get_session("held").await.expect("read");
        // Only conclusive while the leader could still be holding the batch.
        if started.elapsed() < PAUSE_LIMIT {
            assert!(held.is_none(), "a batch was written during the pause");
        }
        drop(paused);
        queued
            .await
            .expect("task")
            .expect("written after the pause");
        assert!(store.get_session("held").await.expect("read").is_some());
    }
}
