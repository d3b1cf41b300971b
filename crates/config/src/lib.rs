//! Rampart's configuration: the TOML schema, its documented defaults, and
//! validation that stops start-up with a message naming the key, its line and
//! what is allowed.
//!
//! Every table rejects unknown keys, so a misspelt key is an error rather than
//! a silently ignored setting. Relative paths are resolved against the
//! directory of the configuration file.

mod console;
mod error;
mod locate;
mod sites;
mod validate;
mod weights;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use console::ConsoleConfig;
pub use error::ConfigError;
pub use sites::{
    BUILTIN_GROUPS, FacilityConfig, FederationConfig, PlacementClause, PlacementRule, ResidencyRule, SiteConfig,
    SiteSelf, key_pinned,
};
pub use validate::is_alpha3;
pub use weights::{REQUIRED_FROM_LEVEL, Requirement, WeightsConfig};

/// The whole configuration of one Rampart process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The listening server.
    pub server: ServerConfig,
    /// Log output.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Behaviour towards upstream backends.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// OpenAI-compatible upstream servers.
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    /// Models served by the embedded engine, or declared for remote backends.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// How callers are identified; absent only on an `insecure_dev` loopback site.
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// Security policies (SPIF files) and the default label.
    #[serde(default)]
    pub labels: LabelsConfig,
    /// Operator Cedar policy files.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The tamper-evident audit log; absent only on an `insecure_dev` loopback site.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// Which of `sites` this process is.
    #[serde(default)]
    pub site: Option<SiteSelf>,
    /// The sites that may serve requests, this one and its peers.
    #[serde(default)]
    pub sites: Vec<SiteConfig>,
    /// Nations' residency rules.
    #[serde(default)]
    pub residency: Vec<ResidencyRule>,
    /// Model owners' placement rules.
    #[serde(default)]
    pub placement: Vec<PlacementRule>,
    /// Named groups of jurisdictions, beside the built-in `EU` and `NATO`.
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    /// This site's facility signals; absent: the site never drains for its facility.
    #[serde(default)]
    pub facility: Option<FacilityConfig>,
    /// How this site forwards to its peers; required when `[[sites]]` lists peers.
    #[serde(default)]
    pub federation: Option<FederationConfig>,
    /// Signed and sealed weights: the site's KEK and what embedded models must be.
    #[serde(default)]
    pub weights: WeightsConfig,
    /// Where labelled report collections are kept.
    #[serde(default)]
    pub collections: CollectionsConfig,
    /// The web console.
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// `[collections]`: labelled report collections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionsConfig {
    /// The directory collections are kept in (created when first written);
    /// default `data/collections`, beside the configuration file.
    #[serde(default = "defaults::collections_dir")]
    pub dir: PathBuf,
    /// The embedding model's directory (`rampart model fetch-embedding`);
    /// default `models/all-MiniLM-L6-v2`, beside the configuration file.
    #[serde(default = "defaults::embedding_model")]
    pub embedding_model: PathBuf,
    /// Whether portions are embedded at ingest for dense retrieval (default
    /// true); without, retrieval is by BM25 alone.
    #[serde(default = "defaults::yes")]
    pub embeddings: bool,
    /// The largest file `collection ingest` reads, in bytes (default 64 MiB).
    #[serde(default = "defaults::max_file_bytes")]
    pub max_file_bytes: u64,
    /// The longest portion (or title) accepted at ingest, in characters
    /// (default 20,000: several pages of one paragraph).
    #[serde(default = "defaults::max_portion_chars")]
    pub max_portion_chars: usize,
}

impl Default for CollectionsConfig {
    fn default() -> Self {
        Self {
            dir: defaults::collections_dir(),
            embedding_model: defaults::embedding_model(),
            embeddings: true,
            max_file_bytes: defaults::max_file_bytes(),
            max_portion_chars: defaults::max_portion_chars(),
        }
    }
}

/// `[audit]`: where the audit log lives and the key that signs its checkpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The log directory (C2SP tlog-tiles layout); created if missing.
    pub dir: PathBuf,
    /// The Ed25519 signing key (C2SP signed-note private key, `rampart audit keygen`).
    pub signing_key: PathBuf,
}

/// `[identity]`: how callers prove who they are. Both ways may be configured;
/// a request must pass one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// JWKS file with the token issuer's public keys (never fetched).
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Required `iss` of bearer tokens.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Required `aud` of bearer tokens.
    #[serde(default)]
    pub audience: Option<String>,
    /// CA bundles (PEM) that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
    /// CRL files (PEM or DER) for client certificates.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// Directory of certificate subjects: clearance, roles and nation; reloaded when it changes.
    #[serde(default)]
    pub directory: Option<PathBuf>,
}

