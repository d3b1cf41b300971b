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
//! - **squashed**: the folded view without whitespace or the separators a
//!   word is spelled out with (`S.E.C.R.E.T`, `S-E-C-R-E-T`, `S_E_C_R_E_T`),
//!   digits and symbols that stand for letters read as those letters
//!   (`S3CR3T`, `$ECRET`, `T0P 5ECRE7`), where banner phrases (also squashed)
//!   and portion markings are looked for; a phrase counts only as a whole
//!   word, and a removed space or separator counts as a word edge.
//!
//! Small capitals (`ꜱᴇᴄʀᴇᴛ`) fold to capitals. Text carrying U+202E is also
//! read reversed, and text carrying HTML character references (`&#83;`,
//! `&Sigma;`) or percent-encoding (`%53`) is also read decoded, a few layers deep. No library does this job: the
//! normalisation and skeleton tables come from `unicode-normalization` and
//! `unicode-security`; what is written here is only how the views are built
//! and searched.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, MatchKind};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::marking::{match_at, parse_banner, portion_in_text, portion_level, portion_unreadable};
use crate::{Label, SecurityPolicy, embedded};

/// The right-to-left override, which displays the Latin text after it reversed.
const RIGHT_TO_LEFT_OVERRIDE: char = '\u{202E}';

/// What a needle found in a view stands for.
#[derive(Debug, Clone, Copy)]
enum Needle {
    /// A classification's banner phrase: the start of a banner, read on from there.
    Banner(usize),
    /// The start of a classification's portion marking, `(NS)` or `(NS/`:
    /// that classification, and the categories of the marking's inside.
    Portion(usize),
    /// The root name of a STANAG 4774 label element written out in text.
    XmlLabel,
    /// The classification member of a JSON label written out in text.
    JsonLabel,
}

/// Every needle of one view, found in one pass over the text (Aho-Corasick).
#[derive(Debug)]
struct Needles {
    /// Whether any needle is in the text at all: leftmost-first semantics,
    /// which let the automaton skip ahead with a vectorised prefilter (most
    /// text holds no marking, and is then read once, quickly).
    any: AhoCorasick,
    /// Every occurrence, overlapping ones included (`TOP SECRET` holds `SECRET`).
    automaton: AhoCorasick,
    /// By pattern id: what each distinct pattern stands for.
    meanings: Vec<Vec<Needle>>,
}

impl Needles {
    fn new(needles: impl IntoIterator<Item = (String, Needle)>) -> Self {
        let mut patterns: Vec<String> = Vec::new();
        let mut meanings: Vec<Vec<Needle>> = Vec::new();
        for (pattern, needle) in needles.into_iter().filter(|(p, _)| !p.is_empty()) {
            match patterns.iter().position(|p| *p == pattern) {
                Some(id) => meanings[id].push(needle),
                None => {
                    patterns.push(pattern);
                    meanings.push(vec![needle]);
                }
            }
        }
        let build = |kind| {
            AhoCorasick::builder()
                .match_kind(kind)
                .build(&patterns)
                .expect("a few short phrases always build an automaton")
        };
        Self { any: build(MatchKind::LeftmostFirst), automaton: build(MatchKind::Standard), meanings }
    }

    /// Every (start, end, meaning) of a needle in `text`, overlapping ones included.
    fn find<'a>(&'a self, text: &'a str) -> impl Iterator<Item = (usize, usize, Needle)> + 'a {
        let text = if self.any.is_match(text) { text } else { "" };
        self.automaton.find_overlapping_iter(text).flat_map(move |m| {
            self.meanings[m.pattern().as_usize()].iter().map(move |needle| (m.start(), m.end(), *needle))
        })
    }
}

/// The needles of `policy` as its text is read: banner phrases and the starts
/// of portion markings, each passed through `view`.
fn marking_needles(policy: &SecurityPolicy, view: impl Fn(&str) -> String) -> Vec<(String, Needle)> {
    let mut needles = Vec::new();
    for (level, class) in policy.classifications.iter().enumerate() {
        needles.extend(class.banner.iter().map(|phrase| (view(phrase), Needle::Banner(level))));
        if let Some(portion) = &class.portion {
            needles.extend([")", "/"].map(|next| (view(&format!("({portion}{next}")), Needle::Portion(level))));
        }
    }
    needles
}

/// How many layers of encoding are undone (`%2553` is `%53` is `S`); a text
/// still changing after them is read at every layer undone.
const MAX_DECODING_ROUNDS: usize = 8;

