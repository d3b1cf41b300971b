//! Display markings generated from a SPIF's marking data, parsed back, and
//! found in free text.
//!
//! A banner is: the values of permissive tags that have no marking qualifier
//! (NATO's `Context`), the classification's banner phrase, then every other
//! tag with values, in SPIF order, as `prefix value<separator>value suffix`.
//! The NATO policy gives `NATO SECRET`, `COSMIC TOP SECRET` when the `NATO`
//! context is marked with its second phrase, `NATO SECRET ATOMAL` and
//! `NATO SECRET Releasable To United Kingdom, United States of America`.
//! A portion marking is the classification's portion phrase, which states the
//! policy's own context (NATO's `N`), then `//`-separated category groups:
//! `(NS)`, `(NS//ATOMAL//REL TO GBR, USA)`.
//!
//! Parsing accepts every phrase of the SPIF (all languages) and, for category
//! values, their names too (`GBR` as well as `United Kingdom`), ignoring case.
//! Text detection is stricter to avoid false alarms: a classification phrase
//! counts only as the SPIF writes it (so `SECRET`, not `secret`), as a whole
//! word, and a portion marking only in parentheses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::{CategoryTag, Label, LabelError, SecurityPolicy};

impl Label {
    /// The banner (page top and bottom) marking.
    pub fn banner(&self) -> String {
        let policy = self.policy();
        let mut before = Vec::new();
        let mut after = Vec::new();
        for tag in &policy.tags {
            let Some(values) = self.categories().get(&tag.name) else { continue };
            let phrases: Vec<&str> = tag
                .values
                .iter()
                .filter(|v| values.contains(&v.name))
                .map(|v| v.phrases.first().map_or(v.name.as_str(), String::as_str))
                .collect();
            if tag.marks_before_classification() {
                before.push(phrases.join(&tag.separator));
                continue;
            }
            let mut part = String::new();
            if let Some(prefix) = &tag.prefix {
                part.push_str(prefix);
                part.push(' ');
            }
            part.push_str(&phrases.join(&tag.separator));
            if let Some(suffix) = &tag.suffix {
                part.push(' ');
                part.push_str(suffix);
            }
            after.push(part);
        }
        let class = &policy.classifications[self.level()];
        let class_phrase = class.banner.first().unwrap_or(&class.name).clone();
        before.into_iter().chain(std::iter::once(class_phrase)).chain(after).collect::<Vec<_>>().join(" ")
    }

    /// The portion marking with every category the label holds:
    /// `(NS)`, `(NS//ATOMAL//REL TO GBR, USA)`, `(NS//NATO/PFP)`. The portion
    /// phrase states the policy's own context ([`SecurityPolicy::portion_context`],
    /// NATO's `N`), so a label of that context alone writes no context; a label
    /// with no context at all writes the classification's banner phrase
    /// instead (`(SECRET)`), which states none.
    pub fn portion(&self) -> String {
        let policy = self.policy();
        let class = &policy.classifications[self.level()];
        let implied = policy.portion_context();
        let context_free = implied.is_some_and(|(tag, _)| !self.categories().contains_key(&tag.name));
        let (phrase, states_context) = match &class.portion {
            Some(portion) if !context_free => (portion, implied.is_some()),
            _ => (class.banner.first().unwrap_or(&class.name), false),
        };
        let mut segments = vec![phrase.clone()];
        for tag in &policy.tags {
            let Some(values) = self.categories().get(&tag.name) else { continue };
            let held = tag.values.iter().filter(|v| values.contains(&v.name));
            let phrase_of = |v: &crate::TagValue| v.phrases.first().map_or(v.name.as_str(), String::as_str).to_owned();
            if tag.marks_before_classification() {
                let stated =
                    implied.is_some_and(|(t, v)| t.name == tag.name && values.len() == 1 && values.contains(&v.name));
                if !(stated && states_context) {
                    segments.push(held.map(phrase_of).collect::<Vec<_>>().join(&tag.separator));
                }
                continue;
            }
            let mut segment = String::new();
            if let Some(prefix) = &tag.prefix {
                // A prefixed list names its values (`REL TO GBR, USA`), as portion markings do.
                segment.push_str(short_prefix(prefix).unwrap_or(prefix));
                segment.push(' ');
                segment.push_str(&held.map(|v| v.name.as_str()).collect::<Vec<_>>().join(&tag.separator));
            } else {
                segment.push_str(&held.map(phrase_of).collect::<Vec<_>>().join(&tag.separator));
            }
            if let Some(suffix) = &tag.suffix {
                segment.push(' ');
                segment.push_str(suffix);
            }
            segments.push(segment);
        }
        format!("({})", segments.join("//"))
    }
}

