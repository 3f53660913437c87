//! Background threads that push pack data to the disk while `add` goes on hashing.
//!
//! A durable `add` of a large tree is as fast as the disk only if the disk is never
//! idle and the hashing threads never wait for it. Measured on B100k (1 GiB in
//! 10 KiB files): when the hashing threads started writeback themselves they blocked
//! in block allocation (ext4 reads block bitmaps, queued behind the pack writes), and
//! the single fsync at the end spent about a second in the device's cache flush while
//! nothing else ran. So writeback hints and the fsync of every filled pack run here,
//! on their own threads, and [`ObjectStore::flush`](super::ObjectStore::flush) only
//! waits for what is still outstanding.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result};

/// Progress of one worker's queue; the first error sticks until it is collected.
#[derive(Default)]
struct Progress {
    queued: u64,
    done: u64,
    error: Option<Error>,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    finished: Condvar,
}

/// One thread running jobs in the order they were queued. Started on the first job,
/// so commands that write no pack never start a thread.
pub(crate) struct Worker<J: Send + 'static> {
    name: &'static str,
    run: Arc<dyn Fn(J) -> Result<()> + Send + Sync>,
    sender: Mutex<Option<Sender<J>>>,
    shared: Arc<Shared>,
}

impl<J: Send + 'static> Worker<J> {
    /// A worker that runs `run` on each job; `name` names its thread.
    pub(crate) fn new(
        name: &'static str,
        run: impl Fn(J) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        Worker {
            name,
            run: Arc::new(run),
            sender: Mutex::new(None),
            shared: Arc::new(Shared::default()),
        }
    }

    /// Queues a job. If no thread can be started, the job runs on the caller's thread
    /// (slower, never wrong).
    pub(crate) fn submit(&self, job: J) {
        if let Ok(mut p) = self.shared.progress.lock() {
            p.queued += 1;
        }
        let job = match self.sender.lock() {
            Ok(mut sender) => {
                if sender.is_none() {
                    *sender = self.spawn();
                }
                match sender.as_ref() {
                    Some(s) => match s.send(job) {
                        Ok(()) => return,
                        Err(e) => {
                            *sender = None;
                            e.0
                        }
                    },
                    None => job,
                }
            }
            Err(_) => job,
        };
        finish(&self.shared, (self.run)(job));
    }

    fn spawn(&self) -> Option<Sender<J>> {
        let (tx, rx) = channel::<J>();
        let run = self.run.clone();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || {
                // Ends when the store (holding the sender) is dropped.
                for job in rx {
                    // A panicking job must still count as done, or `wait` would hang.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(job)))
                        .unwrap_or_else(|_| {
                            Err(Error::Corrupt("background pack writer panicked".into()))
                        });
                    finish(&shared, r);
                }
            })
            .ok()?;
        Some(tx)
    }

    /// Waits until every job queued so far has run; returns the first error of any
    /// of them since the last call.
    pub(crate) fn wait(&self) -> Result<()> {
        let mut p = self.shared.progress.lock().map_err(super::poisoned)?;
        while p.done < p.queued {
            p = self.shared.finished.wait(p).map_err(super::poisoned)?;
        }
        match p.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn finish(shared: &Shared, result: Result<()>) {
    if let Ok(mut p) = shared.progress.lock() {
        p.done += 1;
        if let Err(e) = result
            && p.error.is_none()
        {
            p.error = Some(e);
        }
    }
    shared.finished.notify_all();
}
