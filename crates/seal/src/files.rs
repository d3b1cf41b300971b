//! The files of a model directory: walked in a stable order, each hashed with
//! SHA-256, as OpenSSF model signing's `files` serialization does.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256};

use crate::SealError;

/// Paths never signed, as the reference tool leaves them out by default.
pub const DEFAULT_IGNORED: [&str; 4] = [".gitignore", ".gitattributes", ".github", ".git"];

/// Bytes read at a time while hashing.
pub const BUFFER: usize = 4 << 20;

/// One file of a model and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Path relative to the model directory, `/`-separated.
    pub name: String,
    /// SHA-256 of its content.
    pub digest: [u8; 32],
}

/// The regular files under `dir`, relative `/`-separated names sorted by path
/// component, leaving out [`DEFAULT_IGNORED`] and `ignored` (relative paths; a
/// directory's whole tree). A symbolic link is refused: a signed model is its
/// files, not pointers.
pub fn list(dir: &Path, ignored: &[String]) -> Result<Vec<(String, PathBuf)>, SealError> {
    let mut all: Vec<String> = DEFAULT_IGNORED.iter().map(|s| (*s).to_owned()).collect();
    all.extend(ignored.iter().cloned());
    let mut found = Vec::new();
    walk(dir, dir, &all, &mut found)?;
    found.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
    Ok(found)
}

fn walk(root: &Path, dir: &Path, ignored: &[String], found: &mut Vec<(String, PathBuf)>) -> Result<(), SealError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SealError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SealError::io(dir, e))?;
        let path = entry.path();
        let name = relative_name(root, &path)?;
        if ignored.iter().any(|i| name == *i || name.starts_with(&format!("{i}/"))) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| SealError::io(&path, e))?;
        if kind.is_symlink() {
            return Err(SealError::Model(format!(
                "'{name}' is a symbolic link; a model's files must be regular files"
            )));
        } else if kind.is_dir() {
            walk(root, &path, ignored, found)?;
        } else if kind.is_file() {
            found.push((name, path));
        }
    }
    Ok(())
}

/// `path` relative to `root`, `/`-separated.
fn relative_name(root: &Path, path: &Path) -> Result<String, SealError> {
    let relative = path.strip_prefix(root).map_err(|_| SealError::Model(format!("'{}' is outside", path.display())))?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    parts
        .map(|p| p.join("/"))
        .ok_or_else(|| SealError::Model(format!("'{}' is not a UTF-8 relative path", relative.display())))
}

/// The relative name of `path` inside `dir`, if it is inside.
pub fn inside(dir: &Path, path: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let parent = std::fs::canonicalize(path.parent()?).ok()?;
    relative_name(&dir, &parent.join(path.file_name()?)).ok()
}

/// Total size of the listed files, for progress.
pub fn total_size(files: &[(String, PathBuf)]) -> u64 {
    files.iter().filter_map(|(_, path)| std::fs::metadata(path).ok()).map(|m| m.len()).sum()
}

/// Hashes each listed file, reporting bytes read to `progress`.
pub fn hash(files: &[(String, PathBuf)], progress: &mut dyn FnMut(u64)) -> Result<Vec<Resource>, SealError> {
    let mut buffer = vec![0u8; BUFFER];
    let mut resources = Vec::with_capacity(files.len());
    for (name, path) in files {
        let mut file = std::fs::File::open(path).map_err(|e| SealError::io(path, e))?;
        let mut context = Context::new(&SHA256);
        loop {
            let n = file.read(&mut buffer).map_err(|e| SealError::io(path, e))?;
            if n == 0 {
                break;
            }
            context.update(&buffer[..n]);
            progress(n as u64);
        }
        resources.push(Resource { name: name.clone(), digest: digest32(context) });
    }
    Ok(resources)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A finished SHA-256 as an array.
pub fn digest32(context: Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}
