//! Why a model could not be signed, verified, sealed or opened. Every error
//! names the file at fault when there is one.

use std::path::{Path, PathBuf};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model directory cannot be signed or sealed as it is.
    #[error("{0}")]
    Model(String),
    /// A key is missing, malformed or of an unsupported kind.
    #[error("{0}")]
    Key(String),
    /// A signature is malformed or does not verify.
    #[error("{0}")]
    Signature(String),
    /// The files differ from what the signature lists.
    #[error("the model does not match its signature: {}", describe(changed, missing, extra))]
    Mismatch {
        /// Files whose content changed.
        changed: Vec<String>,
        /// Signed files that are gone.
        missing: Vec<String>,
        /// Files that are not signed.
        extra: Vec<String>,
    },
    /// A sealed file is tampered with, truncated, reordered, or opened with the wrong key.
    #[error("sealed file '{file}': {reason}")]
    Sealed {
        /// The file, relative to the sealed directory.
        file: String,
        /// Why it was refused.
        reason: String,
    },
    /// A sealed model's manifest is malformed or was altered.
    #[error("sealed model manifest '{}': {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A key-encryption key cannot be used.
    #[error("key-encryption key: {0}")]
    Kek(String),
}

fn describe(changed: &[String], missing: &[String], extra: &[String]) -> String {
    let mut parts = Vec::new();
    for (what, files) in [("changed", changed), ("missing", missing), ("not signed", extra)] {
        if !files.is_empty() {
            parts.push(format!("{what}: {}", files.join(", ")));
        }
    }
    parts.join("; ")
}

impl SealError {
    /// A stable code for the audit log and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SealError::Io { .. } => "model_unreadable",
            SealError::Model(_) => "model_refused",
            SealError::Key(_) | SealError::Signature(_) | SealError::Mismatch { .. } => "model_signature_invalid",
            SealError::Sealed { .. } | SealError::Manifest { .. } => "model_seal_broken",
            SealError::Kek(_) => "model_wrong_key",
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        SealError::Io { path: path.to_path_buf(), source }
    }
}