/// Where a phrase matches at `pos`, the end of the match: whole words only.
pub(crate) fn match_at(text: &str, pos: usize, phrase: &str, exact_case: bool) -> Option<usize> {
    let end = pos + phrase.len();
    if phrase.is_empty() || end > text.len() || !text.is_char_boundary(end) {
        return None;
    }
    let candidate = &text[pos..end];
    let same = if exact_case { candidate == phrase } else { candidate.eq_ignore_ascii_case(phrase) };
    let boundary = text[end..].chars().next().is_none_or(|c| !c.is_alphanumeric());
    (same && boundary).then_some(end)
}

fn skip_separators(text: &str, mut pos: usize) -> usize {
    while let Some(c) = text[pos..].chars().next() {
        if c.is_whitespace() || c == ',' || c == '/' || c == ';' {
            pos += c.len_utf8();
        } else {
            break;
        }
    }
    pos
}

/// The longest value of `tag` (by phrase or by name) at `pos`; of two as
/// long, the one written in the same case (`GEORGIA` the value named so,
/// `Georgia` the value whose phrase it is), else the first.
fn match_value<'t>(text: &str, pos: usize, tag: &'t CategoryTag) -> Option<(usize, &'t str)> {
    let mut best: Option<(usize, bool, &str)> = None;
    for value in &tag.values {
        for phrase in value.phrases.iter().map(String::as_str).chain(std::iter::once(value.name.as_str())) {
            if let Some(end) = match_at(text, pos, phrase, false) {
                let exact = text[pos..end] == *phrase;
                if best.is_none_or(|(e, x, _)| (end, exact) > (e, x)) {
                    best = Some((end, exact, value.name.as_str()));
                }
            }
        }
    }
    best.map(|(end, _, name)| (end, name))
}

/// The next value of a list of `tag`'s values that ended at `end`: after the
/// first value, only when the tag's separator (e.g. `, `) comes first, so that
/// `Releasable To Germany Germany Only` ends the list after one value.
fn next_value<'t>(text: &str, end: usize, tag: &'t CategoryTag, after_first: bool) -> Option<(usize, &'t str)> {
    let separator = tag.separator.trim();
    if after_first && !separator.is_empty() && !text[end..].trim_start().starts_with(separator) {
        return None;
    }
    match_value(text, skip_separators(text, end), tag)
}