/// `[labels]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsConfig {
    /// SPIF files; the first is the default policy. Empty: the shipped NATO SPIF.
    #[serde(default)]
    pub spif: Vec<PathBuf>,
    /// The label of requests that declare none.
    #[serde(default = "defaults::default_label")]
    pub default_label: String,
    /// The permissive category that names nations; a caller's clearance is narrowed to its own nation in it.
    #[serde(default = "defaults::releasability_tag")]
    pub releasability_tag: String,
}

impl Default for LabelsConfig {
    fn default() -> Self {
        Self {
            spif: Vec::new(),
            default_label: defaults::default_label(),
            releasability_tag: defaults::releasability_tag(),
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Operator Cedar policy files, added to the built-in policies.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// `[server]`: where and how Rampart listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Serve plain HTTP; allowed only on a loopback address.
    #[serde(default)]
    pub insecure_dev: bool,
    /// HTTPS certificate and key; required unless `insecure_dev` is set.
    #[serde(default)]
    pub tls: Option<ServerTls>,
    /// Request-serving threads; 0 means one per CPU core.
    #[serde(default)]
    pub workers: usize,
    /// Largest accepted request body, in bytes.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Seconds a client has to send a request's headers, from when the
    /// connection is ready for them.
    #[serde(default = "defaults::header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body, once its reading starts.
    #[serde(default = "defaults::body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// Seconds a connection with no request in flight may stay silent before it is closed.
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Connections one client address may hold open at once; more are closed as they arrive.
    #[serde(default = "defaults::max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Requests whose bodies are read and understood (parsed, their labels
    /// read) at once; more wait their turn, up to `body_read_timeout_secs`.
    #[serde(default = "defaults::max_bodies_in_flight")]
    pub max_bodies_in_flight: usize,
}

/// `[server.tls]`: the server's certificate chain and private key (PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[logging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `human` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `rampart_gateway=debug`; `RUST_LOG` overrides it.
    #[serde(default = "defaults::log_level")]
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { format: LogFormat::default(), level: defaults::log_level() }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[proxy]`: retries and health checks for upstream backends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Further backends tried when one fails before its first byte.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// Milliseconds between health probes of each backend.
    #[serde(default = "defaults::health_interval_ms")]
    pub health_interval_ms: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self { retries: defaults::retries(), health_interval_ms: defaults::health_interval_ms() }
    }
}

/// `[[backends]]`: one OpenAI-compatible upstream server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Base URL of the OpenAI API, e.g. `http://127.0.0.1:8000/v1`.
    pub url: String,
    /// Model ids this backend serves.
    pub models: Vec<String>,
    /// Milliseconds to establish a connection.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds to wait for the response headers (queueing and prompt time included).
    #[serde(default = "defaults::first_byte_timeout_ms")]
    pub first_byte_timeout_ms: u64,
    /// Requests in flight at once; further requests try another backend or get 503.
    #[serde(default = "defaults::max_concurrent")]
    pub max_concurrent: usize,
    /// File holding a bearer token sent to the backend.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// TLS settings for an `https://` backend.
    #[serde(default)]
    pub tls: Option<BackendTls>,
    /// The highest label this backend may process; default: `labels.default_label`.
    #[serde(default)]
    pub accreditation: Option<String>,
    /// The nation that operates the backend (ISO 3166 alpha-3).
    #[serde(default)]
    pub owner: Option<String>,
}

/// `[backends.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    /// CA bundle (PEM) that the backend's certificate must chain to; default: none trusted.
    pub ca: PathBuf,
    /// Client certificate chain (PEM) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// Which engine serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// In-process llama.cpp.
    Embedded,
    /// The `[[backends]]` that list the model.
    Remote,
}

