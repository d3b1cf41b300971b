//! The retrieval index: the [`PortionIndex`] trait, and [`LocalIndex`], its
//! embedded driver — tantivy's BM25 over the portions' text in memory, and a
//! flat table of their embeddings — fused by reciprocal rank.
//!
//! **The label filter is part of the query, never applied to results.** A
//! request's [`Readable`] set says which of the index's distinct portion
//! labels it may read; a portion of any other label is never scored, and the
//! BM25 statistics (document count, average length, each term's document
//! frequency) are those of the readable portions only, so a portion the caller
//! may not read cannot change another's score or rank.

use std::collections::HashMap;

use rampart_collections::Collection;
use rampart_labels::Label;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{Bm25StatisticsProvider, BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::embed::DIMENSIONS;
use crate::vectors::Quantized;

/// Candidates each ranking contributes to the fusion.
const CANDIDATES: usize = 50;
/// Portions from which the dense scan runs on two threads, each over half the rows.
const SPLIT_SCAN_ROWS: usize = 20_000;
/// The constant of reciprocal rank fusion (Cormack et al., 2009).
const RRF_K: f32 = 60.0;
/// The tokenizer of portion text: words lower-cased and stemmed (English).
const ANALYZER: &str = "en_stem";
/// The fast field holding a tantivy document's position in `LocalIndex::portions`.
const ENTRY: &str = "entry";

/// Why an index could not be built or searched.
#[derive(Debug, thiserror::Error)]
#[error("the retrieval index: {0}")]
pub struct IndexError(String);

impl From<tantivy::TantivyError> for IndexError {
    fn from(e: tantivy::TantivyError) -> Self {
        IndexError(e.to_string())
    }
}

/// Which of an index's distinct labels a request may read, by position in [`PortionIndex::labels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable(Vec<bool>);

impl Readable {
    /// The labels of `labels` for which `may_read` holds.
    pub fn of(labels: &[Label], may_read: impl Fn(&Label) -> bool) -> Self {
        Self(labels.iter().map(may_read).collect())
    }

    fn admits(&self, label: usize) -> bool {
        self.0.get(label).copied().unwrap_or(false)
    }

    fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().enumerate().filter(|(_, ok)| **ok).map(|(i, _)| i as u64)
    }
}

/// A portion of the collection, as the index refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortionRef {
    /// The document's id.
    pub document: String,
    /// The portion's number in its document, from 1.
    pub portion: usize,
    /// Its label, by position in [`PortionIndex::labels`].
    pub label: usize,
}

/// A portion retrieved, with its fused score and the scores it was ranked by.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Which portion.
    pub portion: PortionRef,
    /// Its reciprocal-rank-fusion score: higher is better.
    pub score: f32,
    /// Its BM25 score, when the lexical ranking placed it among its candidates.
    pub lexical: Option<f32>,
    /// Its cosine similarity to the query, when the dense ranking placed it among its candidates.
    pub dense: Option<f32>,
}

/// The readable portions ranked by a query's text, best first, with their scores.
#[derive(Debug, Clone, Default)]
pub struct Lexical(Vec<(usize, f32)>);

/// A searchable index of one collection's portions.
///
/// A search has two steps, so that the first can run while the query's
/// embedding is computed: [`lexical`](Self::lexical) ranks by the query's
/// text, [`fused`](Self::fused) adds the embedding and returns the hits. A
/// driver that ranks in one round trip (a search cluster) may return an empty
/// ranking from the first and do all its work in the second.
pub trait PortionIndex: Send + Sync {
    /// The distinct labels of the portions, each once.
    fn labels(&self) -> &[Label];

    /// The portions whose label `readable` admits, ranked by the query's text.
    fn lexical(&self, query: &str, readable: &Readable) -> Result<Lexical, IndexError>;

    /// The `top_k` best portions for `query` among those `readable` admits,
    /// best first: `lexical` (from [`lexical`](Self::lexical) with the same
    /// query and `readable`) fused with the ranking by `embedding`, when the
    /// index has embeddings.
    fn fused(
        &self,
        query: &str,
        lexical: Lexical,
        embedding: &[f32],
        readable: &Readable,
        top_k: usize,
    ) -> Result<Vec<Hit>, IndexError>;

    /// Both steps, one after the other.
    fn search(
        &self,
        query: &str,
        embedding: &[f32],
        readable: &Readable,
        top_k: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let lexical = self.lexical(query, readable)?;
        self.fused(query, lexical, embedding, readable, top_k)
    }
}

/// The embedded index: BM25 in memory and a flat table of embeddings.
pub struct LocalIndex {
    labels: Vec<Label>,
    portions: Vec<PortionRef>,
    /// One row per portion, or none when the collection has no embeddings.
    vectors: Quantized,
    reader: IndexReader,
    analyzer: TextAnalyzer,
    text: Field,
    label: Field,
    /// Per label: portions, and tokens of their text, for BM25 statistics of the readable ones.
    per_label: Vec<(u64, u64)>,
}

