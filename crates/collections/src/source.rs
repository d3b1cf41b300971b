//! Reading documents from files: marked text or Markdown (`.md`,
//! `.markdown`, `.txt`) and JSON Lines (`.jsonl`). A directory is read for
//! those files, recursively, in name order; `NAME.label.xml` files are the
//! labels of `NAME.md` (or `.txt`), not documents.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use rampart_labels::Policies;

use crate::document::{Document, DocumentError};

mod jsonl;
mod marked;

/// The suffix of a STANAG 4774 label sidecar.
pub const SIDECAR_SUFFIX: &str = ".label.xml";

/// What ingest reads at most (`[collections]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest file read, in bytes.
    pub max_file_bytes: u64,
    /// The longest portion or title, in characters.
    pub max_portion_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_file_bytes: 64 * 1024 * 1024, max_portion_chars: 20_000 }
    }
}

/// The kinds of file documents are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Banner-marked text or Markdown with portion-marked paragraphs.
    Marked,
    /// One JSON document per line.
    JsonLines,
}

impl Format {
    /// The format of a file, by its name; `None` for a file that holds no documents.
    pub fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(SIDECAR_SUFFIX) || name.starts_with('.') {
            return None;
        }
        match path.extension()?.to_str()? {
            "md" | "markdown" | "txt" => Some(Format::Marked),
            "jsonl" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// The files named by `paths` (files as given, directories walked), in order.
/// A file given by name must be one of the formats; one found in a directory
/// that is not is skipped.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DocumentError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| DocumentError::at(path.display().to_string(), format!("cannot be read: {e}")))?;
        if meta.is_dir() {
            walk(path, &mut found)?;
        } else if Format::of(path).is_some() {
            found.push(path.clone());
        } else {
            return Err(DocumentError::at(
                path.display().to_string(),
                "not a document file: give .md, .markdown or .txt (marked text) or .jsonl (JSON Lines)",
            ));
        }
    }
    Ok(found)
}

/// A directory's files are read only where they really are inside it: a
/// symbolic link out of the directory given is refused, never followed.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), DocumentError> {
    let root =
        dir.canonicalize().map_err(|e| DocumentError::at(dir.display().to_string(), format!("cannot be read: {e}")))?;
    walk_within(&root, dir, found)
}

fn walk_within(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), DocumentError> {
    let unreadable = |e: std::io::Error| DocumentError::at(dir.display().to_string(), format!("cannot be read: {e}"));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    entries.sort();
    for path in entries {
        let shown = || path.display().to_string();
        let real = path.canonicalize().map_err(|e| DocumentError::at(shown(), format!("cannot be read: {e}")))?;
        if !real.starts_with(root) {
            return Err(DocumentError::at(
                shown(),
                format!("a symbolic link out of {}: not followed; copy the file in instead", root.display()),
            ));
        }
        if path.is_dir() {
            walk_within(root, &path, found)?;
        } else if Format::of(&path).is_some() {
            found.push(path);
        }
    }
    Ok(())
}

/// A regular file's text, refused beyond `max_bytes` (naming the limit) or
/// when it is not UTF-8.
fn read_text(path: &Path, max_bytes: u64) -> Result<String, DocumentError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| DocumentError::at(&shown, format!("cannot be read: {e}"));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(DocumentError::at(&shown, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(DocumentError::at(
            &shown,
            format!("larger than collections.max_file_bytes ({max_bytes} bytes); split it or raise the limit"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        DocumentError::at(
            &shown,
            format!("not UTF-8 text (byte {}); convert it to UTF-8", e.utf8_error().valid_up_to()),
        )
    })
}

/// Refuses text over the portion limit.
fn check_length(text: &str, what: &str, origin: &str, limits: &Limits) -> Result<(), DocumentError> {
    if text.chars().count() > limits.max_portion_chars {
        return Err(DocumentError::at(
            origin,
            format!(
                "{what} is longer than collections.max_portion_chars ({} characters); split it into paragraphs",
                limits.max_portion_chars
            ),
        ));
    }
    Ok(())
}

/// The documents of one file, each checked (see [`Document::check`]), its
/// portions and title within `limits` and holding no marking above their labels.
pub fn read(policies: &Policies, path: &Path, limits: &Limits) -> Result<Vec<Document>, DocumentError> {
    let shown = path.display().to_string();
    let format = Format::of(path).ok_or_else(|| DocumentError::at(&shown, "not a document file"))?;
    let text = read_text(path, limits.max_file_bytes)?;
    let sidecar = match format {
        Format::Marked => read_sidecar(&sidecar_of(path), limits)?,
        Format::JsonLines => None,
    };
    let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let input =
        Input { file: &shown, id, text: &text, sidecar: sidecar.as_ref().map(|(f, x)| (f.as_str(), x.as_str())) };
    parse(policies, format, &input, limits)
}

/// One file's text as read, for [`parse`].
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The file's name as shown in errors.
    pub file: &'a str,
    /// The document id of a marked-text file (its name without extension).
    pub id: &'a str,
    /// Its text.
    pub text: &'a str,
    /// A marked-text file's STANAG 4774 sidecar: its name and its XML.
    pub sidecar: Option<(&'a str, &'a str)>,
}

/// The documents of one file's text, checked as [`read`] checks them.
pub fn parse(
    policies: &Policies,
    format: Format,
    input: &Input,
    limits: &Limits,
) -> Result<Vec<Document>, DocumentError> {
    let documents = match format {
        Format::JsonLines => jsonl::read(policies, input.file, input.text)?,
        Format::Marked => vec![marked::read(policies, input.file, input.id, input.text, input.sidecar)?],
    };
    for document in &documents {
        check_length(&document.title, "the title", &document.origin, limits)?;
        for portion in &document.portions {
            check_length(&portion.text, "the portion", &portion.origin, limits)?;
        }
        document.check()?;
        document.check_markings(policies)?;
    }
    Ok(documents)
}

/// The sidecar's name and XML, if there is one; never through a symbolic link.
fn read_sidecar(sidecar: &Path, limits: &Limits) -> Result<Option<(String, String)>, DocumentError> {
    let shown = sidecar.display().to_string();
    match std::fs::symlink_metadata(sidecar) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DocumentError::at(shown, format!("cannot be read: {e}"))),
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(DocumentError::at(shown, "a label sidecar may not be a symbolic link; copy the label in instead"))
        }
        Ok(_) => Ok(Some((shown, read_text(sidecar, limits.max_file_bytes)?))),
    }
}

/// `NAME.label.xml` beside `NAME.md`.
fn sidecar_of(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}{SIDECAR_SUFFIX}"))
}
