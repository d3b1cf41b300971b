//! The audit trail of the request path: every decision and outcome becomes an
//! entry of the tamper-evident log before its answer is released.
//!
//! A whole answer is held until its entry is durable. A stream is started only
//! once its start entry is durable, and its closing `data: [DONE]` event is
//! held until its end entry is. When the log cannot be written the request is
//! refused with `503 audit_unavailable`: nothing reaches a client that is not
//! in the log.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rampart_api::ApiError;
use rampart_audit::digest::RequestDigester;
use rampart_audit::entry::{self, Caller, Entry, Phase};
use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::recorder::{Recorder, Unavailable};
use rampart_audit::storage::{FsStorage, Storage};
use rampart_config::AuditConfig;
use rampart_identity::Principal;
use rampart_policy::Decision;

use crate::answer::{AnswerUsage, ServedBy, StreamCut, Tokens};
use crate::error::ErrorResponse;
use crate::labelled_stream::LABEL_HEADER;

mod audited_stream;
use audited_stream::AuditedStream;

/// How often a log that cannot be written is tried again while no request comes.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The site's audit log, open for appending, on any audit [`Storage`].
pub struct Trail {
    recorder: Recorder,
    /// Digests request bodies under the site's key.
    digester: RequestDigester,
    /// Where the published log is read from, for auditors.
    storage: Arc<dyn Storage>,
    /// The log's verifier key: open partial tiles are checked against the signed checkpoint before they are served.
    vkey: Arc<str>,
}

impl Trail {
    /// Opens (or creates) the log in `config.dir`, signed with `config.signing_key`;
    /// recovers to the last signed checkpoint after a crash.
    pub fn open(config: &AuditConfig) -> anyhow::Result<Self> {
        let skey = keys::read_signing_key(&config.signing_key)
            .with_context(|| format!("audit.signing_key '{}'", config.signing_key.display()))?;
        let storage = FsStorage::new(&config.dir)
            .with_context(|| format!("audit.dir '{}' cannot be created", config.dir.display()))?;
        let log = Log::open(storage, skey).with_context(|| format!("audit log '{}'", config.dir.display()))?;
        tracing::info!(dir = %config.dir.display(), entries = log.size(), "audit log open");
        Self::start(log)
    }

    /// Starts recording into `log`, whatever its storage.
    pub fn start<S: Storage + 'static>(log: Log<S>) -> anyhow::Result<Self> {
        let storage: Arc<dyn Storage> = log.shared_storage();
        let digester = log.request_digester();
        let vkey = Arc::from(log.verifier_key());
        let recorder = Recorder::start_probing(log, PROBE_INTERVAL, resumed_entry)?;
        Ok(Self { recorder, digester, storage, vkey })
    }

    /// The keyed digest of a request body, for its entry (see [`rampart_audit::digest`]).
    pub fn request_digest(&self, body: &[u8]) -> String {
        self.digester.digest_hex(body)
    }

    /// Records an entry from outside any runtime (start-up) and waits until it is durable.
    pub fn record_blocking(&self, entry: Vec<u8>) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(self.recorder.record(entry)).map_err(|e| anyhow::anyhow!("the audit log: {e}"))?;
        Ok(())
    }

    /// A file of the published log (a tlog-tiles path) as a reader may have it
    /// (see [`rampart_audit::serve`]), `None` when there is none.
    pub async fn read_published(&self, path: &str) -> Result<Option<Vec<u8>>, rampart_audit::serve::ServeError> {
        let (storage, vkey, path) = (Arc::clone(&self.storage), Arc::clone(&self.vkey), path.to_owned());
        let read = tokio::task::spawn_blocking(move || rampart_audit::serve::read_served(&*storage, &vkey, &path));
        read.await.map_err(|e| rampart_audit::serve::ServeError::Io {
            path: String::new(),
            source: std::io::Error::other(e),
        })?
    }

    /// Publishes everything recorded, so the log on disk is whole when the site
    /// stops (what is not published is in the journal, published at the next start).
    pub fn finish(&self) {
        match self.recorder.publish_blocking() {
            Ok(size) => tracing::info!(entries = size, "audit log published"),
            Err(err) => tracing::warn!(error = %err, "audit log left for the next start to publish"),
        }
    }

    /// Why the log cannot be written right now, if it cannot.
    pub fn problem(&self) -> Option<String> {
        self.recorder.problem().map(|reason| format!("audit log: {reason}"))
    }
}

/// The entry a probe appends when the log can be written again: it marks the end of an outage.
fn resumed_entry() -> Vec<u8> {
    let draft = Draft::new(String::new(), "audit_resumed");
    Entry { allowed: true, ..draft.entry(Phase::Complete, 0, Outcome::default()) }.encode()
}