/// Finds markings of one policy in text, disguised or not.
#[derive(Debug)]
pub struct MarkingScanner {
    policy: Arc<SecurityPolicy>,
    /// The needles of the text as written.
    raw: Needles,
    /// The policy with every phrase folded, for reading the folded view.
    folded: Arc<SecurityPolicy>,
    /// The needles of the folded view.
    folded_needles: Needles,
    /// The needles of the squashed view: phrases and portions folded, without whitespace.
    squashed: Needles,
    /// How category groups after a classification begin in the squashed view
    /// (prefixes and values of the tags marked after it), to tell a disguised
    /// marking that states categories from one that does not.
    squashed_categories: AhoCorasick,
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
        let squashed = Needles::new(marking_needles(&policy, |phrase| squash(&fold(phrase)).0));
        // Labels written out in full are read as written only.
        let raw = Needles::new(marking_needles(&policy, str::to_owned).into_iter().chain([
            (embedded::XML_NEEDLE.to_owned(), Needle::XmlLabel),
            (embedded::JSON_NEEDLE.to_owned(), Needle::JsonLabel),
        ]));
        let folded_needles = Needles::new(marking_needles(&folded, str::to_owned));
        let mut starts: Vec<String> = vec![squash(&fold("REL TO")).0];
        for tag in policy.tags.iter().filter(|t| !t.marks_before_classification()) {
            starts.extend(tag.prefix.iter().map(|p| squash(&fold(p)).0));
            for value in &tag.values {
                starts.extend(value.phrases.iter().chain([&value.name]).map(|p| squash(&fold(p)).0));
            }
        }
        starts.retain(|s| s.len() >= 2);
        let squashed_categories = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .start_kind(aho_corasick::StartKind::Anchored)
            .ascii_case_insensitive(true)
            .build(&starts)
            .expect("a policy's category phrases always build an automaton");
        Self { policy, raw, folded: Arc::new(folded), folded_needles, squashed, squashed_categories }
    }

    /// The policy this scanner reads markings of.
    pub fn policy(&self) -> &Arc<SecurityPolicy> {
        &self.policy
    }

    /// The high-water mark of every marking found in `text` in any view, if any is.
    pub fn scan(&self, text: &str) -> Option<Label> {
        let mut found = None;
        self.scan_views(text, &mut found);
        let mut decoded = decode(text);
        for _ in 1..MAX_DECODING_ROUNDS {
            let Some(text) = decoded else { break };
            self.scan_views(&text, &mut found);
            decoded = decode(&text);
        }
        found
    }

    /// Reads `text` in every view.
    fn scan_views(&self, text: &str, found: &mut Option<Label>) {
        self.read(&self.policy, &self.raw, text, found, None);
        let folded = fold(text);
        self.scan_folded(&folded, found);
        if text.contains(RIGHT_TO_LEFT_OVERRIDE) {
            let reversed: String = folded.chars().rev().collect();
            self.scan_folded(&reversed, found);
        }
    }

    fn scan_folded(&self, folded: &str, found: &mut Option<Label>) {
        // Markings stating categories, by level: as read in the folded view, and as seen squashed.
        let mut readable = vec![0usize; self.policy.classifications.len()];
        let mut squashed_seen = readable.clone();
        self.read(&self.folded, &self.folded_needles, folded, found, Some(&mut readable));
        let (squashed, gaps) = squash(folded);
        let edge = |pos: usize, before: bool| {
            let neighbour = if before { squashed[..pos].chars().next_back() } else { squashed[pos..].chars().next() };
            gaps.binary_search(&pos).is_ok() || neighbour.is_none_or(|c| !c.is_alphanumeric())
        };
        for (start, end, needle) in self.squashed.find(&squashed) {
            let (level, states_categories) = match needle {
                Needle::Banner(level) if edge(start, true) && edge(end, false) => {
                    (level, self.category_follows(&squashed[end..]))
                }
                Needle::Portion(level) => (level, squashed[..end].ends_with('/')),
                Needle::Banner(_) | Needle::XmlLabel | Needle::JsonLabel => continue,
            };
            squashed_seen[level] += usize::from(states_categories);
            let label = match needle {
                Needle::Portion(_) => portion_level(&self.policy, level),
                _ => Label::normal(Arc::clone(&self.policy), level, BTreeMap::new()),
            };
            add(found, label);
        }
        // More markings stating categories seen squashed than read: the others are disguised,
        // their categories unreadable, and they read as releasable to nobody rather than to all.
        for (level, (seen, read)) in squashed_seen.iter().zip(&readable).enumerate() {
            if seen > read {
                add(found, portion_unreadable(&self.policy, level));
            }
        }
    }

    /// Whether `after` (squashed text right after a classification) begins,
    /// past separators, with a category group.
    fn category_follows(&self, after: &str) -> bool {
        let after = after.trim_start_matches(['/', ',', ';']);
        let input = aho_corasick::Input::new(after).anchored(aho_corasick::Anchored::Yes);
        self.squashed_categories.find(input).is_some()
    }

    /// Reads `text` as [`SecurityPolicy::detect_markings`] does (a banner
    /// phrase as the policy writes it, as a whole word, read on to the end of
    /// its line; a portion marking anywhere), finding every needle in one pass.
    /// What `policy` (the real one or its folded copy) finds is rebuilt on the real policy.
    /// `stating_categories`, when given, counts by level the markings read that state categories.
    fn read(
        &self,
        policy: &Arc<SecurityPolicy>,
        needles: &Needles,
        text: &str,
        found: &mut Option<Label>,
        mut stating_categories: Option<&mut Vec<usize>>,
    ) {
        for (pos, end, needle) in needles.find(text) {
            let label = match needle {
                Needle::XmlLabel => match embedded::xml_label(&self.policy, text, pos) {
                    Some(label) => label,
                    None => continue,
                },
                Needle::JsonLabel => match embedded::json_label(&self.policy, text, pos) {
                    Some(label) => label,
                    None => continue,
                },
                Needle::Portion(level) => {
                    if let Some(counts) = stating_categories.as_deref_mut() {
                        counts[level] += usize::from(text[..end].ends_with('/'));
                    }
                    let label = portion_in_text(policy, text, pos, level);
                    Label::normal(Arc::clone(&self.policy), label.level(), label.categories().clone())
                }
                Needle::Banner(_) => {
                    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
                    let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
                    let line = &text[line_start..line_end];
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    let at = pos - line_start;
                    let starts_word = line[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
                    if !starts_word || match_at(line, at, &text[pos..end], true).is_none() {
                        continue;
                    }
                    let Ok((label, _)) = parse_banner(policy, line, policy.context_start(line, at), false) else {
                        continue;
                    };
                    if let Some(counts) = stating_categories.as_deref_mut() {
                        let after = |tag: &String| policy.tag(tag).is_some_and(|t| !t.marks_before_classification());
                        counts[label.level()] += usize::from(label.categories().keys().any(after));
                    }
                    Label::normal(Arc::clone(&self.policy), label.level(), label.categories().clone())
                }
            };
            add(found, label);
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

/// The folded form of each ASCII character (its skeleton: most are themselves;
/// `0` is `O`, `1` and `I` are `l`, `m` is `rn`), without combining marks.
static ASCII_FOLDED: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    (0u8..128)
        .map(|b| {
            let plain = plain_of(char::from(b)).unwrap_or(char::from(b));
            let folded: String =
                unicode_security::skeleton(&plain.to_string()).filter(|c| !is_combining_mark(*c)).collect();
            folded.into_bytes()
        })
        .collect()
});

/// The folded view: NFKC, confusable skeleton without default-ignorable code
/// points, no combining marks, every run of whitespace one space, every line
/// break a newline. Its only whitespace is therefore `' '` and `'\n'`.
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        // Byte by byte: the common case, on every request, kept to a table lookup per byte.
        let mut out: Vec<u8> = Vec::with_capacity(text.len() + text.len() / 8);
        for &byte in text.as_bytes() {
            match byte {
                b'\n' | b'\r' => out.push(b'\n'),
                b' ' | b'\t' | 0x0b | 0x0c => {
                    if out.last() != Some(&b' ') {
                        out.push(b' ');
                    }
                }
                _ => match ASCII_FOLDED[usize::from(byte)].as_slice() {
                    [one] => out.push(*one),
                    many => out.extend_from_slice(many),
                },
            }
        }
        return String::from_utf8(out).expect("folded ASCII is the concatenation of UTF-8 strings");
    }
    let mut out = String::with_capacity(text.len());
    let normalised: String = text.chars().map(|c| plain_of(c).unwrap_or(c)).nfkc().collect();
    for c in unicode_security::skeleton(&normalised) {
        if c == '\n' || c == '\r' {
            out.push('\n');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else if !is_combining_mark(c) {
            out.push(c);
        }
    }
    out
}

