//! Anonymous memory files (`memfd_create`): decrypted weights live only in
//! memory, yet the engine opens them by path (`/proc/self/fd/N`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use rustix::fs::{MemfdFlags, memfd_create};

use crate::SealError;

/// A file in memory, alive as long as this value (or a mapping of it).
#[derive(Debug)]
pub struct MemoryFile {
    file: File,
}

impl MemoryFile {
    /// A new, empty memory file; `name` shows in `/proc/self/fd` for diagnostics.
    pub fn new(name: &str) -> Result<Self, SealError> {
        let fd = memfd_create(name, MemfdFlags::CLOEXEC)
            .map_err(|e| SealError::Model(format!("an anonymous memory file cannot be created: {e}")))?;
        Ok(Self { file: File::from(fd) })
    }

    /// The file, to write into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The path this process can open it by.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}
