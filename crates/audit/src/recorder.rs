//! Group commit: many request handlers record entries at once; one writer
//! thread appends whatever is waiting as a single durable batch, then answers
//! each of them. A handler releases its response only after its answer, so
//! nothing is acknowledged that is not in the log.
//!
//! The writer takes every entry that waits when it starts a batch (eager
//! batching, no timer: under light load a batch is one entry and costs one
//! round of flushes; under heavy load batches grow by themselves).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::log::Log;
use crate::storage::Storage;

/// Most entries appended as one batch.
const MAX_BATCH: usize = 4096;

/// The log cannot be written, so the entry is not recorded and the request must be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct Unavailable(pub String);

/// How often, and with which entry, a failing log is retried.
type Probe = (Duration, Box<dyn Fn() -> Vec<u8> + Send>);

struct Pending {
    entry: Vec<u8>,
    done: oneshot::Sender<Result<u64, Unavailable>>,
}

/// The handle request handlers record through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Pending>,
    problem: Arc<Mutex<Option<String>>>,
}

impl Recorder {
    /// Starts the writer thread that owns `log`.
    pub fn start<S: Storage + 'static>(log: Log<S>) -> std::io::Result<Self> {
        Self::spawn(log, None)
    }

    /// Like [`Recorder::start`], but while the log cannot be written the writer
    /// tries to append the entry `probe` makes every `every`, so service resumes
    /// (and readiness returns) without waiting for a request to try again.
    pub fn start_probing<S: Storage + 'static>(
        log: Log<S>,
        every: Duration,
        probe: impl Fn() -> Vec<u8> + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::spawn(log, Some((every, Box::new(probe))))
    }

    fn spawn<S: Storage + 'static>(mut log: Log<S>, probe: Option<Probe>) -> std::io::Result<Self> {
        let (queue, waiting) = mpsc::channel::<Pending>();
        let problem = Arc::new(Mutex::new(None));
        let health = Arc::clone(&problem);
        std::thread::Builder::new().name("audit-writer".into()).spawn(move || {
            let failing = || health.lock().unwrap_or_else(|e| e.into_inner()).is_some();
            loop {
                let first = match &probe {
                    Some((every, make)) if failing() => match waiting.recv_timeout(*every) {
                        Ok(first) => first,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let (done, _) = oneshot::channel();
                            Pending { entry: make(), done }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    },
                    // Ends when every Recorder is dropped.
                    _ => match waiting.recv() {
                        Ok(first) => first,
                        Err(_) => break,
                    },
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                write_batch(&mut log, batch, &health);
            }
        })?;
        Ok(Self { queue, problem })
    }

    /// Records `entry` durably; returns its index once it is in a signed checkpoint.
    pub async fn record(&self, entry: Vec<u8>) -> Result<u64, Unavailable> {
        let stopped = || Unavailable("the audit writer has stopped".into());
        let (done, answer) = oneshot::channel();
        self.queue.send(Pending { entry, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues `entry` without waiting for it to be durable: for records whose
    /// outcome can no longer change what a client sees (a stream its client
    /// abandoned). A failure still shows in [`Recorder::problem`].
    pub fn record_detached(&self, entry: Vec<u8>) {
        let (done, _) = oneshot::channel();
        let _ = self.queue.send(Pending { entry, done });
    }

    /// Why the last batch failed, while the log cannot be written; `None` once a batch succeeds again.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Appends one batch and answers each of its entries; keeps `health` in step.
fn write_batch<S: Storage>(log: &mut Log<S>, batch: Vec<Pending>, health: &Mutex<Option<String>>) {
    let (entries, answers): (Vec<Vec<u8>>, Vec<_>) = batch.into_iter().map(|p| (p.entry, p.done)).unzip();
    let result = log.append(&entries);
    // A poisoned lock only means a reader panicked; the value is still a plain Option.
    let mut health = health.lock().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(first_index) => {
            *health = None;
            drop(health);
            for (offset, answer) in (0u64..).zip(answers) {
                let _ = answer.send(Ok(first_index + offset));
            }
        }
        Err(err) => {
            let reason = err.to_string();
            *health = Some(reason.clone());
            drop(health);
            for answer in answers {
                let _ = answer.send(Err(Unavailable(reason.clone())));
            }
        }
    }
}
