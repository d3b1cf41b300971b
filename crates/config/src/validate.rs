//! Semantic checks that types alone cannot express.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::{Config, ConfigError, EngineKind};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A path to a key, e.g. `backends[1].url`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub(crate) fn key(name: &str) -> Self {
        Self(vec![Segment::Key(name.to_owned())])
    }
    pub(crate) fn then(mut self, name: &str) -> Self {
        self.0.push(Segment::Key(name.to_owned()));
        self
    }
    pub(crate) fn index(mut self, i: usize) -> Self {
        self.0.push(Segment::Index(i));
        self
    }
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if n == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Whether `code` looks like an ISO 3166 alpha-3 code (three capital letters).
pub fn is_alpha3(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

pub(crate) fn fail(path: KeyPath, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::at(path, message.into()))
}

/// Refuses `code` at `path` unless it is an ISO 3166 alpha-3 code.
pub(crate) fn check_alpha3(path: KeyPath, code: &str) -> Result<(), ConfigError> {
    if is_alpha3(code) {
        return Ok(());
    }
    fail(path, format!("'{code}' is not an ISO 3166 alpha-3 code such as \"GBR\""))
}

impl Config {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_backends()?;
        self.validate_models()?;
        self.validate_owners()?;
        self.validate_identity()?;
        self.validate_sites()?;
        self.validate_weights()?;
        self.validate_console()?;
        self.validate_audit()
    }

    fn validate_audit(&self) -> Result<(), ConfigError> {
        if self.audit.is_none() && !self.server.insecure_dev {
            return fail(
                KeyPath::key("server").then("listen"),
                "no [audit] section: every decision must be recorded (set audit.dir and audit.signing_key; \
                 `rampart audit keygen` makes a key); only an insecure_dev loopback site may run without one",
            );
        }
        Ok(())
    }

    fn validate_owners(&self) -> Result<(), ConfigError> {
        let owners = self.models.iter().enumerate().map(|(i, m)| (KeyPath::key("models").index(i), &m.owner));
        let backends = self.backends.iter().enumerate().map(|(i, b)| (KeyPath::key("backends").index(i), &b.owner));
        for (at, owner) in owners.chain(backends) {
            if let Some(owner) = owner {
                check_alpha3(at.then("owner"), owner)?;
            }
        }
        Ok(())
    }

    fn validate_identity(&self) -> Result<(), ConfigError> {
        let Some(identity) = &self.identity else {
            if !self.server.insecure_dev {
                return fail(
                    KeyPath::key("server").then("listen"),
                    "no [identity] section: every caller must be identified (configure jwks and/or client_ca); \
                     only an insecure_dev loopback site may run without one",
                );
            }
            return Ok(());
        };
        let at = |k: &str| KeyPath::key("identity").then(k);
        if identity.jwks.is_none() && identity.client_ca.is_empty() {
            return fail(at("jwks"), "configure jwks (bearer tokens), client_ca (mutual TLS), or both");
        }
        if identity.jwks.is_some() {
            for key in ["issuer", "audience"] {
                let value = if key == "issuer" { &identity.issuer } else { &identity.audience };
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return fail(at(key), format!("bearer tokens need a required {key}"));
                }
            }
        }
        if !identity.client_ca.is_empty() {
            if self.server.tls.is_none() {
                return fail(at("client_ca"), "mutual TLS needs [server.tls]");
            }
            if identity.directory.is_none() {
                return fail(
                    at("directory"),
                    "certificate callers need a directory that gives their clearance and roles",
                );
            }
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        let at = |k: &str| KeyPath::key("server").then(k);
        if server.tls.is_none() {
            if !server.insecure_dev {
                return fail(
                    at("listen"),
                    "HTTPS needs [server.tls] with cert and key; plain HTTP is allowed only with insecure_dev = true on a loopback address",
                );
            }
            if !server.listen.ip().is_loopback() {
                return fail(
                    at("insecure_dev"),
                    format!(
                        "plain HTTP is allowed only on a loopback address (127.0.0.1 or ::1), not {}; configure [server.tls] to listen there",
                        server.listen.ip()
                    ),
                );
            }
        }
        if server.max_body_bytes < 1024 {
            return fail(at("max_body_bytes"), "must be at least 1024 bytes");
        }
        for (key, value) in [
            ("header_read_timeout_secs", server.header_read_timeout_secs),
            ("body_read_timeout_secs", server.body_read_timeout_secs),
            ("idle_timeout_secs", server.idle_timeout_secs),
            ("max_connections_per_client", server.max_connections_per_client as u64),
            ("max_bodies_in_flight", server.max_bodies_in_flight as u64),
        ] {
            if value == 0 {
                return fail(at(key), "must be at least 1");
            }
        }
        if server.workers > 256 {
            return fail(at("workers"), "must be 0 (one per core) to 256");
        }
        if self.logging.level.trim().is_empty() {
            return fail(
                KeyPath::key("logging").then("level"),
                "must be a filter such as \"info\" or \"rampart_gateway=debug\"",
            );
        }
        Ok(())
    }

    fn validate_backends(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, backend) in self.backends.iter().enumerate() {
            let at = |k: &str| KeyPath::key("backends").index(i).then(k);
            if backend.name.trim().is_empty() {
                return fail(at("name"), "must not be empty");
            }
            if !names.insert(backend.name.as_str()) {
                return fail(at("name"), format!("'{}' names two backends; names must be unique", backend.name));
            }
            let uri: http::Uri = backend
                .url
                .parse()
                .map_err(|err| ConfigError::at(at("url"), format!("'{}' is not a URL: {err}", backend.url)))?;
            match uri.scheme_str() {
                Some("http") if backend.tls.is_some() => {
                    return fail(at("tls"), "TLS settings need an https:// url");
                }
                Some("http" | "https") => {}
                _ => return fail(at("url"), format!("'{}' must start with http:// or https://", backend.url)),
            }
            if uri.host().is_none() {
                return fail(at("url"), format!("'{}' has no host", backend.url));
            }
            if backend.models.is_empty() {
                return fail(at("models"), "list at least one model id this backend serves");
            }
            if let Some(j) = backend.models.iter().position(|m| m.trim().is_empty()) {
                return fail(at("models").index(j), "model ids must not be empty");
            }
            for (key, value) in [
                ("connect_timeout_ms", backend.connect_timeout_ms),
                ("first_byte_timeout_ms", backend.first_byte_timeout_ms),
            ] {
                if value == 0 {
                    return fail(at(key), "must be at least 1 millisecond");
                }
            }
            if backend.max_concurrent == 0 {
                return fail(at("max_concurrent"), "must be at least 1");
            }
            if let Some(tls) = &backend.tls
                && tls.client_cert.is_some() != tls.client_key.is_some()
            {
                return fail(at("tls"), "client_cert and client_key go together: set both or neither");
            }
        }
        Ok(())
    }

    fn validate_models(&self) -> Result<(), ConfigError> {
        let served: HashMap<&str, &str> =
            self.backends.iter().flat_map(|b| b.models.iter().map(move |m| (m.as_str(), b.name.as_str()))).collect();
        let mut names = HashSet::new();
        for (i, model) in self.models.iter().enumerate() {
            let at = |k: &str| KeyPath::key("models").index(i).then(k);
            if model.name.trim().is_empty() {
                return fail(at("name"), "must not be empty");
            }
            if !names.insert(model.name.as_str()) {
                return fail(at("name"), format!("'{}' names two models; names must be unique", model.name));
            }
            match model.engine {
                EngineKind::Remote => {
                    let at_peer = self.sites.iter().any(|site| site.models.contains(&model.name));
                    if !served.contains_key(model.name.as_str()) && !at_peer {
                        return fail(
                            at("name"),
                            format!("remote model '{}' is listed by no [[backends]] or [[sites]] entry", model.name),
                        );
                    }
                    if model.path.is_some() {
                        return fail(at("path"), "only embedded models have a path");
                    }
                }
                EngineKind::Embedded => {
                    if let Some(backend) = served.get(model.name.as_str()) {
                        return fail(
                            at("name"),
                            format!("'{}' is embedded and also served by backend '{backend}'; rename one", model.name),
                        );
                    }
                    match (&model.path, &model.sealed) {
                        (None, None) => {
                            return fail(at("path"), "an embedded model needs the path of its GGUF file (or sealed)");
                        }
                        (Some(_), Some(_)) => {
                            return fail(
                                at("sealed"),
                                "give path (a plain GGUF file) or sealed (a sealed directory), not both",
                            );
                        }
                        _ => {}
                    }
                    self.validate_engine_sizes(i)?;
                }
            }
        }
        Ok(())
    }

    fn validate_engine_sizes(&self, i: usize) -> Result<(), ConfigError> {
        let model = &self.models[i];
        let at = |k: &str| KeyPath::key("models").index(i).then(k);
        if !(1..=256).contains(&model.parallel) {
            return fail(at("parallel"), format!("{} is out of range; allowed is 1 to 256", model.parallel));
        }
        if !(128..=1_048_576).contains(&model.context) {
            return fail(at("context"), format!("{} is out of range; allowed is 128 to 1048576 tokens", model.context));
        }
        if model.threads > 1024 {
            return fail(at("threads"), "must be 0 (one per core) to 1024");
        }
        if !(32..=65_536).contains(&model.batch) {
            return fail(at("batch"), format!("{} is out of range; allowed is 32 to 65536", model.batch));
        }
        if model.queue == 0 {
            return fail(at("queue"), "must be at least 1");
        }
        if let Some(max) = model.max_tokens
            && (max == 0 || max > model.context)
        {
            return fail(at("max_tokens"), format!("must be 1 to the context length ({})", model.context));
        }
        Ok(())
    }
}
