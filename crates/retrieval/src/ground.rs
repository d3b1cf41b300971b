//! Grounding: whether each sentence of an answer is supported by the sources
//! it cites. Free of HTTP and of any model: the caller passes the sources'
//! text and a way to embed text.
//!
//! - An answer is split into sentences ([`sentences`]): a sentence ends at
//!   `.`, `!` or `?` followed by white space, or at a line break; the
//!   citations written right after its end (`... at dawn. [2]`) belong to it.
//! - A citation is `[n]` or `[n, m, ...]`; a number that names no source is
//!   *unknown* and supports nothing.
//! - A sentence is **supported** when it cites at least one known source and,
//!   for one of them, at least [`LEXICAL_SUPPORT`] of its content words
//!   (English stems, stop words left out) occur in that source, or the
//!   cosine similarity of their embeddings is at least [`DENSE_SUPPORT`].
//!   A sentence citing nothing is unsupported.
//!
//! This checks that a sentence says something close to what it cites, not
//! that it is true: a sentence that reuses a source's words to say the
//! opposite passes the lexical test (docs/retrieval.md).

use std::collections::HashSet;
use std::ops::Range;

use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer};

/// The share of a sentence's content words that must occur in a cited source.
pub const LEXICAL_SUPPORT: f32 = 0.5;
/// The cosine similarity to a cited source that supports a sentence.
pub const DENSE_SUPPORT: f32 = 0.6;

/// One source given to the model, numbered as the prompt numbers it.
pub struct Source {
    /// Its number in the prompt, from 1.
    pub n: usize,
    /// Its text.
    pub text: String,
}

/// A sentence of an answer, as checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// Where it is in the answer (bytes), its citations and trailing space included.
    pub span: Range<usize>,
    /// The known sources it cites, in order, each once.
    pub cites: Vec<usize>,
    /// Citation numbers that name no source.
    pub unknown: Vec<usize>,
    /// Whether its cited sources support it.
    pub supported: bool,
}

/// How an answer is grounded in its sources.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grounding {
    /// Sentences in the answer.
    pub sentences: usize,
    /// Sentences citing at least one known source.
    pub cited: usize,
    /// Indexes of unsupported sentences (from 0, in the answer as written).
    pub unsupported: Vec<usize>,
    /// Citation numbers that named no source, each once, in order of appearance.
    pub unknown_citations: Vec<usize>,
    /// Supported sentences over all sentences (1 for an empty answer).
    pub support: f32,
    /// Known sources cited, in order of first citation.
    pub cited_sources: Vec<usize>,
}

impl Grounding {
    /// The summary of checked sentences.
    pub fn of(sentences: &[Sentence]) -> Self {
        let mut grounding = Grounding { sentences: sentences.len(), ..Grounding::default() };
        for (i, sentence) in sentences.iter().enumerate() {
            if !sentence.cites.is_empty() {
                grounding.cited += 1;
            }
            if !sentence.supported {
                grounding.unsupported.push(i);
            }
            push_new(&mut grounding.unknown_citations, &sentence.unknown);
            push_new(&mut grounding.cited_sources, &sentence.cites);
        }
        let supported = sentences.len() - grounding.unsupported.len();
        grounding.support = if sentences.is_empty() { 1.0 } else { supported as f32 / sentences.len() as f32 };
        grounding
    }
}

fn push_new(into: &mut Vec<usize>, items: &[usize]) {
    for item in items {
        if !into.contains(item) {
            into.push(*item);
        }
    }
}

/// Why an answer could not be checked.
#[derive(Debug, thiserror::Error)]
#[error("grounding could not be checked: {0}")]
pub struct GroundError(pub String);

/// Checks answers against one request's sources.
pub struct Checker<E> {
    sources: Vec<Source>,
    /// Each source's content words.
    words: Vec<HashSet<String>>,
    /// Each source's embedding, computed when first needed.
    vectors: Vec<Option<Vec<f32>>>,
    analyzer: TextAnalyzer,
    embed: E,
}