/// Parses a banner starting at `pos`. `strict` demands that the whole text is
/// a marking; otherwise parsing stops at the first unknown word.
pub(crate) fn parse_banner(
    policy: &Arc<SecurityPolicy>,
    text: &str,
    mut pos: usize,
    strict: bool,
) -> Result<(Label, usize), LabelError> {
    let mut categories: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Context-like tags before the classification.
    pos = skip_separators(text, pos);
    'before: loop {
        for tag in policy.tags.iter().filter(|t| t.marks_before_classification()) {
            if let Some((end, value)) = match_value(text, pos, tag) {
                categories.entry(tag.name.clone()).or_default().insert(value.to_owned());
                pos = skip_separators(text, end);
                continue 'before;
            }
        }
        break;
    }
    let mut class: Option<(usize, usize)> = None;
    for (index, classification) in policy.classifications.iter().enumerate() {
        for phrase in &classification.banner {
            if let Some(end) = match_at(text, pos, phrase, false)
                && class.is_none_or(|(_, e)| end > e)
            {
                class = Some((index, end));
            }
        }
    }
    let Some((level, mut end)) = class else {
        // The text is not repeated: it may be anything a caller or a document holds.
        return Err(LabelError::invalid(format!(
            "marking: expected a classification of policy {} at character {}",
            policy.name,
            text[..pos].chars().count() + 1
        )));
    };
    pos = end;
    loop {
        let next = skip_separators(text, pos);
        if next == text.len() {
            end = pos;
            break;
        }
        let Some(found) = parse_category(policy, text, next, &mut categories)? else {
            if strict {
                return Err(LabelError::invalid(format!(
                    "marking: text at character {} is not a category of policy {}",
                    text[..next].chars().count() + 1,
                    policy.name
                )));
            }
            end = pos;
            break;
        };
        pos = found;
    }
    Ok((Label::normal(Arc::clone(policy), level, categories), end))
}

/// One category group after the classification: a prefixed list, or values
/// of an unprefixed tag (with its suffix, if any). Returns where it ended.
fn parse_category(
    policy: &SecurityPolicy,
    text: &str,
    pos: usize,
    categories: &mut BTreeMap<String, BTreeSet<String>>,
) -> Result<Option<usize>, LabelError> {
    for tag in policy.tags.iter().filter(|t| !t.marks_before_classification()) {
        let Some(prefix) = &tag.prefix else { continue };
        let short = short_prefix(prefix).and_then(|short| match_at(text, pos, short, false));
        let Some(mut end) = match_at(text, pos, prefix, false).or(short) else { continue };
        let mut any = false;
        while let Some((value_end, value)) = next_value(text, end, tag, any) {
            categories.entry(tag.name.clone()).or_default().insert(value.to_owned());
            end = value_end;
            any = true;
        }
        if !any {
            return Err(LabelError::invalid(format!("marking: '{prefix}' is not followed by a value")));
        }
        return Ok(Some(end));
    }
    let unprefixed: Vec<&CategoryTag> =
        policy.tags.iter().filter(|t| t.prefix.is_none() && !t.marks_before_classification()).collect();
    let matches: Vec<(&CategoryTag, usize, &str)> =
        unprefixed.iter().filter_map(|tag| match_value(text, pos, tag).map(|(e, v)| (*tag, e, v))).collect();
    let Some(&(tag, mut end, value)) = matches.iter().max_by_key(|(_, e, _)| *e) else { return Ok(None) };
    if matches.iter().filter(|(_, e, _)| *e == end).count() > 1 {
        return Err(LabelError::invalid(format!(
            "marking: '{}' is ambiguous in policy {}",
            &text[pos..end],
            policy.name
        )));
    }
    categories.entry(tag.name.clone()).or_default().insert(value.to_owned());
    // Further values of the same tag, then its suffix.
    while let Some((value_end, value)) = next_value(text, end, tag, true) {
        categories.entry(tag.name.clone()).or_default().insert(value.to_owned());
        end = value_end;
    }
    if let Some(suffix) = &tag.suffix
        && let Some(suffix_end) = match_at(text, skip_separators(text, end), suffix, false)
    {
        end = suffix_end;
    }
    Ok(Some(end))
}

/// The customary short form of a category prefix the SPIF spells out: `REL TO`
/// for `Releasable To`, as banner and portion markings write it
/// (`NATO SECRET REL TO GBR, USA`, `(NS//REL TO GBR, USA)`).
fn short_prefix(prefix: &str) -> Option<&'static str> {
    prefix.eq_ignore_ascii_case("Releasable To").then_some("REL TO")
}

