//! The subject directory: certificate subject → clearance, roles, nation.
//!
//! A TOML or JSON file (chosen by its extension, `.json` or anything else for
//! TOML):
//!
//! ```toml
//! [subjects."gbr-secret"]
//! nation = "GBR"                 # optional: default, the certificate's C (if alpha-3)
//! roles = ["analyst"]
//! clearance = { policy = "NATO", classifications = ["SECRET"], categories = { Context = ["NATO"], "Releasable To" = ["GBR"] } }
//! ```
//!
//! A clearance may also be given as STANAG 4774 clearance XML in a string.
//! The file is watched (checked every second) and re-read on SIGHUP; requests
//! on open connections see the new entries at once. A file that no longer
//! parses makes certificate callers fail with `directory_unavailable` until it
//! is fixed: the old entries are not kept, because an edit may have been a
//! revocation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rampart_labels::{Clearance, Policies};
use serde::Deserialize;

use crate::IdentityError;

/// What the directory says of one subject.
#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    /// Nation, if the directory sets it.
    pub nation: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Clearance.
    pub clearance: Clearance,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    subjects: HashMap<String, RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default)]
    nation: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    clearance: RawClearance,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawClearance {
    Json(rampart_labels::ClearanceJson),
    Xml(String),
}

type Entries = Result<Arc<HashMap<String, DirectoryEntry>>, String>;

/// A watched directory file.
pub struct Directory {
    path: PathBuf,
    labels: Policies,
    entries: RwLock<Entries>,
    stamp: RwLock<Option<(SystemTime, u64)>>,
}

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

impl Directory {
    /// Reads the file (start-up fails if it is bad) and starts watching it.
    pub fn watch(path: PathBuf, labels: Policies) -> Result<Arc<Self>, String> {
        let directory = Self::open(path, labels)?;
        let weak: Weak<Self> = Arc::downgrade(&directory);
        std::thread::Builder::new()
            .name("directory-watch".into())
            .spawn(move || {
                while let Some(directory) = weak.upgrade() {
                    if stamp(&directory.path) != *directory.stamp.read().unwrap_or_else(|e| e.into_inner()) {
                        directory.reload();
                    }
                    drop(directory);
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .map_err(|e| format!("cannot start the directory watcher: {e}"))?;
        Ok(directory)
    }

    /// Reads the file without watching it.
    pub fn open(path: PathBuf, labels: Policies) -> Result<Arc<Self>, String> {
        let entries = load(&path, &labels)?;
        let stamp = RwLock::new(stamp(&path));
        Ok(Arc::new(Self { path, labels, entries: RwLock::new(Ok(Arc::new(entries))), stamp }))
    }

    /// Re-reads the file now.
    pub fn reload(&self) {
        *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = stamp(&self.path);
        let loaded = load(&self.path, &self.labels);
        match &loaded {
            Ok(entries) => tracing::info!(path = %self.path.display(), subjects = entries.len(), "directory reloaded"),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "directory unusable: certificate callers are refused until it is fixed")
            }
        }
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = loaded.map(Arc::new);
    }

    /// The entry of a subject.
    pub fn lookup(&self, subject: &str) -> Result<DirectoryEntry, IdentityError> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        match &*entries {
            Ok(map) => map.get(subject).cloned().ok_or_else(|| IdentityError::UnknownSubject(subject.to_owned())),
            Err(e) => Err(IdentityError::DirectoryUnavailable(e.clone())),
        }
    }

    /// Why the directory is unusable, if it is.
    pub fn problem(&self) -> Option<String> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).as_ref().err().map(|e| format!("directory: {e}"))
    }
}

fn load(path: &PathBuf, labels: &Policies) -> Result<HashMap<String, DirectoryEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    let file: File = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("'{}' is not a valid directory: {e}", path.display()))?
    } else {
        toml::from_str(&text).map_err(|e| format!("'{}' is not a valid directory: {e}", path.display()))?
    };
    let mut entries = HashMap::new();
    for (subject, raw) in file.subjects {
        let fail = |m: String| format!("'{}', subject '{subject}': {m}", path.display());
        let clearance = match &raw.clearance {
            RawClearance::Json(json) => labels.clearance_from_json(json),
            RawClearance::Xml(xml) => labels.parse_clearance_xml(xml),
        }
        .map_err(|e| fail(e.to_string()))?;
        if let Some(nation) = &raw.nation
            && !rampart_config::is_alpha3(nation)
        {
            return Err(fail(format!("nation '{nation}' is not an ISO 3166 alpha-3 code")));
        }
        entries.insert(subject.clone(), DirectoryEntry { nation: raw.nation, roles: raw.roles, clearance });
    }
    Ok(entries)
}
