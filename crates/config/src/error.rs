//! Configuration errors that name the file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::validate::KeyPath;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the text came from one.
    pub file: Option<PathBuf>,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// Dotted path of the offending key, e.g. `backends[0].url`.
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
    /// Key path not yet turned into a line (before `locate`).
    pending: Option<KeyPath>,
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn plain(message: String) -> Self {
        Self { file: None, line: None, key: None, message, pending: None }
    }

    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        Self { file: Some(path.to_path_buf()), ..Self::plain(format!("cannot read the configuration file: {err}")) }
    }

    /// An error at a key whose line is found later by [`ConfigError::locate`].
    pub(crate) fn at(key: KeyPath, message: String) -> Self {
        Self { key: Some(key.to_string()), pending: Some(key), ..Self::plain(message) }
    }

    pub(crate) fn from_toml(text: &str, err: &toml::de::Error) -> Self {
        let line = err.span().map(|span| line_of(text, span.start));
        let key = line.and_then(|l| text.lines().nth(l - 1)).and_then(|src| {
            let (key, _) = src.split_once('=')?;
            let key = key.trim();
            (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
        });
        Self { line, key, ..Self::plain(err.message().trim().to_owned()) }
    }

    pub(crate) fn locate(mut self, document: &toml_edit::Document<String>, text: &str) -> Self {
        if let Some(path) = self.pending.take() {
            self.line = crate::locate::span_of(document, &path).map(|span| line_of(text, span.start));
        }
        self
    }

    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_path_buf());
        self
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key '{key}': ")?;
        }
        write!(f, "{}", self.message)
    }
}