/// The longest inside of a portion marking read in text, in bytes (a
/// releasability list of every nation of the alliance fits).
const MAX_PORTION_BYTES: usize = 4096;

/// The label of the portion marking of classification `level` whose `(` is at
/// `start` in `text`. An inside that does not parse, or has no `)` within
/// [`MAX_PORTION_BYTES`], still states its classification and the context of
/// its portion phrase; when it also states categories (`//`) that cannot be
/// read, it reads as [`portion_unreadable`]: what the text says is never read lower.
pub(crate) fn portion_in_text(policy: &Arc<SecurityPolicy>, text: &str, start: usize, level: usize) -> Label {
    let inner_start = start + 1;
    let mut window_end = (inner_start + MAX_PORTION_BYTES).min(text.len());
    while !text.is_char_boundary(window_end) {
        window_end -= 1;
    }
    let window = &text[inner_start..window_end];
    let inner = window.find(')').map(|close| &window[..close]);
    match inner.and_then(|inner| parse_portion(policy, inner)).filter(|label| label.level() == level) {
        Some(label) => label,
        None if inner.unwrap_or(window).contains('/') => portion_unreadable(policy, level),
        None => portion_level(policy, level),
    }
}

/// What a portion phrase alone states: its classification and the policy's own context.
pub(crate) fn portion_level(policy: &Arc<SecurityPolicy>, level: usize) -> Label {
    let mut categories = BTreeMap::new();
    if let Some((tag, value)) = policy.portion_context() {
        categories.insert(tag.name.clone(), BTreeSet::from([value.name.clone()]));
    }
    Label::normal(Arc::clone(policy), level, categories)
}

/// A marking of classification `level` whose categories are stated but
/// cannot be read (disguised, or cut short): releasable to nobody, since any
/// release it meant may be narrower than any reader's. Every permissive tag
/// marked after the classification (NATO's `Releasable To`) is held empty.
pub(crate) fn portion_unreadable(policy: &Arc<SecurityPolicy>, level: usize) -> Label {
    let mut categories = portion_level(policy, level).categories().clone();
    for tag in policy.tags.iter().filter(|t| t.kind == crate::TagKind::Permissive && !t.marks_before_classification()) {
        categories.insert(tag.name.clone(), BTreeSet::new());
    }
    Label::normal(Arc::clone(policy), level, categories)
}

/// The values of context-like tags (those marked before the classification)
/// that make up the whole of `segment`, if it is nothing else.
fn context_values<'p>(policy: &'p SecurityPolicy, segment: &str) -> Option<Vec<(&'p str, &'p str)>> {
    let mut found = Vec::new();
    let mut pos = skip_separators(segment, 0);
    while pos < segment.len() {
        let (end, tag, value) = policy
            .tags
            .iter()
            .filter(|t| t.marks_before_classification())
            .find_map(|tag| match_value(segment, pos, tag).map(|(end, value)| (end, tag.name.as_str(), value)))?;
        found.push((tag, value));
        pos = skip_separators(segment, end);
    }
    (!found.is_empty()).then_some(found)
}

/// A portion marking's inside: a classification's portion phrase (which
/// states the policy's own context) or banner phrase (which states none),
/// then `//`-separated groups of categories as a banner writes them
/// (`NS//ATOMAL//REL TO GBR, USA`), context values included (`NS//NATO/PFP`).
pub(crate) fn parse_portion(policy: &Arc<SecurityPolicy>, inner: &str) -> Option<Label> {
    let mut segments = inner.split("//");
    let class = segments.next()?.trim();
    let by_portion =
        policy.classifications.iter().position(|c| c.portion.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(class)));
    let level = by_portion.or_else(|| {
        policy.classifications.iter().position(|c| c.banner.iter().any(|b| b.eq_ignore_ascii_case(class)))
    })?;
    let mut context: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rest = Vec::new();
    for segment in segments {
        match context_values(policy, segment) {
            Some(values) => {
                for (tag, value) in values {
                    context.entry(tag.to_owned()).or_default().insert(value.to_owned());
                }
            }
            None => rest.push(segment.trim()),
        }
    }
    if context.is_empty()
        && by_portion.is_some()
        && let Some((tag, value)) = policy.portion_context()
    {
        context.insert(tag.name.clone(), BTreeSet::from([value.name.clone()]));
    }
    let classification = &policy.classifications[level];
    let phrase = classification.banner.first().unwrap_or(&classification.name);
    let (label, _) = parse_banner(policy, &format!("{phrase} {}", rest.join(" ")), 0, true).ok()?;
    if label.level() != level {
        return None;
    }
    let mut categories = label.categories().clone();
    categories.extend(context);
    Some(Label::normal(Arc::clone(policy), level, categories))
}

