//! What every request handler can see: the models, backends and metrics
//! shared by all workers, plus the per-worker upstream clients.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rampart_config::Config;
use rampart_console::Console;
use rampart_engine::Engine;

use crate::admit::Admission;
use crate::backend::{Backend, UpstreamClient};
use crate::connection::ClientConnections;
use crate::facility::Facility;
use crate::federation::Federation;
use crate::library::Library;
use crate::metrics::Metrics;
use crate::placement::Placement;
use crate::security::Security;
use crate::trail::Trail;

/// How a model is served.
pub enum ModelEntry {
    /// By the in-process engine.
    Embedded(Engine),
    /// By these backends (indices into [`Shared::backends`]).
    Remote(Vec<usize>),
    /// Only by peer sites.
    Peers,
}

/// What the serve stage and the site's own tasks need of the configuration,
/// resolved once at start-up (nothing reads the raw configuration per request).
pub struct Settings {
    /// Tries of a request at a backend: one, plus `proxy.retries`.
    pub attempts: usize,
    /// `proxy.health_interval_ms`.
    pub health_interval: Duration,
    /// `server.shutdown_grace_secs`.
    pub shutdown_grace: Duration,
    /// `server.header_read_timeout_secs`.
    pub header_read_timeout: Duration,
    /// `server.idle_timeout_secs`.
    pub idle_timeout: Duration,
}

impl Settings {
    fn new(config: &Config) -> Self {
        Self {
            attempts: 1 + config.proxy.retries as usize,
            health_interval: Duration::from_millis(config.proxy.health_interval_ms),
            shutdown_grace: Duration::from_secs(config.server.shutdown_grace_secs),
            header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        }
    }
}

/// State shared by all workers.
pub struct Shared {
    /// The configuration's settings for the serve stage and the site's tasks.
    pub settings: Settings,
    /// Models by id, in configuration order.
    pub models: HashMap<String, ModelEntry>,
    /// Model ids in a stable order for listing.
    pub model_ids: Vec<String>,
    /// Upstream backends.
    pub backends: Vec<Backend>,
    /// The admit stage's settings.
    pub admission: Admission,
    /// Connections open per client address.
    pub connections: Arc<ClientConnections>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Identity, labels and policy.
    pub security: Security,
    /// The audit log; `None` only on an `insecure_dev` site without `[audit]`.
    pub trail: Option<Trail>,
    /// The facility's health, when `[facility]` is configured.
    pub facility: Option<Arc<Facility>>,
    /// Which requests this site may serve, when `[[sites]]` are configured.
    pub placement: Option<Placement>,
    /// The peer sites requests may be forwarded to, with `[federation]`.
    pub federation: Option<Federation>,
    /// The collections retrieved from, with `[collections]`.
    pub library: Library,
    /// The web console's settings.
    pub console: Console,
}

impl Shared {
    /// Builds the shared state around started engines and the open audit log; prepares backends.
    pub fn new(config: &Config, engines: Vec<Engine>, trail: Option<Trail>) -> anyhow::Result<Self> {
        let backends = config.backends.iter().cloned().map(Backend::new).collect::<anyhow::Result<Vec<_>>>()?;
        let mut models = HashMap::new();
        let mut model_ids = Vec::new();
        for engine in engines {
            model_ids.push(engine.name().to_owned());
            models.insert(engine.name().to_owned(), ModelEntry::Embedded(engine));
        }
        for (index, backend) in backends.iter().enumerate() {
            for model in &backend.config.models {
                match models.entry(model.clone()).or_insert_with(|| {
                    model_ids.push(model.clone());
                    ModelEntry::Remote(Vec::new())
                }) {
                    ModelEntry::Remote(list) => list.push(index),
                    // Peer-only models are added below, after every local one.
                    ModelEntry::Embedded(_) | ModelEntry::Peers => {
                        anyhow::bail!("model '{model}' is both embedded and remote")
                    }
                }
            }
        }
        if config.federation.is_some() {
            for model in config.peer_sites().flat_map(|(site, _)| &site.models) {
                if !models.contains_key(model) {
                    model_ids.push(model.clone());
                    models.insert(model.clone(), ModelEntry::Peers);
                }
            }
        }
        let security = Security::new(config, &model_ids)?;
        let facility = config.facility.as_ref().map(Facility::watch).transpose()?;
        let placement = Placement::new(config, security.labels())?;
        let federation = match &placement {
            Some(placement) => Federation::new(config, placement.topology())?,
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let admission = Admission::new(config);
        let library = Library::load(config, security.labels(), trail.as_ref())?;
        let console = Console::new(
            config.console.enabled,
            config.console.notice.clone(),
            security.labels(),
            &config.console.banners,
        )?;
        Ok(Self {
            settings: Settings::new(config),
            models,
            model_ids,
            backends,
            admission,
            connections: Arc::new(ClientConnections::new(config.server.max_connections_per_client)),
            metrics,
            security,
            trail,
            facility,
            placement,
            federation,
            library,
            console,
        })
    }

    /// The configured name of a model, for metric labels (`unknown` otherwise).
    pub fn metric_model<'a>(&'a self, requested: &'a str) -> &'a str {
        if self.models.contains_key(requested) { requested } else { "unknown" }
    }

    /// Reasons the site cannot serve every model; empty when ready.
    pub fn readiness_problems(&self) -> Vec<String> {
        let security = self.security.identification.problem();
        let audit = self.trail.as_ref().and_then(Trail::problem);
        let facility = self.draining().map(|reason| format!("facility: draining ({reason})"));
        self.model_ids
            .iter()
            .filter_map(|id| match &self.models[id] {
                ModelEntry::Embedded(_) | ModelEntry::Peers => None,
                ModelEntry::Remote(list) => (!list.iter().any(|&i| self.backends[i].is_available())).then(|| {
                    let names: Vec<&str> = list.iter().map(|&i| self.backends[i].name.as_str()).collect();
                    format!("model '{id}': no reachable backend ({})", names.join(", "))
                }),
            })
            .chain(security)
            .chain(audit)
            .chain(facility)
            .collect()
    }

    /// Why the site takes no new inference requests, while its facility is degraded.
    pub fn draining(&self) -> Option<String> {
        self.facility.as_ref().and_then(|f| f.draining())
    }
}

/// One worker's view: the shared state and its own upstream clients.
#[derive(Clone)]
pub struct Worker {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// One client per backend, in [`Shared::backends`] order.
    pub clients: Arc<Vec<UpstreamClient>>,
    /// One client per peer site, in [`Federation::backends`] order.
    pub peer_clients: Arc<Vec<UpstreamClient>>,
    /// Retrievals this worker may run at once (embedding and ranking are CPU work).
    pub retrievals: Arc<tokio::sync::Semaphore>,
}

/// Retrievals one worker runs at once; more are refused with 429 and `Retry-After`.
pub const RETRIEVALS_PER_WORKER: usize = 4;

impl Worker {
    /// A worker's state; call on the worker's own runtime thread.
    pub fn new(shared: Arc<Shared>) -> Self {
        let clients = Arc::new(shared.backends.iter().map(Backend::client).collect());
        let peers = shared.federation.as_ref().map(Federation::backends).unwrap_or_default();
        let peer_clients = Arc::new(peers.iter().map(Backend::client).collect());
        let retrievals = Arc::new(tokio::sync::Semaphore::new(RETRIEVALS_PER_WORKER));
        Self { shared, clients, peer_clients, retrievals }
    }
}
