//! Group commit: many request handlers record entries at once; one writer
//! thread commits whatever is waiting as a single durable batch (one journal
//! flush), then answers each of them. A handler releases its response only
//! after its answer, so nothing is acknowledged that is not in the log.
//!
//! The writer takes every entry that waits when it starts a batch (eager
//! batching: under light load a batch is one entry and costs one flush; under
//! heavy load batches grow by themselves). Once a batch shows that entries
//! arrive faster than commits finish, the next one is gathered until it is as
//! large, or until 0.5 ms after the last commit started, so that fewer flushes
//! leave more CPU to the requests. A second thread
//! publishes what was committed (tiles and signed checkpoint) behind the
//! writer, one publication at a time, so publishing never delays an answer.
//! When a commit or a publication fails, the log is failing: entries are
//! refused until a retry succeeds.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::log::{Log, LogError, Publication};
use crate::storage::Storage;

/// Most entries committed as one batch.
const MAX_BATCH: usize = 4096;
/// A batch at least this large means entries arrive faster than commits
/// finish: the next batch is then gathered until it is as large, or until
/// [`COMMIT_SPACING`] after the start of this one.
const BUSY_BATCH: usize = 4;
/// Under load, how long after the start of a commit the next may be gathered
/// for. Each commit costs a flush with its system calls, interrupts and
/// wake-ups; gathering a little longer makes fewer, larger batches and leaves
/// the CPU to the requests (at 5,000 req/s here: 10 points less CPU and half
/// the p99; see docs/benchmarks.md). A lone request, or a few, never waits.
const COMMIT_SPACING: Duration = Duration::from_micros(500);
/// How often the writer looks for the publisher's answer while one is in flight.
const PUBLISH_POLL: Duration = Duration::from_millis(1);
/// The least time between the starts of two publications. A publication
/// flushes several files and the checkpoint; spacing them keeps that disk work
/// from delaying the commits answers wait for, at the price of an auditor
/// seeing a new entry up to this much later.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// The log cannot be written, so the entry is not recorded and the request must be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct Unavailable(pub String);

/// How often, and with which entry, a failing log is retried.
type Probe = (Duration, Box<dyn Fn() -> Vec<u8> + Send>);
type Answer<T> = oneshot::Sender<Result<T, Unavailable>>;

enum Job {
    Record { entry: Vec<u8>, done: Answer<u64> },
    Publish { done: Answer<u64> },
}

/// The handle request handlers record through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Job>,
    arrivals: Arc<Arrivals>,
    problem: Arc<Mutex<Option<String>>>,
}

/// How many jobs are sent and not yet taken by the writer, so that a busy
/// writer can wait for a batch without waking for every entry (the channel
/// has no length to ask). Counted before each send: at worst it runs ahead
/// of the channel by the sends in progress.
#[derive(Default)]
struct Arrivals {
    state: Mutex<ArrivalState>,
    enough: Condvar,
}

#[derive(Default)]
struct ArrivalState {
    queued: usize,
    /// What the writer waits for; 0 while it waits for nothing.
    wanted: usize,
}

impl Arrivals {
    fn lock(&self) -> std::sync::MutexGuard<'_, ArrivalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more job is on its way; the writer is woken once as many are queued as it waits for.
    fn arrived(&self) {
        let mut state = self.lock();
        state.queued += 1;
        if state.wanted != 0 && state.queued >= state.wanted {
            state.wanted = 0;
            self.enough.notify_one();
        }
    }

    /// The writer took `count` jobs.
    fn taken(&self, count: usize) {
        let mut state = self.lock();
        state.queued = state.queued.saturating_sub(count);
    }

    /// Waits until `wanted` jobs are queued, or until `deadline`.
    fn wait_for(&self, wanted: usize, deadline: Instant) {
        let mut state = self.lock();
        while state.queued < wanted {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) else {
                break;
            };
            state.wanted = wanted;
            state = self.enough.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        state.wanted = 0;
    }
}

impl Recorder {
    /// Starts the writer and publisher threads that own `log`.
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