impl<E> Checker<E>
where
    E: FnMut(&[&str]) -> Result<Vec<Vec<f32>>, GroundError>,
{
    /// A checker of answers citing `sources`; `embed` gives unit-length
    /// embeddings (or none, to check by words alone).
    pub fn new(sources: Vec<Source>, embed: E) -> Self {
        let mut analyzer = content_words();
        let words = sources.iter().map(|s| words_of(&mut analyzer, &s.text)).collect();
        let vectors = vec![None; sources.len()];
        Self { sources, words, vectors, analyzer, embed }
    }

    /// Checks the sentence `span` of `answer`.
    pub fn check(&mut self, answer: &str, span: Range<usize>) -> Result<Sentence, GroundError> {
        let text = &answer[span.clone()];
        let (claim, numbers) = strip_citations(text);
        let mut cites = Vec::new();
        let mut unknown = Vec::new();
        for n in numbers {
            match self.sources.iter().position(|s| s.n == n) {
                Some(_) => push_new(&mut cites, &[n]),
                None => push_new(&mut unknown, &[n]),
            }
        }
        let supported = !cites.is_empty() && self.supports(&claim, &cites)?;
        Ok(Sentence { span, cites, unknown, supported })
    }

    /// Checks every sentence of `answer`.
    pub fn check_all(&mut self, answer: &str) -> Result<Vec<Sentence>, GroundError> {
        sentences(answer, true).0.into_iter().map(|span| self.check(answer, span)).collect()
    }

    fn supports(&mut self, claim: &str, cites: &[usize]) -> Result<bool, GroundError> {
        let claim_words = words_of(&mut self.analyzer, claim);
        let at = |n: usize| self.sources.iter().position(|s| s.n == n);
        if !claim_words.is_empty() {
            for &n in cites {
                let Some(i) = at(n) else { continue };
                let shared = claim_words.iter().filter(|w| self.words[i].contains(*w)).count();
                if shared as f32 / claim_words.len() as f32 >= LEXICAL_SUPPORT {
                    return Ok(true);
                }
            }
        }
        let missing: Vec<usize> = cites.iter().filter_map(|&n| at(n)).filter(|&i| self.vectors[i].is_none()).collect();
        let mut texts: Vec<&str> = vec![claim];
        texts.extend(missing.iter().map(|&i| self.sources[i].text.as_str()));
        let mut vectors = (self.embed)(&texts)?;
        if vectors.is_empty() {
            return Ok(false);
        }
        if vectors.len() != texts.len() {
            return Err(GroundError(format!("{} embeddings for {} texts", vectors.len(), texts.len())));
        }
        let claim_vector = vectors.remove(0);
        for (i, vector) in missing.into_iter().zip(vectors) {
            self.vectors[i] = Some(vector);
        }
        Ok(cites
            .iter()
            .filter_map(|&n| at(n))
            .any(|i| self.vectors[i].as_ref().is_some_and(|v| cosine(&claim_vector, v) >= DENSE_SUPPORT)))
    }
}

/// The dot product of two unit-length vectors.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The analyzer of content words: lower-cased English stems, stop words left out.
fn content_words() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
        .filter(Stemmer::new(Language::English))
        .build()
}

fn words_of(analyzer: &mut TextAnalyzer, text: &str) -> HashSet<String> {
    let mut words = HashSet::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        words.insert(stream.token().text.clone());
    }
    words
}

/// A sentence's text without its citations, and the numbers they cite in order.
pub fn strip_citations(text: &str) -> (String, Vec<usize>) {
    let mut claim = String::with_capacity(text.len());
    let mut numbers = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        claim.push_str(&rest[..open]);
        let after = &rest[open..];
        match citation_at(after) {
            Some((len, cited)) => {
                numbers.extend(cited);
                rest = &after[len..];
            }
            None => {
                claim.push('[');
                rest = &after[1..];
            }
        }
    }
    claim.push_str(rest);
    (claim, numbers)
}

/// The citation `[n]` or `[n, m, ...]` at the start of `text`: its length and numbers.
fn citation_at(text: &str) -> Option<(usize, Vec<usize>)> {
    let close = text.find(']')?;
    let inner = &text[1..close];
    let numbers: Option<Vec<usize>> = inner
        .split(',')
        .map(|n| {
            let n = n.trim();
            (!n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse().ok()).flatten()
        })
        .collect();
    numbers.filter(|n| !n.is_empty()).map(|n| (close + 1, n))
}

/// The sentences of `text` (byte ranges covering it, in order) and, when
/// `ended` is false, where the last, still open sentence begins: text after
/// it may yet extend it. With `ended`, the rest is the last sentence.
pub fn sentences(text: &str, ended: bool) -> (Vec<Range<usize>>, usize) {
    let mut spans = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\n' => Some(Boundary::At(i + 1)),
            b'.' | b'!' | b'?' => sentence_end(text, i + 1),
            _ => None,
        };
        match end {
            Some(Boundary::At(end)) => {
                if !text[start..end].trim().is_empty() {
                    spans.push(start..end);
                    start = end;
                } else if spans.is_empty() {
                    start = end;
                } else {
                    // White space alone belongs to the sentence before it.
                    let last = spans.len() - 1;
                    spans[last].end = end;
                    start = end;
                }
                i = end;
            }
            Some(Boundary::Unknown) if !ended => break,
            _ => i += 1,
        }
    }
    if ended {
        if !text[start..].trim().is_empty() {
            spans.push(start..text.len());
        } else if let Some(last) = spans.last_mut() {
            last.end = text.len();
        }
        return (spans, text.len());
    }
    (spans, start)
}

