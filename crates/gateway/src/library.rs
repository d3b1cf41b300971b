//! The retrieve route's decision, free of HTTP: the request's shape, and the
//! collections this site retrieves from — loaded at start-up, each with its
//! index, and the embedding model when any collection is embedded.

use std::collections::HashMap;

use anyhow::Context as _;
use rampart_api::ApiError;
use rampart_audit::entry::{Phase, Retrieved, RetrievedPortion, Withheld};
use rampart_collections::{Collection, CollectionStore, FsStore};
use rampart_config::Config;
use rampart_labels::{Clearance, Label, Policies};
use rampart_retrieval::{Embedder, LocalIndex, PortionIndex, Readable};

use crate::trail::{Draft, Outcome, Trail};
use serde::Deserialize;

/// Portions returned unless `top_k` says otherwise.
const DEFAULT_TOP_K: usize = 8;
/// The most portions one request may ask for.
const MAX_TOP_K: usize = 50;
/// The most collections one request may search.
const MAX_COLLECTIONS: usize = 16;
/// The longest query, in bytes.
const MAX_QUERY: usize = 4096;

/// `POST /v1/retrieve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// The collections to search.
    pub collections: Vec<String>,
    /// What to search for.
    pub query: String,
    /// How many portions to return (default 8, at most 50).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Rampart's extension, `rampart.label`: read by the label stage, not here.
    #[serde(default, rename = "rampart")]
    _extension: Option<RetrieveExtension>,
}

/// The members of `rampart` a retrieval may have: only its label (grounding is chat's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrieveExtension {
    #[serde(default, rename = "label")]
    _label: Option<serde::de::IgnoredAny>,
}

impl RetrieveRequest {
    /// Parses and checks a request body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let request: Self = rampart_api::parse_json(body)?;
        if request.collections.iter().enumerate().any(|(i, name)| request.collections[..i].contains(name)) {
            return Err(ApiError::bad_parameter("collections", "a collection is named twice; name each once"));
        }
        if request.collections.is_empty() || request.collections.len() > MAX_COLLECTIONS {
            return Err(ApiError::bad_parameter(
                "collections",
                format!("name 1 to {MAX_COLLECTIONS} collections to search"),
            ));
        }
        if request.query.trim().is_empty() || request.query.len() > MAX_QUERY {
            return Err(ApiError::bad_parameter("query", format!("the query must be 1 to {MAX_QUERY} bytes of text")));
        }
        if request.top_k.is_some_and(|k| k == 0 || k > MAX_TOP_K) {
            return Err(ApiError::bad_parameter("top_k", format!("top_k must be 1 to {MAX_TOP_K}")));
        }
        Ok(request)
    }

    /// How many portions to return.
    pub fn top_k(&self) -> usize {
        self.top_k.unwrap_or(DEFAULT_TOP_K)
    }
}

/// A collection being served: its documents and its index.
struct Served {
    collection: Collection,
    index: LocalIndex,
}

/// A portion retrieved, with what an answer shows of it.
pub struct Found {
    /// The collection it is from.
    pub collection: String,
    /// Its document's id.
    pub document: String,
    /// Its document's title, when the reader may read the title's label and the portion's label dominates it.
    pub title: Option<String>,
    /// Its opaque id in the document version ([`rampart_collections::Document::portion_id`]).
    pub portion: String,
    /// Its label.
    pub label: Label,
    /// Its fused score.
    pub score: f32,
    /// Its text.
    pub text: String,
}

impl Found {
    /// What an answer shows to name the portion: its ids, collection, document, title, label and marking.
    pub fn reference(&self) -> serde_json::Value {
        serde_json::json!({
            "id": format!("{}#{}", self.document, self.portion),
            "collection": self.collection,
            "document": self.document,
            "title": self.title,
            "portion": self.portion,
            "label": self.label.to_json(),
            "marking": self.label.portion(),
        })
    }
}

/// Whether a reader may read a portion labelled `label`: its clearance
/// (releasability included) grants it and, when the request declares a label,
/// that label, a ceiling, dominates it.
pub fn may_read(clearance: &Clearance, ceiling: Option<&Label>, label: &Label) -> bool {
    clearance.check(label).is_ok() && ceiling.is_none_or(|ceiling| ceiling.dominates(label))
}

/// The collections this site retrieves from.
pub struct Library {
    served: HashMap<String, Served>,
    embedder: Option<Embedder>,
}