/// What is known of a request so far, for its entry.
#[derive(Clone)]
pub struct Draft {
    started: Instant,
    request_id: String,
    action: &'static str,
    caller: Option<Caller>,
    model: Option<String>,
    request_label: Option<String>,
    allowed: bool,
    policies: Vec<String>,
    request_sha256: Option<String>,
    code: Option<&'static str>,
    forwarded_by: Option<String>,
    retrieved: Option<entry::Retrieved>,
    client_request_id: Option<String>,
}

/// What is known of an answer, for its entry.
#[derive(Default)]
pub struct Outcome {
    /// The code of the error answered, if any.
    pub code: Option<String>,
    /// The backend or engine that served it.
    pub backend: Option<String>,
    /// The answer's label (banner marking).
    pub response_label: Option<String>,
    /// Prompt and completion tokens.
    pub tokens: Option<Tokens>,
    /// SHA-256 (hex) of the bytes sent.
    pub response_sha256: Option<String>,
    /// The peer site that answered, when the request was forwarded.
    pub forwarded_to: Option<String>,
}

impl Draft {
    /// A request that has just arrived.
    pub fn new(request_id: String, action: &'static str) -> Self {
        Self {
            started: Instant::now(),
            request_id,
            action,
            caller: None,
            model: None,
            request_label: None,
            allowed: false,
            policies: Vec::new(),
            request_sha256: None,
            code: None,
            forwarded_by: None,
            retrieved: None,
            client_request_id: None,
        }
    }

    /// The request was forwarded here by the peer site `site`, on its verified assertion.
    pub fn forwarded_by(&mut self, site: &str) {
        self.forwarded_by = Some(site.to_owned());
    }

    /// The caller has been identified.
    pub fn identified(&mut self, principal: &Principal) {
        self.caller = Some(Caller {
            subject: principal.subject.clone(),
            nation: principal.nation.clone(),
            roles: principal.roles.clone(),
        });
    }

    /// The request body has been read: its keyed digest ([`Trail::request_digest`]).
    pub fn request_digest(&mut self, digest: String) {
        self.request_sha256 = Some(digest);
    }

    /// The model asked for.
    pub fn model(&mut self, model: &str) {
        self.model = Some(model.to_owned());
    }

    /// The request's effective label.
    pub fn labelled(&mut self, banner: String) {
        self.request_label = Some(banner);
    }

    /// The policy decision.
    pub fn decided(&mut self, decision: &Decision) {
        self.allowed = decision.allowed();
        self.policies.clone_from(&decision.policies);
    }

    /// The request is allowed without a policy decision of its own (a model
    /// listing: each model in it was decided separately).
    pub fn allowed(&mut self) {
        self.allowed = true;
    }

    /// The request is answered with an error of this code.
    pub fn failed(&mut self, code: Option<&'static str>) {
        self.code = code;
    }

    /// The `x-request-id` the client sent (not the site's id).
    pub fn client_request_id(&mut self, id: &str) {
        self.client_request_id = Some(id.to_owned());
    }

    /// What a retrieval returned (collections, portion ids and labels).
    pub fn retrieved(&mut self, retrieved: entry::Retrieved) {
        self.retrieved = Some(retrieved);
    }

    /// The request's id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The model asked for, once known.
    pub fn model_asked(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The entry for one phase of this request.
    pub fn entry(&self, phase: Phase, status: u16, outcome: Outcome) -> Entry {
        let time_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis();
        Entry {
            v: entry::VERSION,
            time_ms: u64::try_from(time_ms).unwrap_or(u64::MAX),
            request_id: self.request_id.clone(),
            phase,
            caller: self.caller.clone(),
            action: self.action.to_owned(),
            model: self.model.clone(),
            backend: outcome.backend,
            request_label: self.request_label.clone(),
            response_label: outcome.response_label,
            allowed: self.allowed,
            policies: self.policies.clone(),
            code: outcome.code.or_else(|| self.code.map(str::to_owned)),
            status,
            prompt_tokens: outcome.tokens.map(|t| t.prompt),
            completion_tokens: outcome.tokens.map(|t| t.completion),
            duration_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            request_sha256: self.request_sha256.clone(),
            response_sha256: outcome.response_sha256,
            forwarded_to: outcome.forwarded_to,
            forwarded_by: self.forwarded_by.clone(),
            retrieved: self.retrieved.clone(),
            client_request_id: self.client_request_id.clone(),
        }
    }
}

/// The draft of the request being served, shared by its stages (a request
/// extension): each notes what it learns, the audit stage records it.
#[derive(Clone)]
pub struct Notes(Arc<Mutex<Draft>>);

impl Notes {
    /// Notes on a request that has just arrived.
    pub fn new(draft: Draft) -> Self {
        Self(Arc::new(Mutex::new(draft)))
    }

