//! Markings found in free text, disguised ones included.
//!
//! [`SecurityPolicy::detect_markings`] reads text as written. A caller who
//! wants labelled text past the label stage writes the marking so that it
//! still reads as one to a person or a model but no longer matches: Cyrillic
//! or Greek look-alikes (`SЕCRET`), full-width or mathematical letters
//! (`ＳＥＣＲＥＴ`, `𝐒𝐄𝐂𝐑𝐄𝐓`), invisible code points inside the word (soft
//! hyphen, U+034F, U+FEFF, U+2060), combining marks, right-to-left override
//! (U+202E) with the text reversed, spaced-out letters (`N A T O  S E C R E T`,
//! `( NS )`) and a word split across lines (`SEC\nRET`).
//!
//! A [`MarkingScanner`] therefore reads every text in three views and joins
//! what each finds:
//! - **raw**: the text as written;
//! - **folded**: NFKC, then the UTS #39 confusable skeleton (which also drops
//!   default-ignorable code points), without combining marks, with runs of
//!   spaces collapsed; it is read with a copy of the policy whose phrases are
//!   folded the same way, so categories are found as well as the classification;
//! - **squashed**: the folded view without any whitespace, where banner
//!   phrases (also squashed) and portion markings are looked for; a phrase
//!   counts only as a whole word, and a removed space counts as a word edge.
//!
//! Text carrying U+202E is also read reversed. No library does this job: the
//! normalisation and skeleton tables come from `unicode-normalization` and
//! `unicode-security`; what is written here is only how the views are built
//! and searched.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::{Label, SecurityPolicy};

/// The right-to-left override, which displays the Latin text after it reversed.
const RIGHT_TO_LEFT_OVERRIDE: char = '\u{202E}';

/// Finds markings of one policy in text, disguised or not.
#[derive(Debug)]
pub struct MarkingScanner {
    policy: Arc<SecurityPolicy>,
    /// The policy with every phrase folded, for reading the folded view.
    folded: Arc<SecurityPolicy>,
    /// (classification index, banner phrase folded and without whitespace).
    squashed_banners: Vec<(usize, String)>,
    /// (classification index, `(portion)` folded and without whitespace).
    squashed_portions: Vec<(usize, String)>,
}

impl MarkingScanner {
    /// A scanner for `policy`.
    pub fn new(policy: Arc<SecurityPolicy>) -> Self {
        let mut folded = (*policy).clone();
        for class in &mut folded.classifications {
            fold_all(&mut class.banner);
            if let Some(portion) = &mut class.portion {
                *portion = fold(portion);
            }
        }
        for tag in &mut folded.tags {
            for value in &mut tag.values {
                fold_all(&mut value.phrases);
                let name = fold(&value.name);
                if name != value.name {
                    value.phrases.push(name);
                }
            }
            for affix in [&mut tag.prefix, &mut tag.suffix].into_iter().flatten() {
                *affix = fold(affix);
            }
        }
        let mut squashed_banners = Vec::new();
        let mut squashed_portions = Vec::new();
        for (level, class) in policy.classifications.iter().enumerate() {
            for phrase in &class.banner {
                squashed_banners.push((level, squash(&fold(phrase)).0));
            }
            if let Some(portion) = &class.portion {
                squashed_portions.push((level, squash(&fold(&format!("({portion})"))).0));
            }
        }
        squashed_banners.retain(|(_, phrase)| !phrase.is_empty());
        Self { policy, folded: Arc::new(folded), squashed_banners, squashed_portions }
    }

    /// The policy this scanner reads markings of.
    pub fn policy(&self) -> &Arc<SecurityPolicy> {
        &self.policy
    }

    /// The high-water mark of every marking found in `text` in any view, if any is.
    pub fn scan(&self, text: &str) -> Option<Label> {
        let mut found = self.policy.detect_markings(text);
        let folded = fold(text);
        self.scan_folded(&folded, &mut found);
        if text.contains(RIGHT_TO_LEFT_OVERRIDE) {
            let reversed: String = folded.chars().rev().collect();
            self.scan_folded(&reversed, &mut found);
        }
        found
    }