impl Library {
    /// Loads every collection in `[collections] dir` and indexes it; loads the
    /// embedding model when any collection has embeddings. A collection that
    /// cannot be read as it was stored (damaged, or edited outside Rampart, see
    /// [`FsStore`]) is not served, logged and audited; the others are served.
    pub fn load(config: &Config, policies: &Policies, trail: Option<&Trail>) -> anyhow::Result<Self> {
        let store = FsStore::new(&config.collections.dir, policies.clone());
        let mut served = HashMap::new();
        for name in store.names()? {
            let loaded = store
                .load(&name)
                .map_err(anyhow::Error::from)
                .and_then(|c| c.with_context(|| format!("collection '{name}' vanished")))
                .and_then(|c| LocalIndex::build(&c).map(|index| (c, index)).map_err(anyhow::Error::from));
            let (mut collection, index) = match loaded {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(collection = %name, error = %format!("{error:#}"), "collection not served");
                    audit_refused(trail, &name, &format!("{error:#}"))?;
                    continue;
                }
            };
            tracing::info!(collection = %name, portions = index.len(), "collection indexed");
            // The index holds the embeddings now; the documents are kept for their text and titles.
            collection.portions_mut().for_each(|p| p.embedding = Vec::new());
            served.insert(name, Served { collection, index });
        }
        let embedder = match served.values().any(|s| s.index.has_embeddings()) {
            true => Some(Embedder::load(&config.collections.embedding_model)?),
            false => None,
        };
        Ok(Self { served, embedder })
    }

    /// Whether `may_read` admits any portion of the collection `name` (an
    /// unknown collection has none).
    pub fn readable_any(&self, name: &str, may_read: &dyn Fn(&Label) -> bool) -> bool {
        self.served.get(name).is_some_and(|served| served.index.labels().iter().any(may_read))
    }

    /// Whether a collection of this name is served.
    pub fn contains(&self, name: &str) -> bool {
        self.served.contains_key(name)
    }

    /// The query's embedding, when any collection is embedded (CPU work).
    fn embed_query(&self, query: &str) -> Result<Vec<f32>, ApiError> {
        match &self.embedder {
            Some(embedder) => embedder.embed_one(query).map_err(|e| ApiError::retrieval_failed(e.to_string())),
            None => Ok(Vec::new()),
        }
    }

    /// The unit-length embeddings of `texts`, or none when no collection is embedded (CPU work).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, rampart_retrieval::ground::GroundError> {
        match &self.embedder {
            Some(embedder) => embedder.embed(texts).map_err(|e| rampart_retrieval::ground::GroundError(e.to_string())),
            None => Ok(Vec::new()),
        }
    }

    /// The `top_k` best portions of `collections` for `query` among those
    /// `may_read` admits (only those are scored), best first. CPU work: run it
    /// off the event loop. The query's embedding is computed on a second
    /// thread while the collections are ranked by its text.
    pub fn retrieve(
        &self,
        collections: &[String],
        query: &str,
        may_read: &dyn Fn(&Label) -> bool,
        top_k: usize,
    ) -> Result<Vec<Found>, ApiError> {
        let mut searched = Vec::with_capacity(collections.len());
        for name in collections {
            let served = self.served.get(name).ok_or_else(|| ApiError::collection_not_found(name))?;
            searched.push((name, served, Readable::of(served.index.labels(), may_read)));
        }
        let failed = |e: rampart_retrieval::IndexError| ApiError::retrieval_failed(e.to_string());
        let (embedding, lexical) = std::thread::scope(|scope| {
            let embedding = scope.spawn(|| self.embed_query(query));
            let lexical: Result<Vec<_>, _> =
                searched.iter().map(|(_, served, readable)| served.index.lexical(query, readable)).collect();
            (embedding.join(), lexical)
        });
        let embedding = embedding.map_err(|_| ApiError::retrieval_failed("the query's embedding failed".into()))??;
        let mut found = Vec::new();
        for ((name, served, readable), lexical) in searched.iter().zip(lexical.map_err(failed)?) {
            let hits = served.index.fused(query, lexical, &embedding, readable, top_k).map_err(failed)?;
            for hit in hits {
                let Some(document) = served.collection.documents.get(&hit.portion.document) else { continue };
                let index = hit.portion.portion - 1;
                let (Some(portion), Some(id)) = (document.portions.get(index), document.portion_id(index)) else {
                    continue;
                };
                found.push(Found {
                    collection: name.to_string(),
                    document: document.id.clone(),
                    // A title goes with its portion only under the portion's label: one above it would
                    // travel under a label that does not cover it.
                    title: (may_read(&document.title_label) && portion.label.dominates(&document.title_label))
                        .then(|| document.title.clone()),
                    portion: id,
                    label: portion.label.clone(),
                    score: hit.score,
                    text: portion.text.clone(),
                });
            }
        }
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(top_k);
        Ok(found)
    }
}

/// Records that the collection `name` is not served, and why (`load_collection`, code `collection_damaged`).
fn audit_refused(trail: Option<&Trail>, name: &str, reason: &str) -> anyhow::Result<()> {
    let Some(trail) = trail else { return Ok(()) };
    let mut draft = Draft::new(String::new(), "load_collection");
    draft.retrieved(withheld(&[name.to_owned()], name, reason));
    let outcome = Outcome { code: Some("collection_damaged".to_owned()), ..Outcome::default() };
    trail.record_blocking(draft.entry(Phase::Complete, 0, outcome).encode())
}

/// What an audit entry records of a retrieval refused because `collection`
/// is answered as unknown, and why.
pub fn withheld(collections: &[String], collection: &str, reason: &str) -> Retrieved {
    Retrieved {
        collections: collections.to_vec(),
        portions: Vec::new(),
        withheld: Some(Withheld { collection: collection.to_owned(), reason: reason.to_owned() }),
    }
}

/// What an audit entry records of a retrieval: collections, portion ids and labels, never text.
pub fn retrieved(collections: &[String], found: &[Found]) -> Retrieved {
    Retrieved {
        withheld: None,
        collections: collections.to_vec(),
        portions: found
            .iter()
            .map(|f| RetrievedPortion {
                id: format!("{}/{}#{}", f.collection, f.document, f.portion),
                label: f.label.banner(),
            })
            .collect(),
    }
}