    fn spawn<S: Storage + 'static>(log: Log<S>, probe: Option<Probe>) -> std::io::Result<Self> {
        let (queue, waiting) = mpsc::channel::<Job>();
        let (to_publisher, publications) = mpsc::channel::<Publication>();
        let (to_writer, reports) = mpsc::channel();
        let storage = log.shared_storage();
        std::thread::Builder::new().name("audit-publisher".into()).spawn(move || {
            for publication in publications {
                let report = publication.write(&*storage).map(|()| publication).map_err(|e| e.to_string());
                if to_writer.send(report).is_err() {
                    break;
                }
            }
        })?;
        let problem = Arc::new(Mutex::new(None));
        let arrivals = Arc::new(Arrivals::default());
        let writer = Writer {
            log,
            arrivals: Arc::clone(&arrivals),
            health: Arc::clone(&problem),
            publisher: to_publisher,
            reports,
            in_flight: false,
            last_publication: Instant::now(),
            last_commit: (Instant::now(), 0),
            publish_failed: false,
            waiting_publication: Vec::new(),
        };
        std::thread::Builder::new().name("audit-writer".into()).spawn(move || writer.run(&waiting, probe))?;
        Ok(Self { queue, arrivals, problem })
    }

    /// Records `entry` durably; returns its index in the log.
    pub async fn record(&self, entry: Vec<u8>) -> Result<u64, Unavailable> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Record { entry, done })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues `entry` without waiting for it to be durable: for records whose
    /// outcome can no longer change what a client sees (a stream its client
    /// abandoned). A failure still shows in [`Recorder::problem`].
    pub fn record_detached(&self, entry: Vec<u8>) {
        let (done, _) = oneshot::channel();
        let _ = self.send(Job::Record { entry, done });
    }

    /// Waits until every entry recorded so far is published under a signed
    /// checkpoint; returns the published size.
    pub async fn publish(&self) -> Result<u64, Unavailable> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Publish { done })?;
        answer.await.map_err(|_| stopped())?
    }

    /// [`Recorder::publish`] for a thread outside any async runtime (shutting down).
    pub fn publish_blocking(&self) -> Result<u64, Unavailable> {
        let (done, answer) = oneshot::channel();
        self.send(Job::Publish { done })?;
        answer.blocking_recv().map_err(|_| stopped())?
    }

    /// Why the log is failing, while it is; `None` once a retry succeeds.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn send(&self, job: Job) -> Result<(), Unavailable> {
        self.arrivals.arrived();
        self.queue.send(job).map_err(|_| stopped())
    }
}

fn stopped() -> Unavailable {
    Unavailable("the audit writer has stopped".into())
}

/// The writer thread's state.
struct Writer<S: Storage> {
    log: Log<S>,
    arrivals: Arc<Arrivals>,
    health: Arc<Mutex<Option<String>>>,
    publisher: mpsc::Sender<Publication>,
    reports: mpsc::Receiver<Result<Publication, String>>,
    /// A publication is with the publisher.
    in_flight: bool,
    /// When the last publication started.
    last_publication: Instant,
    /// The last publication failed: publish again, here, before committing more.
    publish_failed: bool,
    /// [`Recorder::publish`] callers and the size each waits for.
    waiting_publication: Vec<(u64, Answer<u64>)>,
    /// When the last commit started, and how many entries it held.
    last_commit: (Instant, usize),
}