/// `[[models]]`: a model this site serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model id clients ask for.
    pub name: String,
    /// `embedded` or `remote`.
    pub engine: EngineKind,
    /// GGUF file of an embedded model.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Instead of `path`: a sealed model directory (`rampart model seal`) holding one GGUF file.
    #[serde(default)]
    pub sealed: Option<PathBuf>,
    /// The owner's signature of the model directory (OpenSSF model signing); a plain model's
    /// directory is the one holding `path`.
    #[serde(default)]
    pub signature: Option<PathBuf>,
    /// The owner's public keys (PEM); the signature must verify with one of them.
    #[serde(default)]
    pub owner_keys: Vec<PathBuf>,
    /// Context length per sequence, in tokens.
    #[serde(default = "defaults::context")]
    pub context: u32,
    /// CPU threads for decoding; 0 means one per core.
    #[serde(default)]
    pub threads: usize,
    /// Sequences decoded together in one batch.
    #[serde(default = "defaults::parallel")]
    pub parallel: u32,
    /// Requests that may wait for a free sequence; beyond it, 429.
    #[serde(default = "defaults::queue")]
    pub queue: usize,
    /// Most tokens submitted to llama.cpp in one decode step.
    #[serde(default = "defaults::batch")]
    pub batch: u32,
    /// Default `max_tokens` when a request sets none (bounded by the context).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The highest label this model may process (a marking or JSON label); default: `labels.default_label`.
    #[serde(default)]
    pub accreditation: Option<String>,
    /// The nation that owns the model (ISO 3166 alpha-3).
    #[serde(default)]
    pub owner: Option<String>,
}

/// Documented defaults, one function per key so serde and docs agree.
pub mod defaults {
    /// `server.max_body_bytes`: 8 MiB.
    pub fn max_body_bytes() -> usize {
        8 * 1024 * 1024
    }
    /// `server.shutdown_grace_secs`.
    pub fn shutdown_grace_secs() -> u64 {
        30
    }
    /// `server.header_read_timeout_secs`.
    pub fn header_read_timeout_secs() -> u64 {
        10
    }
    /// `server.body_read_timeout_secs`.
    pub fn body_read_timeout_secs() -> u64 {
        30
    }
    /// `server.idle_timeout_secs`.
    pub fn idle_timeout_secs() -> u64 {
        60
    }
    /// `server.max_connections_per_client`.
    pub fn max_connections_per_client() -> usize {
        256
    }
    /// `server.max_bodies_in_flight`.
    pub fn max_bodies_in_flight() -> usize {
        8
    }
    /// `logging.level`.
    pub fn log_level() -> String {
        "info".to_owned()
    }
    /// `proxy.retries`.
    pub fn retries() -> u32 {
        2
    }
    /// `proxy.health_interval_ms`.
    pub fn health_interval_ms() -> u64 {
        5_000
    }
    /// `backends.connect_timeout_ms`.
    pub fn connect_timeout_ms() -> u64 {
        2_000
    }
    /// `backends.first_byte_timeout_ms`: 5 minutes.
    pub fn first_byte_timeout_ms() -> u64 {
        300_000
    }
    /// `backends.max_concurrent`.
    pub fn max_concurrent() -> usize {
        256
    }
    /// `models.context`.
    pub fn context() -> u32 {
        4_096
    }
    /// `models.parallel`.
    pub fn parallel() -> u32 {
        4
    }
    /// `models.queue`.
    pub fn queue() -> usize {
        64
    }
    /// `collections.embedding_model`.
    pub fn embedding_model() -> std::path::PathBuf {
        std::path::PathBuf::from("models/all-MiniLM-L6-v2")
    }

    /// `true`.
    pub fn yes() -> bool {
        true
    }

    /// `collections.max_file_bytes`.
    pub fn max_file_bytes() -> u64 {
        64 * 1024 * 1024
    }

    /// `collections.max_portion_chars`.
    pub fn max_portion_chars() -> usize {
        20_000
    }

    /// `collections.dir`.
    pub fn collections_dir() -> std::path::PathBuf {
        std::path::PathBuf::from("data/collections")
    }