impl SecurityPolicy {
    /// The context a portion phrase states by its form: the value, of a tag
    /// marked before the classification, named as the policy itself (NATO's
    /// `Context` `NATO`, the `N` of `(NS)` and the `C` of `(CTS)`).
    pub fn portion_context(&self) -> Option<(&CategoryTag, &crate::TagValue)> {
        self.tags
            .iter()
            .filter(|t| t.marks_before_classification())
            .find_map(|tag| tag.value(&self.name).map(|value| (tag, value)))
    }

    /// Parses a banner or portion marking of this policy.
    pub fn parse_marking(self: &Arc<Self>, marking: &str) -> Result<Label, LabelError> {
        let marking = marking.trim();
        if let Some(inner) = marking.strip_prefix('(').and_then(|m| m.strip_suffix(')')) {
            return parse_portion(self, inner)
                .ok_or_else(|| LabelError::invalid(format!("marking: not a portion marking of {}", self.name)));
        }
        parse_banner(self, marking, 0, true).map(|(label, _)| label)
    }

    /// The high-water mark of every marking found in `text`, if any is.
    pub fn detect_markings(self: &Arc<Self>, text: &str) -> Option<Label> {
        let mut found: Option<Label> = None;
        let mut add = |label: Label| {
            found = Some(match found.take() {
                // Same policy by construction, so the join cannot fail.
                Some(current) => current.join(&label).unwrap_or(current),
                None => label,
            });
        };
        for (level, classification) in self.classifications.iter().enumerate() {
            if let Some(portion) = &classification.portion {
                let needle = format!("({portion}");
                for (pos, _) in text.match_indices(&needle) {
                    if matches!(text.as_bytes().get(pos + needle.len()), Some(b')' | b'/')) {
                        add(portion_in_text(self, text, pos, level));
                    }
                }
            }
            // A banner ends with its line.
            for line in text.lines() {
                for phrase in &classification.banner {
                    for (pos, _) in line.match_indices(phrase.as_str()) {
                        let starts_word = line[..pos].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
                        if !starts_word || match_at(line, pos, phrase, true).is_none() {
                            continue;
                        }
                        let start = self.context_start(line, pos);
                        if let Ok((label, _)) = parse_banner(self, line, start, false) {
                            add(label);
                        }
                    }
                }
            }
        }
        found
    }

    /// Moves a banner's start back over the context phrases right before it.
    pub(crate) fn context_start(&self, text: &str, mut pos: usize) -> usize {
        'back: loop {
            let head = text[..pos].trim_end();
            for tag in self.tags.iter().filter(|t| t.marks_before_classification()) {
                // Every phrase, and the name (what a banner writes for a value with no phrase).
                let phrases = tag.values.iter().flat_map(|v| v.phrases.iter().chain(std::iter::once(&v.name)));
                for phrase in phrases {
                    if head.ends_with(phrase.as_str()) {
                        let start = head.len() - phrase.len();
                        let starts_word = head[..start].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
                        if starts_word && start < pos {
                            pos = start;
                            continue 'back;
                        }
                    }
                }
            }
            return pos;
        }
    }
}
