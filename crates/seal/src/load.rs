//! Loading protected weights for serving: a sealed model is decrypted into an
//! anonymous memory file (its GGUF) and every file is hashed on the way and
//! checked against the owner's signature, so nothing unverified is served and
//! no plaintext touches a disk.

use std::path::Path;

use crate::SealError;
use crate::files::Resource;
use crate::kek::Kek;
use crate::memory::MemoryFile;
use crate::oms::SignedManifest;
use crate::sealed::SealedModel;

/// Decrypts the sealed model in `dir` with `kek`: its one `.gguf` file into
/// memory; with `signed`, also hashes every file (the others are decrypted
/// only to be hashed) and checks them against it. Returns the memory file and
/// the GGUF's name.
pub fn sealed_into_memory(
    dir: &Path,
    kek: &Kek,
    signed: Option<&SignedManifest>,
    progress: &mut dyn FnMut(u64),
) -> Result<(MemoryFile, String), SealError> {
    let model = SealedModel::open(dir, kek)?;
    let ggufs: Vec<usize> =
        model.files().iter().enumerate().filter(|(_, f)| f.name.ends_with(".gguf")).map(|(i, _)| i).collect();
    let [gguf] = ggufs.as_slice() else {
        return Err(SealError::Model(format!(
            "'{}' holds {} GGUF files; a sealed model to serve holds exactly one",
            dir.display(),
            ggufs.len()
        )));
    };
    let name = model.files()[*gguf].name.clone();
    let mut memory = MemoryFile::new(&name)?;
    let Some(signed) = signed else {
        // Unsigned: only the GGUF is needed, and GCM has authenticated every byte of it.
        model.decrypt(*gguf, memory.file(), progress)?;
        return Ok((memory, name));
    };
    let mut found = Vec::new();
    for (index, file) in model.files().iter().enumerate() {
        let digest = if index == *gguf {
            model.decrypt_hashed(index, memory.file(), progress)?
        } else {
            model.decrypt_hashed(index, &mut std::io::sink(), progress)?
        };
        found.push(Resource { name: file.name.clone(), digest });
    }
    signed.check(&found)?;
    Ok((memory, name))
}

/// Reads the signature at `signature` with the first of `keys` (PEM public keys) that verifies it.
pub fn signed_by_any(signature: &Path, keys: &[std::path::PathBuf]) -> Result<SignedManifest, SealError> {
    let mut reasons = Vec::new();
    for key in keys {
        let pem = std::fs::read(key).map_err(|e| SealError::io(key, e))?;
        match SignedManifest::read(signature, &pem) {
            Ok(manifest) => return Ok(manifest),
            Err(err) => reasons.push(format!("{}: {err}", key.display())),
        }
    }
    Err(SealError::Signature(format!("no owner key verifies the signature ({})", reasons.join("; "))))
}
