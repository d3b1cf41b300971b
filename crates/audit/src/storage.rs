//! Where the log's files live: a small interface with a plain filesystem
//! driver, so an object store can be added without touching the log.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Storage for the log's files, addressed by their tlog-tiles paths.
pub trait Storage: Send + Sync {
    /// The file at `path`, or `None` when there is none.
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Writes a whole file. A reader never sees it half-written, and after
    /// [`Storage::sync`] returns it survives a crash.
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> io::Result<()>;
}

/// The log in a directory of the local filesystem.
pub struct FsStorage {
    root: PathBuf,
    /// Directories with renames not yet made durable.
    dirty: Mutex<Vec<PathBuf>>,
}

impl FsStorage {
    /// Storage in `root`, created if missing.
    pub fn new(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self { root: root.to_path_buf(), dirty: Mutex::new(Vec::new()) })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Storage for FsStorage {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.root.join(path)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let target = self.root.join(path);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let mut created = Vec::new();
        let mut missing = dir.as_path();
        while !missing.exists() && missing != self.root {
            created.push(missing.parent().unwrap_or(&self.root).to_path_buf());
            missing = missing.parent().unwrap_or(&self.root);
        }
        fs::create_dir_all(&dir)?;
        // Written beside the target, made durable, then renamed over it: never a torn file.
        let temporary =
            dir.join(format!(".{}.tmp", target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        let mut file = File::create(&temporary)?;
        file.write_all(data)?;
        file.sync_data()?;
        fs::rename(&temporary, &target)?;
        // The new file's name, and any new directory's, must reach the disk too.
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        for dir in created.into_iter().chain([dir]) {
            if !dirty.contains(&dir) {
                dirty.push(dir);
            }
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(dir) = dirty.last() {
            // On failure the directory stays listed, so the next sync tries it again.
            File::open(dir)?.sync_all()?;
            dirty.pop();
        }
        Ok(())
    }
}