/// `text` with HTML character references and percent-encoding undone, if it
/// holds any (`None` when decoding changes nothing).
fn decode(text: &str) -> Option<String> {
    if !may_be_encoded(text) {
        return None;
    }
    let mut decoded = Cow::Borrowed(text);
    if text.contains('&') {
        decoded = Cow::Owned(html_escape::decode_html_entities(&decoded).into_owned());
    }
    if decoded.contains('%') {
        decoded = Cow::Owned(percent_encoding::percent_decode_str(&decoded).decode_utf8_lossy().into_owned());
    }
    if let Some(undone) = undo_escapes(&decoded) {
        decoded = Cow::Owned(undone);
    }
    (decoded != text).then(|| decoded.into_owned())
}

/// Whether `text` holds a byte any decoding starts with (`&`, `%`, `\\`, `<`):
/// most text holds none, and is then not decoded at all (two vectorised passes).
fn may_be_encoded(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr3(b'&', b'%', b'<', bytes).is_some() || memchr::memchr(b'\\', bytes).is_some()
}

/// The longest markup tag dropped from text (`SEC<b></b>RET`), in bytes.
const MAX_TAG: usize = 64;

/// `text` with what the decoders above leave undone: numeric character
/// references without their `;` (`&#83ECRET`), `\uXXXX`, `%uXXXX` and `\xXX`
/// escapes, and markup tags (`<b>`) dropped; `None` when there is none.
fn undo_escapes(text: &str) -> Option<String> {
    if !may_be_encoded(text) {
        return None;
    }
    let bytes = text.as_bytes();
    let (mut out, mut copied, mut at) = (String::with_capacity(text.len()), 0, 0);
    while at < bytes.len() {
        let rest = &text[at..];
        let undone = match (bytes[at], bytes.get(at + 1).copied()) {
            (b'&', Some(b'#')) => match bytes.get(at + 2) {
                Some(b'x' | b'X') => escaped(&rest[3..], 16, 1..=6).map(|(c, n)| (Some(c), 3 + n)),
                _ => escaped(&rest[2..], 10, 1..=7).map(|(c, n)| (Some(c), 2 + n)),
            },
            (b'\\', Some(b'u')) | (b'%', Some(b'u' | b'U')) => {
                escaped(&rest[2..], 16, 4..=4).map(|(c, n)| (Some(c), 2 + n))
            }
            (b'\\', Some(b'x')) => escaped(&rest[2..], 16, 2..=2).map(|(c, n)| (Some(c), 2 + n)),
            (b'<', Some(next)) if next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'>') => {
                rest.bytes().take(MAX_TAG).position(|b| b == b'>').map(|end| (None, end + 1))
            }
            _ => None,
        };
        match undone {
            Some((character, used)) => {
                out.push_str(&text[copied..at]);
                out.extend(character);
                at += used;
                copied = at;
            }
            None => at += text[at..].chars().next().map_or(1, char::len_utf8),
        }
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// The character a run of `digits` digits in `radix` at the start of `rest`
/// stands for (an optional `;` after them is taken too), and the bytes used.
/// Without a `;` the run's end is unknown (`&#X53ECRET`: hex digits go on into
/// the word), so the longest run standing for a printable ASCII character is
/// read, as one written to spell a word would be; failing that, the whole run.
fn escaped(rest: &str, radix: u32, digits: std::ops::RangeInclusive<usize>) -> Option<(char, usize)> {
    let count = rest.bytes().take(*digits.end()).take_while(|b| char::from(*b).is_digit(radix)).count();
    if !digits.contains(&count) {
        return None;
    }
    let decode = |n: usize| u32::from_str_radix(&rest[..n], radix).ok().and_then(char::from_u32);
    let terminated = rest.as_bytes().get(count) == Some(&b';');
    if !terminated
        && let Some(n) = (*digits.start()..count).rev().find(|&n| decode(n).is_some_and(|c| c.is_ascii_graphic()))
        && !decode(count).is_some_and(|c| c.is_ascii_graphic())
    {
        return decode(n).map(|character| (character, n));
    }
    Some((decode(count)?, count + usize::from(terminated)))
}

/// The letter a folded digit or symbol stands for when a word is spelled
/// with it (`S3CR3T`, `$ECRET`), as the folded phrases write that letter
/// (`1`, `I`, `!` and `|` all fold to `l`; `0` to `O`).
fn letter_for(byte: u8) -> u8 {
    match byte {
        b'3' => b'E',
        b'4' | b'@' => b'A',
        b'5' | b'$' => b'S',
        b'6' => b'G',
        b'7' | b'+' => b'T',
        b'8' => b'B',
        b'!' => b'l',
        other => other,
    }
}

/// The plain character a decorated one stands for where neither NFKC nor the
/// confusable skeleton maps it: small capitals (`ꜱᴇᴄʀᴇᴛ`), squared, circled
/// and negative letters (`🆂🅴🅲`), regional indicators (`🇸🇪🇨`), the invisible
/// tag characters (U+E0020 to U+E007E, which spell ASCII), middle dots and
/// bullets between letters (read as `.`), the rupee sign (`₹`, an R), and
/// brackets other than parentheses (read as parentheses).
fn plain_of(c: char) -> Option<char> {
    let offset = |base: u32| char::from_u32(u32::from(b'A') + (u32::from(c) - base));
    match u32::from(c) {
        0x1F1E6..=0x1F1FF => return offset(0x1F1E6),
        0x1F130..=0x1F149 => return offset(0x1F130),
        0x1F150..=0x1F169 => return offset(0x1F150),
        0x1F170..=0x1F189 => return offset(0x1F170),
        0xE0020..=0xE007E => return char::from_u32(u32::from(c) - 0xE0000),
        _ => {}
    }
    Some(match c {
        '\u{00B7}' | '\u{2022}' | '\u{2027}' | '\u{30FB}' | '\u{2219}' => '.',
        // Other brackets around a portion marking (`[NS]`, `{NS}`, `<NS>`) read as parentheses.
        '[' | '{' | '<' => '(',
        ']' | '}' | '>' => ')',
        '\u{20B9}' => 'R',
        '\u{1D00}' => 'A',
        '\u{0299}' => 'B',
        '\u{1D04}' => 'C',
        '\u{1D05}' => 'D',
        '\u{1D07}' => 'E',
        '\u{A730}' => 'F',
        '\u{0262}' => 'G',
        '\u{029C}' => 'H',
        '\u{026A}' => 'I',
        '\u{1D0A}' => 'J',
        '\u{1D0B}' => 'K',
        '\u{029F}' => 'L',
        '\u{1D0D}' => 'M',
        '\u{0274}' => 'N',
        '\u{1D0F}' => 'O',
        '\u{1D18}' => 'P',
        '\u{A7AF}' => 'Q',
        '\u{0280}' => 'R',
        '\u{A731}' => 'S',
        '\u{1D1B}' => 'T',
        '\u{1D1C}' => 'U',
        '\u{1D20}' => 'V',
        '\u{1D21}' => 'W',
        '\u{028F}' => 'Y',
        '\u{1D22}' => 'Z',
        _ => return None,
    })
}

/// Whether a folded byte is dropped from the squashed view: whitespace and the
/// punctuation a spelled-out word may be written with. Not `/`, `(` or `)`,
/// which portion markings are made of, nor `$`, `@` or `!`, read as letters.
fn is_squashed_separator(byte: u8) -> bool {
    byte == b' ' || byte == b'\n' || (byte.is_ascii_punctuation() && !b"/()$@!".contains(&byte))
}

/// A folded `text` without its whitespace (`' '` and `'\n'`, the only kinds a
/// folded text has) and without the punctuation a spelled-out word may be
/// written with (see [`is_squashed_separator`]),
/// digits and symbols read as the letters they stand for, and the offsets (in
/// the result) where anything was removed.
fn squash(text: &str) -> (String, Vec<usize>) {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut gaps = Vec::new();
    for &byte in text.as_bytes() {
        if is_squashed_separator(byte) {
            if gaps.last() != Some(&out.len()) {
                gaps.push(out.len());
            }
        } else {
            out.push(letter_for(byte));
        }
    }
    (String::from_utf8(out).expect("removing ASCII bytes keeps UTF-8 valid"), gaps)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

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

    proptest::proptest! {
        /// The raw view, found in one pass, is what `detect_markings` finds line by line.
        #[test]
        fn the_raw_view_reads_as_detect_markings_does(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec!["NATO ", "COSMIC ", "SECRET", "TOP SECRET", "CONFIDENTIAL", "(NS)", "(NC)", " ATOMAL", " Releasable To ", "GBR", ", ", "\n", "\r\n", "x", " "]).prop_map(str::to_owned),
                    "\\PC{0,4}",
                ],
                0..14,
            )
        ) {
            let text = pieces.concat();
            let policies = crate::Policies::nato();
            let policy = policies.default_policy();
            let scanner = MarkingScanner::new(Arc::clone(policy));
            let mut found = None;
            scanner.read(policy, &scanner.raw, &text, &mut found, None);
            proptest::prop_assert_eq!(found, policy.detect_markings(&text), "{:?}", text);
        }
    }

    #[test]
    fn squashing_records_where_spaces_were() {
        assert_eq!(squash("N A  TO"), ("NATO".to_owned(), vec![1, 2]));
        assert_eq!(squash(" x "), ("x".to_owned(), vec![0, 1]));
    }
}