    /// Notes something a stage learned.
    pub fn note(&self, learned: impl FnOnce(&mut Draft)) {
        // A draft is plain data: one left by a panicking stage is still whole.
        learned(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The draft as the stages left it.
    pub fn into_draft(self) -> Draft {
        match Arc::try_unwrap(self.0) {
            Ok(draft) => draft.into_inner().unwrap_or_else(PoisonError::into_inner),
            Err(shared) => shared.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }
}

/// The refusal sent when a request's entry cannot be made durable.
pub fn unavailable(reason: &Unavailable, request_id: &str) -> Response {
    tracing::error!(request_id, error = %reason, "request refused: the audit log cannot be written");
    ErrorResponse(ApiError::audit_unavailable()).into_response()
}

/// Records `response` (an error answered carries its [`ApiError`], whose
/// code goes into the entry) and returns what may be sent: the response
/// itself once its entry is durable, or a 503 when it cannot be recorded.
pub async fn release(trail: Option<&Trail>, mut draft: Draft, response: Response) -> Response {
    if let Some(err) = response.extensions().get::<ApiError>() {
        draft.failed(err.code);
    }
    let Some(trail) = trail else { return response };
    let (mut parts, body) = response.into_parts();
    let (served_by, forwarded_to) = match parts.extensions.remove::<ServedBy>() {
        Some(ServedBy::Here(backend)) => (Some(backend), None),
        Some(ServedBy::Peer(site)) => (None, Some(site)),
        None => (None, None),
    };
    let response_label = parts.headers.get(&LABEL_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let is_stream = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let status = parts.status.as_u16();
    let usage = parts.extensions.remove::<AnswerUsage>().unwrap_or_default();
    let cut = parts.extensions.remove::<StreamCut>().unwrap_or_default();
    if is_stream && parts.status.is_success() {
        let outcome = Outcome {
            backend: served_by.clone(),
            response_label: response_label.clone(),
            forwarded_to: forwarded_to.clone(),
            ..Outcome::default()
        };
        if let Err(err) = trail.recorder.record(draft.entry(Phase::Start, status, outcome).encode()).await {
            return unavailable(&err, &draft.request_id);
        }
        let end = Outcome { backend: served_by, response_label, forwarded_to, ..Outcome::default() };
        let stream = AuditedStream::new(body, trail.recorder.clone(), draft, end, usage, cut);
        return Response::from_parts(parts, Body::new(stream));
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let failure = ApiError::upstream_error(format!("the answer could not be read: {err}"));
            return Box::pin(release(Some(trail), draft, ErrorResponse(failure).into_response())).await;
        }
    };
    let outcome = Outcome {
        code: None,
        backend: served_by,
        response_label,
        tokens: usage.get(),
        response_sha256: Some(entry::sha256_hex(&bytes)),
        forwarded_to,
    };
    match trail.recorder.record(draft.entry(Phase::Complete, status, outcome).encode()).await {
        Ok(_) => Response::from_parts(parts, Body::from(bytes)),
        Err(err) => unavailable(&err, &draft.request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_carries_what_the_draft_learned() {
        let mut draft = Draft::new("req-9".into(), "infer");
        draft.request_digest("ab".repeat(32));
        draft.model("smollm2");
        draft.labelled("NATO SECRET".into());
        draft.decided(&Decision { refusal: None, policies: vec!["rampart/infer".into()] });
        let outcome = Outcome {
            backend: Some("embedded".into()),
            tokens: Some(Tokens { prompt: 5, completion: 2 }),
            ..Outcome::default()
        };
        let entry = draft.entry(Phase::Complete, 200, outcome);
        assert_eq!(entry.request_id, "req-9");
        assert!(entry.allowed);
        assert_eq!(entry.policies, ["rampart/infer"]);
        assert_eq!(entry.request_label.as_deref(), Some("NATO SECRET"));
        assert_eq!((entry.prompt_tokens, entry.completion_tokens), (Some(5), Some(2)));
        assert_eq!(entry.request_sha256, Some("ab".repeat(32)));
        assert_eq!(entry.code, None);
        assert!(entry.caller.is_none());

        draft.decided(&Decision { refusal: Some(rampart_policy::Refusal::NotReleasable), policies: vec![] });
        draft.failed(Some("not_releasable"));
        let entry = draft.entry(Phase::Complete, 403, Outcome::default());
        assert!(!entry.allowed);
        assert_eq!(entry.code.as_deref(), Some("not_releasable"));
    }
}
