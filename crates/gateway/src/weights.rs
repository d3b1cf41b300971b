//! Embedded models' weights, loaded as the site requires: a signature is
//! verified against the owner's keys before anything is loaded, and a sealed
//! model is decrypted into an anonymous memory file that the engine opens by
//! path; no plaintext is written to disk. Every load and every refusal is in
//! the audit log.

use std::path::PathBuf;

use rampart_audit::entry::Phase;
use rampart_config::{Config, ModelConfig, Requirement};
use rampart_seal::kek::Kek;
use rampart_seal::memory::MemoryFile;
use rampart_seal::{SealError, load, oms};

use crate::trail::{Draft, Outcome, Trail};

/// Weights ready for the engine; the memory file lives as long as this value.
pub struct Weights {
    /// What the engine opens: the GGUF file, or `/proc/self/fd/N` of the memory file.
    pub path: PathBuf,
    /// Whether the owner's signature was verified.
    pub signed: bool,
    _memory: Option<MemoryFile>,
}

/// Prepares `model`'s weights, checking them against the owner's signature and the site's requirement.
pub fn prepare(config: &Config, model: &ModelConfig) -> Result<Weights, SealError> {
    let require = config.weights_requirement();
    if require != Requirement::None && model.signature.is_none() {
        return Err(SealError::Model(format!("this site requires {} models; it is not signed", require.as_str())));
    }
    if require == Requirement::SignedAndSealed && model.sealed.is_none() {
        return Err(SealError::Model("this site requires sealed models; it is not sealed".into()));
    }
    let signed = match &model.signature {
        Some(signature) => Some(load::signed_by_any(signature, &model.owner_keys)?),
        None => None,
    };
    if let Some(dir) = &model.sealed {
        let kek = config.weights.kek.as_ref().ok_or_else(|| SealError::Kek("weights.kek is not set".into()))?;
        let kek = Kek::open(kek)?;
        let (memory, _) = load::sealed_into_memory(dir, &kek, signed.as_ref(), &mut |_| {})?;
        return Ok(Weights { path: memory.path(), signed: signed.is_some(), _memory: Some(memory) });
    }
    let path = model.path.clone().ok_or_else(|| SealError::Model("no path or sealed directory".into()))?;
    if let (Some(signed), Some(signature)) = (&signed, &model.signature) {
        let dir = path.parent().ok_or_else(|| SealError::Model(format!("'{}' has no directory", path.display())))?;
        oms::check_dir(dir, signature, signed, &mut |_| {}, &mut |_| {})?;
    }
    Ok(Weights { path, signed: signed.is_some(), _memory: None })
}

/// Records a model's load, or its refusal with the refusal's code, before start-up goes on or stops.
pub fn audit_load(
    trail: Option<&Trail>,
    model: &ModelConfig,
    result: Result<&Weights, &SealError>,
) -> anyhow::Result<()> {
    let Some(trail) = trail else { return Ok(()) };
    let mut draft = Draft::new(String::new(), "load_model");
    draft.model(&model.name);
    let outcome = match result {
        Ok(weights) => {
            draft.allowed();
            let how = match (model.sealed.is_some(), weights.signed) {
                (true, true) => "sealed, signature verified",
                (true, false) => "sealed",
                (false, true) => "signature verified",
                (false, false) => "plain",
            };
            Outcome { backend: Some(format!("embedded ({how})")), ..Outcome::default() }
        }
        Err(err) => Outcome { code: Some(err.code().to_owned()), ..Outcome::default() },
    };
    trail.record_blocking(draft.entry(Phase::Complete, 0, outcome).encode())
}
