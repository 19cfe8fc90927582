//! SQLite: WAL checkpoints on a connection of their own, so no writer waits for them.
//!
//! In WAL mode with `synchronous=NORMAL` a commit only appends to the WAL; the fsyncs happen
//! when a checkpoint copies the WAL back into the database file. SQLite's automatic
//! checkpoint runs inside the commit that crosses its threshold, so that writer waited for
//! the copy and two fsyncs: about 2.7 s of a 1M-record import's ~21 s (measured by
//! switching the fsyncs off). Here a task checkpoints in the background (`PASSIVE`: it
//! never waits for, nor blocks, readers and writers) on its own connection and thread.
//! The pool keeps SQLite's automatic checkpoint at a higher threshold, as a fallback should
//! this task fall behind.

use crate::error::db_err;
use domain::StoreError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often the checkpointer copies the WAL back. One checkpoint per interval, not back to
/// back: a page that several commits in a row rewrite is then copied once for all of them
/// (a 1M-record import used ~2 CPU-s more when every new frame was copied at once).
const INTERVAL: Duration = Duration::from_millis(500);

/// What the background checkpointer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoints {
    /// Checkpoints that copied at least one frame.
    pub runs: u64,
    /// Frames (pages) copied back into the database file, in all (at least: a WAL that a
    /// writer started over between two checkpoints may hide a few).
    pub frames: u64,
    /// Checkpoints that failed (logged; the next interval tries again).
    pub failures: u64,
}

/// Held by every clone of the `Store`; when the last one goes, the task stops.
pub(crate) struct Checkpointer {
    done: watch::Receiver<Checkpoints>,
    _alive: Arc<()>,
}

impl Checkpointer {
    /// Starts the task on `conn` (a connection used for nothing else).
    pub(crate) fn start(conn: DatabaseConnection) -> Self {
        let alive = Arc::new(());
        let (tx, done) = watch::channel(Checkpoints::default());
        tokio::spawn(run(conn, Arc::downgrade(&alive), tx));
        Self {
            done,
            _alive: alive,
        }
    }

    pub(crate) fn progress(&self) -> watch::Receiver<Checkpoints> {
        self.done.clone()
    }
}

async fn run(conn: DatabaseConnection, alive: Weak<()>, tx: watch::Sender<Checkpoints>) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The WAL as the last checkpoint left it: (frames in it, frames copied back).
    let mut last = Wal::default();
    while alive.strong_count() > 0 {
        ticks.tick().await;
        match checkpoint(&conn).await {
            Ok(now) => {
                let copied = now.copied_since(last);
                last = now;
                if copied > 0 {
                    tx.send_modify(|c| {
                        c.runs += 1;
                        c.frames += copied;
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; trying again later");
                tx.send_modify(|c| c.failures += 1);
            }
        }
    }
    let _ = conn.close().await;
}

/// The WAL after a checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wal {
    frames: u64,
    copied: u64,
}

impl Wal {
    /// Frames copied back since `before`. A WAL with fewer frames than before was started
    /// over by a writer (everything in it had been copied), so all its copied frames are new.
    fn copied_since(self, before: Wal) -> u64 {
        if self.frames < before.frames {
            self.copied
        } else {
            self.copied.saturating_sub(before.copied)
        }
    }
}

/// One `PASSIVE` checkpoint.
async fn checkpoint(conn: &DatabaseConnection) -> Result<Wal, StoreError> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await
        .map_err(|e| db_err("checkpoint", e))?
        .ok_or_else(|| StoreError::Unavailable("checkpoint returned no row".to_owned()))?;
    let column = |i: usize| {
        row.try_get_by_index::<i64>(i)
            .map(|v| u64::try_from(v).unwrap_or(0))
            .map_err(|e| db_err("checkpoint", e))
    };
    // (busy, frames in the WAL, frames copied back); -1s when not in WAL mode.
    Ok(Wal {
        frames: column(1)?,
        copied: column(2)?,
    })
}