    /// `labels.default_label`.
    pub fn default_label() -> String {
        "NATO UNCLASSIFIED".to_owned()
    }
    /// `labels.releasability_tag`.
    pub fn releasability_tag() -> String {
        "Releasable To".to_owned()
    }
    /// `models.batch`.
    pub fn batch() -> u32 {
        512
    }
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::io(path, &err))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &base).map_err(|err| err.in_file(path))
    }

    /// Parses and validates configuration text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|err| ConfigError::from_toml(text, &err))?;
        let document =
            toml_edit::Document::parse(text.to_owned()).map_err(|err| ConfigError::plain(err.to_string()))?;
        config.validate().map_err(|err| err.locate(&document, text))?;
        config.resolve_paths(base);
        Ok(config)
    }

    /// Checks that the files the configuration names exist and are readable.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for (key, path) in self.files() {
            std::fs::File::open(&path)
                .map_err(|err| ConfigError::at(key, format!("cannot read '{}': {err}", path.display())))?;
        }
        Ok(())
    }

    /// The embedded model entries.
    pub fn embedded_models(&self) -> impl Iterator<Item = &ModelConfig> {
        self.models.iter().filter(|m| m.engine == EngineKind::Embedded)
    }

    fn files(&self) -> Vec<(validate::KeyPath, PathBuf)> {
        use validate::KeyPath;
        let mut files = Vec::new();
        if let Some(tls) = &self.server.tls {
            files.push((KeyPath::key("server").then("tls").then("cert"), tls.cert.clone()));
            files.push((KeyPath::key("server").then("tls").then("key"), tls.key.clone()));
        }
        for (i, backend) in self.backends.iter().enumerate() {
            let at = || KeyPath::key("backends").index(i);
            if let Some(f) = &backend.api_key_file {
                files.push((at().then("api_key_file"), f.clone()));
            }
            if let Some(tls) = &backend.tls {
                files.push((at().then("tls").then("ca"), tls.ca.clone()));
                for (name, f) in [("client_cert", &tls.client_cert), ("client_key", &tls.client_key)] {
                    if let Some(f) = f {
                        files.push((at().then("tls").then(name), f.clone()));
                    }
                }
            }
        }
        for (i, model) in self.models.iter().enumerate() {
            let at = |k: &str| KeyPath::key("models").index(i).then(k);
            files.extend(model.path.iter().map(|p| (at("path"), p.clone())));
            files.extend(model.sealed.iter().map(|p| (at("sealed"), p.join("seal.json"))));
            files.extend(model.signature.iter().map(|p| (at("signature"), p.clone())));
            files.extend(model.owner_keys.iter().enumerate().map(|(k, p)| (at("owner_keys").index(k), p.clone())));
        }
        let kek_file = self.weights.kek.iter().filter(|p| !weights::is_pkcs11(p));
        files.extend(kek_file.map(|p| (KeyPath::key("weights").then("kek"), p.clone())));
        if let Some(identity) = &self.identity {
            let at = |k: &str| KeyPath::key("identity").then(k);
            files.extend(identity.jwks.iter().map(|f| (at("jwks"), f.clone())));
            files.extend(identity.directory.iter().map(|f| (at("directory"), f.clone())));
            files.extend(identity.client_ca.iter().enumerate().map(|(i, f)| (at("client_ca").index(i), f.clone())));
            files.extend(identity.crl.iter().enumerate().map(|(i, f)| (at("crl").index(i), f.clone())));
        }
        if let Some(audit) = &self.audit {
            files.push((KeyPath::key("audit").then("signing_key"), audit.signing_key.clone()));
        }
        if let Some(federation) = &self.federation {
            let at = |k: &str| KeyPath::key("federation").then(k);
            files.push((at("cert"), federation.cert.clone()));
            files.push((at("key"), federation.key.clone()));
            files.push((at("ca"), federation.ca.clone()));
        }
        files.extend(
            self.labels.spif.iter().enumerate().map(|(i, f)| (KeyPath::key("labels").then("spif").index(i), f.clone())),
        );
        files.extend(
            self.policy
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| (KeyPath::key("policy").then("files").index(i), f.clone())),
        );
        files
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(tls) = &mut self.server.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
        for backend in &mut self.backends {
            if let Some(f) = &mut backend.api_key_file {
                fix(f);
            }
            if let Some(tls) = &mut backend.tls {
                fix(&mut tls.ca);
                tls.client_cert.iter_mut().chain(tls.client_key.iter_mut()).for_each(fix);
            }
        }
        for model in &mut self.models {
            model.path.iter_mut().chain(model.sealed.iter_mut()).chain(model.signature.iter_mut()).for_each(fix);
            model.owner_keys.iter_mut().for_each(fix);
        }
        self.weights.kek.iter_mut().filter(|p| !weights::is_pkcs11(p)).for_each(fix);
        if let Some(identity) = &mut self.identity {
            identity.jwks.iter_mut().chain(identity.directory.iter_mut()).for_each(fix);
            identity.client_ca.iter_mut().chain(identity.crl.iter_mut()).for_each(fix);
        }
        self.labels.spif.iter_mut().chain(self.policy.files.iter_mut()).for_each(fix);
        if let Some(audit) = &mut self.audit {
            fix(&mut audit.dir);
            fix(&mut audit.signing_key);
        }
        if let Some(facility) = &mut self.facility {
            fix(&mut facility.status_file);
        }
        fix(&mut self.collections.dir);
        fix(&mut self.collections.embedding_model);
        if let Some(federation) = &mut self.federation {
            fix(&mut federation.cert);
            fix(&mut federation.key);
            fix(&mut federation.ca);
        }
    }
}