impl LocalIndex {
    /// Indexes every portion of `collection`.
    pub fn build(collection: &Collection) -> Result<Self, IndexError> {
        let mut schema = Schema::builder();
        let indexing =
            TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqs);
        let text = schema.add_text_field("text", TextOptions::default().set_indexing_options(indexing));
        let label = schema.add_u64_field("label", INDEXED);
        let entry = schema.add_u64_field(ENTRY, FAST);
        let index = Index::create_in_ram(schema.build());
        let mut analyzer = index
            .tokenizers()
            .get(ANALYZER)
            .ok_or_else(|| IndexError(format!("tantivy has no '{ANALYZER}' tokenizer")))?;
        let mut writer = index.writer_with_num_threads(1, 64 << 20)?;
        let mut labels: Vec<Label> = Vec::new();
        let mut label_ids: HashMap<String, usize> = HashMap::new();
        let mut portions = Vec::new();
        let mut vectors = Quantized::default();
        let mut per_label: Vec<(u64, u64)> = Vec::new();
        let embedded = collection.portions().all(|p| p.embedding.len() == DIMENSIONS);
        for document in collection.documents.values() {
            for (n, portion) in document.portions.iter().enumerate() {
                let key = serde_json::to_string(&portion.label.to_json()).unwrap_or_default();
                let id = *label_ids.entry(key).or_insert_with(|| {
                    labels.push(portion.label.clone());
                    per_label.push((0, 0));
                    labels.len() - 1
                });
                let tokens = token_count(&mut analyzer, &portion.text);
                per_label[id].0 += 1;
                per_label[id].1 += tokens;
                let mut doc = TantivyDocument::default();
                doc.add_text(text, &portion.text);
                doc.add_u64(label, id as u64);
                doc.add_u64(entry, portions.len() as u64);
                writer.add_document(doc)?;
                portions.push(PortionRef { document: document.id.clone(), portion: n + 1, label: id });
                if embedded {
                    vectors.push(&portion.embedding);
                }
            }
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Self { labels, portions, vectors, reader, analyzer, text, label, per_label })
    }

    /// Whether the portions' embeddings are indexed (every portion has one), so dense ranking applies.
    pub fn has_embeddings(&self) -> bool {
        !self.vectors.is_empty()
    }

    /// Portions in the index.
    pub fn len(&self) -> usize {
        self.portions.len()
    }

    /// Whether the index has no portions.
    pub fn is_empty(&self) -> bool {
        self.portions.is_empty()
    }

    /// The readable portions ranked by BM25 over readable statistics, best first, with their scores.
    fn bm25(&self, query: &str, readable: &Readable) -> Result<Vec<(usize, f32)>, IndexError> {
        let mut analyzer = self.analyzer.clone();
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(query);
        while let Some(token) = stream.next() {
            let term = Term::from_field_text(self.text, &token.text);
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let filter = self.filter(readable);
        let words: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|t| {
                (Occur::Should, Box::new(TermQuery::new(t.clone(), IndexRecordOption::WithFreqs)) as Box<dyn Query>)
            })
            .collect();
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(words))),
            (Occur::Must, filter.box_clone()),
        ]);
        let searcher = self.reader.searcher();
        let statistics = ReadableStatistics { index: self, readable, searcher: &searcher, filter };
        let top = searcher.search_with_statistics_provider(&query, &TopDocs::with_limit(CANDIDATES), &statistics)?;
        let mut ranked = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = searcher.segment_reader(address.segment_ord).fast_fields().u64(ENTRY)?;
            if let Some(entry) = column.first(address.doc_id) {
                ranked.push((entry as usize, score));
            }
        }
        Ok(ranked)
    }

    /// Only the readable labels, as a query that scores nothing itself.
    fn filter(&self, readable: &Readable) -> Box<dyn Query> {
        let terms: Vec<Term> = readable.ids().map(|id| Term::from_field_u64(self.label, id)).collect();
        Box::new(ConstScoreQuery::new(Box::new(TermSetQuery::new(terms)), 0.0))
    }

    /// The readable portions ranked by cosine to `embedding`, best first, with
    /// their similarity; the others are skipped unread. A large index is
    /// scanned in two halves at once.
    fn dense(&self, embedding: &[f32], readable: &Readable) -> Vec<(usize, f32)> {
        if self.vectors.is_empty() || embedding.len() != DIMENSIONS {
            return Vec::new();
        }
        let best_in = |rows: std::ops::Range<usize>| {
            best(
                rows.filter(|&i| readable.admits(self.portions[i].label))
                    .map(|i| (self.vectors.similarity(i, embedding), i))
                    .collect(),
            )
        };
        let rows = self.portions.len();
        let scored = if rows >= SPLIT_SCAN_ROWS {
            std::thread::scope(|scope| {
                let upper = scope.spawn(|| best_in(rows / 2..rows));
                let mut lower = best_in(0..rows / 2);
                lower.extend(upper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                best(lower)
            })
        } else {
            best_in(0..rows)
        };
        scored.into_iter().map(|(score, i)| (i, score)).collect()
    }
}