enum Boundary {
    /// The sentence ends here (after its citations and the white space after them).
    At(usize),
    /// The text ends before it can be told.
    Unknown,
}

/// After a `.`, `!` or `?` at `from - 1`: where its sentence ends, if it ends there.
fn sentence_end(text: &str, mut from: usize) -> Option<Boundary> {
    let bytes = text.as_bytes();
    // Closing quotes and brackets stay with their sentence.
    while from < bytes.len() && matches!(bytes[from], b'"' | b'\'' | b')') {
        from += 1;
    }
    let mut at = from;
    let mut spaced = false;
    loop {
        let rest = &text[at..];
        let space = rest.len() - rest.trim_start().len();
        if space > 0 {
            spaced = true;
            at += space;
            continue;
        }
        if rest.is_empty() {
            return Some(Boundary::Unknown);
        }
        if rest.starts_with('[') {
            match citation_at(rest) {
                Some((len, _)) => {
                    at += len;
                    continue;
                }
                None if !rest.contains(']') && rest.len() < 24 => return Some(Boundary::Unknown),
                None => {}
            }
        }
        return match spaced {
            true => Some(Boundary::At(at)),
            false => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        sentences(text, true).0.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn sentences_keep_their_citations_and_cover_the_text() {
        let text = "The convoy left at dawn [1]. It reached the bridge. [2][3] Then? Yes!\nA list\n\nend";
        let parts = split(text);
        assert_eq!(
            parts,
            [
                "The convoy left at dawn [1]. ",
                "It reached the bridge. [2][3] ",
                "Then? ",
                "Yes!\n",
                "A list\n\n",
                "end"
            ]
        );
        assert_eq!(parts.concat(), text);
        assert_eq!(split("v1.2 is out."), ["v1.2 is out."], "a dot inside a word ends nothing");
        assert!(split("  ").is_empty());
    }

    #[test]
    fn an_open_sentence_waits_for_what_follows() {
        let (done, rest) = sentences("One. Two", false);
        assert_eq!((done.len(), done.first(), rest), (1, Some(&(0..5)), 5));
        let (done, rest) = sentences("One.", false);
        assert_eq!((done, rest), (vec![], 0), "a citation may follow the full stop");
        let (done, rest) = sentences("One. [1", false);
        assert_eq!((done, rest), (vec![], 0));
        let (done, _) = sentences("One. [1] Two", false);
        assert_eq!((done.len(), done.first()), (1, Some(&(0..9))));
    }

    #[test]
    fn citations_are_read_in_every_form() {
        assert_eq!(
            strip_citations("a [1] b [2, 3] c [x] [] [12345]"),
            ("a  b  c [x] [] [12345]".into(), vec![1, 2, 3])
        );
    }

    fn source(n: usize, text: &str) -> Source {
        Source { n, text: text.to_owned() }
    }

    fn no_embeddings(_: &[&str]) -> Result<Vec<Vec<f32>>, GroundError> {
        Ok(Vec::new())
    }

    #[test]
    fn a_sentence_is_supported_by_the_words_of_what_it_cites() {
        let sources = vec![
            source(1, "The convoy departed Tallinn at dawn on 4 May with twelve vehicles."),
            source(2, "Fuel stocks at the depot were low."),
        ];
        let mut checker = Checker::new(sources, no_embeddings);
        let answer = "The convoy departed Tallinn at dawn [1]. The depot was attacked by aircraft [2]. \
                      Twelve vehicles departed. Fuel was low [7].";
        let checked = checker.check_all(answer).unwrap();
        let flags: Vec<bool> = checked.iter().map(|s| s.supported).collect();
        assert_eq!(flags, [true, false, false, false]);
        let grounding = Grounding::of(&checked);
        assert_eq!(grounding.sentences, 4);
        assert_eq!(grounding.cited, 2);
        assert_eq!(grounding.unsupported, [1, 2, 3]);
        assert_eq!(grounding.unknown_citations, [7]);
        assert_eq!(grounding.cited_sources, [1, 2]);
        assert!((grounding.support - 0.25).abs() < 1e-6);
    }

    #[test]
    fn embeddings_support_a_paraphrase() {
        let sources = || vec![source(1, "Vehicles left at first light.")];
        // A stand-in embedding: the claim and the source point the same way.
        let embed = |texts: &[&str]| Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect());
        let mut checker = Checker::new(sources(), embed);
        let answer = "The trucks went out early in the morning [1].";
        assert!(checker.check(answer, 0..answer.len()).unwrap().supported);
        let far = |texts: &[&str]| {
            Ok(texts.iter().enumerate().map(|(i, _)| if i == 0 { vec![1.0, 0.0] } else { vec![0.0, 1.0] }).collect())
        };
        let mut checker = Checker::new(sources(), far);
        assert!(!checker.check(answer, 0..answer.len()).unwrap().supported, "dissimilar: unsupported");
    }
}