impl<S: Storage> Writer<S> {
    fn run(mut self, waiting: &mpsc::Receiver<Job>, probe: Option<Probe>) {
        loop {
            let timeout = match &probe {
                Some((every, _)) if self.failing() && !self.in_flight => Some(*every),
                _ if self.in_flight => Some(PUBLISH_POLL),
                _ if self.log.size() > self.log.published_size() && !self.publish_failed => {
                    Some(PUBLISH_INTERVAL.saturating_sub(self.last_publication.elapsed()))
                }
                _ => None,
            };
            // Ends when every Recorder is dropped.
            let first = match timeout {
                Some(timeout) => match waiting.recv_timeout(timeout) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match waiting.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                },
            };
            self.collect_report();
            match first {
                Some(first) => {
                    let mut jobs = vec![first];
                    jobs.extend(waiting.try_iter().take(MAX_BATCH - 1));
                    self.arrivals.taken(jobs.len());
                    let (started, size) = self.last_commit;
                    if size >= BUSY_BATCH && jobs.len() < size {
                        // Busy: gather until this batch is as large as the last, or for the rest of the spacing.
                        self.arrivals.wait_for(size - jobs.len(), started + COMMIT_SPACING);
                        let before = jobs.len();
                        jobs.extend(waiting.try_iter().take(MAX_BATCH - before));
                        self.arrivals.taken(jobs.len() - before);
                    }
                    self.run_jobs(jobs);
                }
                None => {
                    if let Some((_, make)) = probe.as_ref().filter(|_| self.failing() && !self.in_flight) {
                        let (done, _) = oneshot::channel();
                        self.commit(vec![(make(), done)]);
                    }
                }
            }
            self.start_publication();
        }
        // Shutting down: everything committed is published before the thread ends.
        if self.in_flight
            && let Ok(report) = self.reports.recv()
        {
            self.note_report(report);
        }
        let result = self.log.publish().map_err(|e| Unavailable(e.to_string()));
        for (_, done) in self.waiting_publication.drain(..) {
            let _ = done.send(result.clone());
        }
    }

    fn failing(&self) -> bool {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn set_health(&self, problem: Option<String>) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    fn run_jobs(&mut self, jobs: Vec<Job>) {
        let mut records = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Record { entry, done } => records.push((entry, done)),
                Job::Publish { done } => self.waiting_publication.push((self.log.size(), done)),
            }
        }
        if !records.is_empty() {
            self.commit(records);
        }
        self.answer_publication_waiters();
    }

    /// Commits one batch and answers each of its entries; keeps the health in step.
    fn commit(&mut self, records: Vec<(Vec<u8>, Answer<u64>)>) {
        self.last_commit = (Instant::now(), records.len());
        let (entries, answers): (Vec<Vec<u8>>, Vec<_>) = records.into_iter().unzip();
        let result = self.retry_publication().and_then(|()| self.log.commit(&entries));
        match result {
            Ok(first) => {
                self.set_health(None);
                for (offset, answer) in (0u64..).zip(answers) {
                    let _ = answer.send(Ok(first + offset));
                }
            }
            Err(err) => {
                let reason = err.to_string();
                self.set_health(Some(reason.clone()));
                for answer in answers {
                    let _ = answer.send(Err(Unavailable(reason.clone())));
                }
            }
        }
    }

    /// After a failed publication, publishes here before anything more is committed.
    fn retry_publication(&mut self) -> Result<(), LogError> {
        if self.publish_failed {
            self.log.publish()?;
            self.publish_failed = false;
        }
        Ok(())
    }

    fn collect_report(&mut self) {
        if let Ok(report) = self.reports.try_recv() {
            self.note_report(report);
        }
    }

    fn note_report(&mut self, report: Result<Publication, String>) {
        self.in_flight = false;
        match report {
            Ok(publication) => self.log.published(publication),
            Err(reason) => {
                self.publish_failed = true;
                self.set_health(Some(reason));
            }
        }
        self.answer_publication_waiters();
    }

    fn start_publication(&mut self) {
        if self.in_flight || self.publish_failed || self.last_publication.elapsed() < PUBLISH_INTERVAL {
            return;
        }
        match self.log.publication() {
            Ok(Some(publication)) => {
                self.in_flight = self.publisher.send(publication).is_ok();
                self.last_publication = Instant::now();
            }
            Ok(None) => {}
            Err(err) => {
                self.publish_failed = true;
                self.set_health(Some(err.to_string()));
            }
        }
    }

    fn answer_publication_waiters(&mut self) {
        let published = self.log.published_size();
        let failure = self.publish_failed.then(|| self.health.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let (answered, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting_publication)
            .into_iter()
            .partition(|(size, _)| *size <= published || failure.is_some());
        self.waiting_publication = still;
        for (_, done) in answered {
            let _ = done.send(match &failure {
                Some(reason) => Err(Unavailable(reason.clone().unwrap_or_default())),
                None => Ok(published),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_writer_is_woken_by_the_arrival_it_waits_for_and_otherwise_by_its_deadline() {
        let arrivals = Arc::new(Arrivals::default());
        let far = Instant::now() + Duration::from_secs(600);
        let senders = {
            let arrivals = Arc::clone(&arrivals);
            std::thread::spawn(move || {
                for _ in 0..3 {
                    std::thread::sleep(Duration::from_millis(5));
                    arrivals.arrived();
                }
            })
        };
        arrivals.wait_for(3, far);
        assert!(Instant::now() < far - Duration::from_secs(500), "woken by the third arrival, not the deadline");
        assert_eq!(arrivals.lock().queued, 3);
        senders.join().unwrap();
        arrivals.taken(2);
        assert_eq!(arrivals.lock().queued, 1);
        // Nothing more comes: the deadline ends the wait, and taking more than was counted never underflows.
        let started = Instant::now();
        arrivals.wait_for(2, started + Duration::from_millis(20));
        assert!(started.elapsed() >= Duration::from_millis(20));
        arrivals.taken(5);
        assert_eq!(arrivals.lock().queued, 0);
        assert_eq!(arrivals.lock().wanted, 0);
    }
}
