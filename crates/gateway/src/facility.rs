//! Facility health on the request path: the site's status file is read on a
//! thread of its own; while the facility is degraded (and until it has stayed
//! healthy for `recover_after_secs`) the site takes no new inference requests
//! and is not ready, while requests and streams already running finish.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rampart_config::FacilityConfig;
use rampart_router::facility::{Drain, FacilityStatus};

/// Whether the site is draining, and why; updated by the status-file reader.
pub struct Facility {
    draining: Mutex<Option<String>>,
}

impl Facility {
    /// Reads the status file now (so the first request already sees it), then
    /// every `poll_ms` on a thread of its own.
    pub fn watch(config: &FacilityConfig) -> anyhow::Result<std::sync::Arc<Self>> {
        let mut drain = Drain::new(Duration::from_secs(config.recover_after_secs));
        let path = config.status_file.clone();
        let read = move |drain: &mut Drain| {
            let problems = match std::fs::read_to_string(&path) {
                Ok(text) => FacilityStatus::parse(&text).map(|status| status.problems()),
                Err(err) => Err(err.to_string()),
            }
            // An unreadable report is no proof of health: fail closed.
            .unwrap_or_else(|reason| vec![format!("status file '{}' unusable: {reason}", path.display())]);
            drain.observe(&problems, Instant::now())
        };
        let facility = std::sync::Arc::new(Self { draining: Mutex::new(read(&mut drain)) });
        let watched = std::sync::Arc::clone(&facility);
        let every = Duration::from_millis(config.poll_ms);
        std::thread::Builder::new().name("facility".into()).spawn(move || {
            loop {
                std::thread::sleep(every);
                let now = read(&mut drain);
                let mut draining = watched.draining.lock().unwrap_or_else(|e| e.into_inner());
                if now.is_some() != draining.is_some() {
                    match &now {
                        Some(reason) => tracing::warn!(%reason, "facility degraded: draining, no new requests"),
                        None => tracing::info!("facility healthy again: taking new requests"),
                    }
                }
                *draining = now;
            }
        })?;
        Ok(facility)
    }

    /// Why the site is draining, or `None` when it takes new requests.
    pub fn draining(&self) -> Option<String> {
        self.draining.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
