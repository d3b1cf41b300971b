//! Upstream backends: their addresses, limits, health and HTTP clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_config::{BackendConfig, FederationConfig, SiteConfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::breaker::Breaker;
use crate::request::Route;

/// The HTTP client used for one backend.
pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One upstream server and its live state.
pub struct Backend {
    /// Configured name.
    pub name: String,
    /// Its settings.
    pub config: BackendConfig,
    /// `Authorization` header value, when an API key file is configured.
    pub authorization: Option<HeaderValue>,
    /// Its circuit breaker and latency estimate.
    pub breaker: Breaker,
    /// Full URIs of each forwarded route.
    uris: Vec<Uri>,
    /// What the health probe asks for.
    probe: Uri,
    healthy: AtomicBool,
    slots: Arc<Semaphore>,
    tls: rustls::ClientConfig,
}

impl Backend {
    /// Prepares a backend from its configuration (reads key and TLS files).
    pub fn new(config: BackendConfig) -> anyhow::Result<Self> {
        let tls = crate::tls::upstream_client_config(&config)?;
        Self::with_tls(config, tls)
    }

    fn with_tls(config: BackendConfig, tls: rustls::ClientConfig) -> anyhow::Result<Self> {
        let base = config.url.trim_end_matches('/');
        let uris = Route::FORWARDED
            .iter()
            .map(|route| format!("{base}{}", route.upstream_path()).parse::<Uri>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!("backend '{}': url '{}' cannot be extended with API paths", config.name, config.url)
            })?;
        let authorization = match &config.api_key_file {
            Some(path) => {
                let key = std::fs::read_to_string(path).with_context(|| {
                    format!("backend '{}': cannot read api_key_file '{}'", config.name, path.display())
                })?;
                let value = HeaderValue::from_str(&format!("Bearer {}", key.trim())).with_context(|| {
                    format!("backend '{}': api_key_file holds characters not allowed in a header", config.name)
                })?;
                Some(value)
            }
            None => None,
        };
        let probe = uris[Route::Models.forwarded_index()].clone();
        Ok(Self {
            probe,
            name: config.name.clone(),
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            healthy: AtomicBool::new(false),
            breaker: Breaker::default(),
            authorization,
            uris,
            tls,
            config,
        })
    }

    /// A peer site's Rampart as an upstream: its API under `/v1`, reached with
    /// this site's certificate, trusted through the federation CA when its
    /// certificate is that very site's (its `subject`), and probed
    /// at `/healthz` (which records nothing in the peer's audit log).
    pub fn peer(site: &SiteConfig, address: &str, federation: &FederationConfig) -> anyhow::Result<Self> {
        let base = address.trim_end_matches('/');
        let config = BackendConfig {
            name: site.id.clone(),
            url: format!("{base}/v1"),
            models: site.models.clone(),
            connect_timeout_ms: rampart_config::defaults::connect_timeout_ms(),
            first_byte_timeout_ms: rampart_config::defaults::first_byte_timeout_ms(),
            max_concurrent: rampart_config::defaults::max_concurrent(),
            api_key_file: None,
            // Peers have their own TLS settings, below.
            tls: None,
            accreditation: None,
            owner: None,
        };
        let tls =
            crate::tls::peer_client_config(federation, site).with_context(|| format!("peer site '{}'", site.id))?;
        let mut peer = Self::with_tls(config, tls).with_context(|| format!("peer site '{}'", site.id))?;
        peer.probe = format!("{base}/healthz")
            .parse()
            .with_context(|| format!("peer site '{}': address '{address}'", site.id))?;
        Ok(peer)
    }

    /// The URI the health probe asks for.
    pub fn probe_uri(&self) -> &Uri {
        &self.probe
    }

    /// The URI a route is forwarded to.
    pub fn uri(&self, route: Route) -> &Uri {
        &self.uris[route.forwarded_index()]
    }

    /// A client for this backend, to be created once per worker runtime.
    pub fn client(&self) -> UpstreamClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(self.config.connect_timeout_ms)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(https)
    }

    /// Takes one of the backend's concurrency slots, if one is free.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Requests in flight on this backend.
    pub fn in_flight(&self) -> usize {
        self.config.max_concurrent - self.slots.available_permits()
    }

    /// Whether the last probe or request reached it.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Reachable and its circuit breaker not open.
    pub fn is_available(&self) -> bool {
        self.is_healthy() && !self.breaker.is_open(std::time::Instant::now())
    }

    /// Records whether the backend was reachable; logs changes.
    pub fn set_healthy(&self, healthy: bool, why: &str) {
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            if healthy {
                tracing::info!(backend = %self.name, "backend reachable");
            } else {
                tracing::warn!(backend = %self.name, reason = why, "backend unreachable");
            }
        }
    }

    /// The first-byte timeout.
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.config.first_byte_timeout_ms)
    }
}
