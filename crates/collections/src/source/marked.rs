//! Marked text or Markdown. The first non-empty line is the document's banner
//! marking (`NATO SECRET`), unless a STANAG 4774 sidecar gives its label (then
//! a banner line, if there is one, must say the same). Paragraphs are separated
//! by blank lines, and each begins with its portion marking (`(NS)`,
//! `(NC//REL TO GBR, USA)`); a line that begins with a portion marking starts
//! a new portion wherever it stands. Unmarked text takes the document's label
//! wherever it stands: the conservative choice, since text of unknown level is
//! treated as the highest the document may hold. A heading is its line alone;
//! the first (`# (NU) Title`) is the title. A last line repeating the banner
//! is the bottom banner and no portion. A first line that is neither a heading
//! nor begins with a portion marking must be a banner that parses, sidecar or not.

use rampart_labels::{Label, Policies};

use crate::document::{Document, DocumentError, Portion};

/// How far into a paragraph its portion marking may close (a releasability
/// list of every nation of the alliance fits).
const MAX_MARKING: usize = 4096;

/// A paragraph: where it starts, and its lines joined.
struct Paragraph {
    line: usize,
    text: String,
}

/// The document `id` read from `text` (of `file`); `sidecar` is the label
/// file beside it and its XML, if there is one.
pub fn read(
    policies: &Policies,
    file: &str,
    id: &str,
    text: &str,
    sidecar: Option<(&str, &str)>,
) -> Result<Document, DocumentError> {
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let at = |line: usize| format!("{file}:{line}");
    let Some(first) = lines.iter().position(|(_, l)| !l.trim().is_empty()) else {
        return Err(DocumentError::at(file, "the file is empty: a document needs a banner marking and portions"));
    };
    let (first_line, banner_text) = (lines[first].0, lines[first].1.trim());
    let looks_like_banner = !banner_text.starts_with('(') && !banner_text.starts_with('#');
    let banner = looks_like_banner.then(|| policies.parse_label(banner_text));
    let (label, body_start) = match (sidecar, banner) {
        (Some((sidecar_file, _)), Some(Err(_))) => {
            return Err(DocumentError::at(
                at(first_line),
                format!(
                    "the first line is not a banner marking of this site's policies; make it the banner \
                     (agreeing with {sidecar_file}), or begin the document with a heading or a portion marking"
                ),
            ));
        }
        (Some((sidecar_file, xml)), banner) => {
            let label = policies
                .parse_label_xml(xml)
                .map_err(|e| DocumentError::at(sidecar_file, format!("not a STANAG 4774 label of this site: {e}")))?;
            match banner {
                Some(Ok(said)) if !(said.dominates(&label) && label.dominates(&said)) => {
                    return Err(DocumentError::at(
                        at(first_line),
                        format!(
                            "the banner line says {} but {sidecar_file} says {}; make them agree or remove the banner line",
                            said.banner(),
                            label.banner()
                        ),
                    ));
                }
                Some(Ok(_)) => (label, first + 1),
                Some(Err(_)) | None => (label, first),
            }
        }
        (None, Some(Ok(label))) => (label, first + 1),
        (None, _) => {
            // The line itself is not repeated: it may be anything the file holds.
            return Err(DocumentError::at(
                at(first_line),
                format!(
                    "the first line must be the document's banner marking, such as 'NATO SECRET'; \
                     or give the document's label as a STANAG 4774 label in {id}.label.xml"
                ),
            ));
        }
    };
    let mut body = &lines[body_start..];
    // The bottom banner repeats the top one.
    if let Some(last) = body.iter().rposition(|(_, l)| !l.trim().is_empty())
        && body_start > first
        && body[last].1.trim() == banner_text
    {
        body = &body[..last];
    }
    let mut title: Option<(String, Label)> = None;
    let mut portions = Vec::new();
    for paragraph in paragraphs(body) {
        let origin = at(paragraph.line);
        let (heading, text) = match paragraph.text.strip_prefix('#') {
            Some(rest) => (true, rest.trim_start_matches('#').trim_start()),
            None => (false, paragraph.text.as_str()),
        };
        let (marked, text) = portion_marking(&label, text).map_err(|reason| DocumentError::at(&origin, reason))?;
        if text.is_empty() {
            return Err(DocumentError::at(&origin, "a portion marking with no text after it"));
        }
        let portion_label = marked.unwrap_or_else(|| label.clone());
        if heading && title.is_none() {
            title = Some((text.to_owned(), portion_label));
            continue;
        }
        portions.push(Portion { label: portion_label, text: text.to_owned(), origin, embedding: Vec::new() });
    }
    let (title, title_label) = title.unwrap_or_else(|| (id.to_owned(), label.clone()));
    Ok(Document { id: id.to_owned(), title, title_label, label, portions, origin: file.to_owned(), version: 1 })
}

/// The paragraphs of `lines`: runs of non-blank lines, where a heading is its
/// line alone and a line that begins with a portion marking starts a new one.
fn paragraphs(lines: &[(usize, &str)]) -> Vec<Paragraph> {
    let mut out: Vec<Paragraph> = Vec::new();
    let mut open = false;
    for (number, line) in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            open = false;
            continue;
        }
        let heading = trimmed.starts_with('#');
        if open
            && !heading
            && marking_end(trimmed).is_none()
            && let Some(last) = out.last_mut()
        {
            last.text.push('\n');
            last.text.push_str(line.trim_end());
        } else {
            out.push(Paragraph { line: *number, text: trimmed.to_owned() });
        }
        open = !heading;
    }
    out
}

/// Where the portion marking `text` begins with ends (at its `)`), if it
/// begins with something that looks like one: `(`, one to four capitals,
/// then `)` or `//` and categories, closed within [`MAX_MARKING`] bytes.
fn marking_end(text: &str) -> Option<usize> {
    if !text.starts_with('(') {
        return None;
    }
    let (close, _) = text.char_indices().take_while(|(i, _)| *i < MAX_MARKING).find(|(_, c)| *c == ')')?;
    let class = text[1..close].split("//").next().unwrap_or_default().trim();
    ((1..=4).contains(&class.len()) && class.chars().all(|c| c.is_ascii_uppercase())).then_some(close)
}

/// The portion marking a paragraph begins with, if any, and the text after
/// it. Parenthesised text that looks like a marking must be one of the
/// document's policy.
fn portion_marking<'t>(document: &Label, text: &'t str) -> Result<(Option<Label>, &'t str), String> {
    let Some(close) = marking_end(text) else {
        return Ok((None, text));
    };
    // The marking is not repeated in the error: its inside may be any text of the file.
    let label = document.policy().parse_marking(&text[..=close]).map_err(|_| {
        format!("the paragraph begins with a portion marking that is not one of policy {}", document.policy().name)
    })?;
    Ok((Some(label), text[close + 1..].trim_start()))
}