    fn scan_folded(&self, folded: &str, found: &mut Option<Label>) {
        if let Some(label) = self.folded.detect_markings(folded) {
            // Rebuilt on the real policy: same classifications and tags, in the same order.
            let label = Label::normal(Arc::clone(&self.policy), label.level(), label.categories().clone());
            add(found, label);
        }
        let (squashed, gaps) = squash(folded);
        let edge = |pos: usize, before: bool| {
            let neighbour = if before { squashed[..pos].chars().next_back() } else { squashed[pos..].chars().next() };
            gaps.binary_search(&pos).is_ok() || neighbour.is_none_or(|c| !c.is_alphanumeric())
        };
        for (level, phrase) in &self.squashed_banners {
            let whole_word = squashed
                .match_indices(phrase.as_str())
                .any(|(pos, _)| edge(pos, true) && edge(pos + phrase.len(), false));
            if whole_word {
                add(found, Label::normal(Arc::clone(&self.policy), *level, BTreeMap::new()));
            }
        }
        for (level, portion) in &self.squashed_portions {
            if squashed.contains(portion.as_str()) {
                add(found, Label::normal(Arc::clone(&self.policy), *level, BTreeMap::new()));
            }
        }
    }
}

fn add(found: &mut Option<Label>, label: Label) {
    *found = Some(match found.take() {
        // Same policy by construction, so the join cannot fail.
        Some(current) => current.join(&label).unwrap_or(current),
        None => label,
    });
}

fn fold_all(phrases: &mut [String]) {
    for phrase in phrases {
        *phrase = fold(phrase);
    }
}

/// The skeleton of each ASCII character (most are themselves; `0` is `O`, `1` and `I` are `l`).
static ASCII_SKELETONS: LazyLock<Vec<String>> =
    LazyLock::new(|| (0u8..128).map(|b| unicode_security::skeleton(&char::from(b).to_string()).collect()).collect());

/// The folded view: NFKC, confusable skeleton without default-ignorable code
/// points, no combining marks, runs of spaces as one space (newlines kept).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let push = |c: char, out: &mut String| {
        if c == '\n' || c == '\r' {
            out.push('\n');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else if !is_combining_mark(c) {
            out.push(c);
        }
    };
    if text.is_ascii() {
        for byte in text.bytes() {
            for c in ASCII_SKELETONS[usize::from(byte)].chars() {
                push(c, &mut out);
            }
        }
    } else {
        let normalised: String = text.nfkc().collect();
        for c in unicode_security::skeleton(&normalised) {
            push(c, &mut out);
        }
    }
    out
}

/// `text` without whitespace, and the offsets (in the result) where whitespace was removed.
fn squash(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut gaps = Vec::new();
    for c in text.chars() {
        if c.is_whitespace() {
            if gaps.last() != Some(&out.len()) {
                gaps.push(out.len());
            }
        } else {
            out.push(c);
        }
    }
    (out, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_undoes_width_look_alikes_and_invisible_code_points() {
        assert_eq!(fold("ＳＥＣＲＥＴ"), fold("SECRET"));
        assert_eq!(fold("𝐒𝐄𝐂𝐑𝐄𝐓"), fold("SECRET"));
        assert_eq!(fold("S\u{0415}CRET"), fold("SECRET"));
        assert_eq!(fold("SE\u{00AD}C\u{034F}R\u{FEFF}E\u{2060}T"), fold("SECRET"));
        assert_eq!(fold("S\u{0308}ECRET"), fold("SECRET"));
        assert_eq!(fold("a \t  b\n\nc"), "a b\n\nc");
    }

    #[test]
    fn squashing_records_where_spaces_were() {
        assert_eq!(squash("N A  TO"), ("NATO".to_owned(), vec![1, 2]));
        assert_eq!(squash(" x "), ("x".to_owned(), vec![0, 1]));
    }
}