/// The `CANDIDATES` best of `scored`, best first; ties go to the earlier portion.
fn best(mut scored: Vec<(f32, usize)>) -> Vec<(f32, usize)> {
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if CANDIDATES < scored.len() {
        scored.select_nth_unstable_by(CANDIDATES, order);
        scored.truncate(CANDIDATES);
    }
    scored.sort_by(order);
    scored
}

fn token_count(analyzer: &mut TextAnalyzer, text: &str) -> u64 {
    let mut stream = analyzer.token_stream(text);
    let mut count = 0;
    while stream.advance() {
        count += 1;
    }
    count
}

/// Reciprocal rank fusion of ranked lists of (portion index, score).
fn fuse(lists: &[&[(usize, f32)]], top_k: usize) -> Vec<(usize, f32)> {
    let mut scores: HashMap<usize, f32> = HashMap::new();
    for list in lists {
        for (rank, (entry, _)) in list.iter().enumerate() {
            *scores.entry(*entry).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(usize, f32)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused.truncate(top_k);
    fused
}

impl PortionIndex for LocalIndex {
    fn labels(&self) -> &[Label] {
        &self.labels
    }

    fn lexical(&self, query: &str, readable: &Readable) -> Result<Lexical, IndexError> {
        self.bm25(query, readable).map(Lexical)
    }

    fn fused(
        &self,
        _query: &str,
        Lexical(lexical): Lexical,
        embedding: &[f32],
        readable: &Readable,
        top_k: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let dense = self.dense(embedding, readable);
        let score_in = |list: &[(usize, f32)], i: usize| list.iter().find(|(e, _)| *e == i).map(|(_, s)| *s);
        Ok(fuse(&[&lexical, &dense], top_k)
            .into_iter()
            .map(|(i, score)| Hit {
                portion: self.portions[i].clone(),
                score,
                lexical: score_in(&lexical, i),
                dense: score_in(&dense, i),
            })
            .collect())
    }
}

/// BM25 statistics of the readable portions only.
struct ReadableStatistics<'a> {
    index: &'a LocalIndex,
    readable: &'a Readable,
    searcher: &'a tantivy::Searcher,
    filter: Box<dyn Query>,
}

impl ReadableStatistics<'_> {
    fn sum(&self, pick: impl Fn(&(u64, u64)) -> u64) -> u64 {
        self.index.per_label.iter().enumerate().filter(|(id, _)| self.readable.admits(*id)).map(|(_, c)| pick(c)).sum()
    }
}

impl Bm25StatisticsProvider for ReadableStatistics<'_> {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.sum(|c| c.1))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.sum(|c| c.0))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)) as Box<dyn Query>),
            (Occur::Must, self.filter.box_clone()),
        ]);
        self.searcher.search(&query, &Count).map(|n| n as u64)
    }
}

#[cfg(test)]
mod tests {
    use rampart_collections::{Document, Portion, Summary};
    use rampart_labels::Policies;

    use super::*;

    /// `portions` one-word portions under two labels, with pseudo-random unit embeddings.
    fn collection(portions: usize) -> Collection {
        let policies = Policies::nato();
        let labels = [policies.parse_label("NATO RESTRICTED").unwrap(), policies.parse_label("NATO SECRET").unwrap()];
        let mut seed = 0x5eed_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 2001) as f32 / 1000.0 - 1.0
        };
        let documents = (0..portions)
            .map(|d| {
                let label = labels[d % 2].clone();
                let v: Vec<f32> = (0..DIMENSIONS).map(|_| next()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let embedding = v.iter().map(|x| x / norm).collect();
                let portion = Portion { label: label.clone(), text: "report".into(), origin: String::new(), embedding };
                Document {
                    id: format!("d{d}"),
                    title: String::new(),
                    title_label: label.clone(),
                    label,
                    portions: vec![portion],
                    origin: String::new(),
                    version: 1,
                }
            })
            .collect();
        let mut collection = Collection::empty("split");
        collection.upsert(documents, &mut Summary::default());
        collection
    }

    #[test]
    fn the_split_scan_ranks_as_one_scan_would_and_skips_unreadable_rows() {
        let index = LocalIndex::build(&collection(SPLIT_SCAN_ROWS + 1)).unwrap();
        let ceiling = Policies::nato().parse_label("NATO RESTRICTED").unwrap();
        let restricted = Readable::of(index.labels(), |l| ceiling.dominates(l));
        let query: Vec<f32> = (0..DIMENSIONS).map(|i| if i % 3 == 0 { 0.1 } else { -0.05 }).collect();
        let mut expected: Vec<(f32, usize)> = (0..index.len())
            .filter(|&i| restricted.admits(index.portions[i].label))
            .map(|i| (index.vectors.similarity(i, &query), i))
            .collect();
        expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        expected.truncate(CANDIDATES);
        let ranked = index.dense(&query, &restricted);
        assert_eq!(ranked, expected.into_iter().map(|(s, i)| (i, s)).collect::<Vec<_>>());
        assert_eq!(ranked.len(), CANDIDATES);
        assert!(ranked.iter().all(|(i, _)| index.labels[index.portions[*i].label] == ceiling));
    }
}
