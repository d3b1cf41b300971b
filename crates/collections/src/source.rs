//! Reading documents from files: marked text or Markdown (`.md`,
//! `.markdown`, `.txt`) and JSON Lines (`.jsonl`). A directory is read for
//! those files, recursively, in name order; `NAME.label.xml` files are the
//! labels of `NAME.md` (or `.txt`), not documents.

use std::path::{Path, PathBuf};

use rampart_labels::Policies;

use crate::document::{Document, DocumentError};

mod jsonl;
mod marked;

/// The suffix of a STANAG 4774 label sidecar.
pub const SIDECAR_SUFFIX: &str = ".label.xml";

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

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), DocumentError> {
    let unreadable = |e: std::io::Error| DocumentError::at(dir.display().to_string(), format!("cannot be read: {e}"));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, found)?;
        } else if Format::of(&path).is_some() {
            found.push(path);
        }
    }
    Ok(())
}

/// The documents of one file, each checked (see [`Document::check`]).
pub fn read(policies: &Policies, path: &Path) -> Result<Vec<Document>, DocumentError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DocumentError::at(&shown, format!("cannot be read: {e}")))?;
    let documents = match Format::of(path) {
        Some(Format::JsonLines) => jsonl::read(policies, &shown, &text)?,
        Some(Format::Marked) => {
            let sidecar = sidecar_of(path);
            let label_xml = match std::fs::read_to_string(&sidecar) {
                Ok(xml) => Some((sidecar.display().to_string(), xml)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(DocumentError::at(sidecar.display().to_string(), format!("cannot be read: {e}"))),
            };
            let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            vec![marked::read(policies, &shown, id, &text, label_xml.as_ref().map(|(f, x)| (f.as_str(), x.as_str())))?]
        }
        None => return Err(DocumentError::at(&shown, "not a document file")),
    };
    for document in &documents {
        document.check()?;
    }
    Ok(documents)
}

/// `NAME.label.xml` beside `NAME.md`.
fn sidecar_of(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}{SIDECAR_SUFFIX}"))
}
