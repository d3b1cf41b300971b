//! Sealed models: every file encrypted with AES-256-GCM in fixed-size chunks
//! under a fresh per-model data key, which the site's key-encryption key wraps.
//!
//! ```text
//! SEALED_DIR/seal.json   the manifest: files and sizes, the wrapped data key, its own tag
//! SEALED_DIR/<name>      each file: chunks of ciphertext, each followed by its 16-byte tag
//! ```
//!
//! A chunk's nonce is its file's index and its own index, and its associated
//! data names the model, the file (index and name), the chunk's index and the
//! file's chunk count: chunks cannot be reordered, dropped, swapped between
//! files or models, or the file cut short without the tag check failing. The
//! manifest is authenticated under the data key as well.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{Context, SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::files::{self, hex};
use crate::kek::{Kek, random};
use crate::{SealError, TAG_LEN};

/// The manifest's file name.
pub const MANIFEST: &str = "seal.json";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 4 << 20;
const FORMAT: &str = "rampart-sealed-model/v1";
/// The file index reserved for the manifest's own tag.
const MANIFEST_INDEX: u32 = u32::MAX;

/// `seal.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    cipher: String,
    chunk_size: usize,
    model_id: String,
    kek: String,
    wrapped_key: String,
    files: Vec<SealedFile>,
    tag: String,
}

/// One sealed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedFile {
    /// Relative `/`-separated name.
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
}

impl SealedFile {
    fn chunks(&self, chunk: usize) -> u64 {
        self.size.div_ceil(chunk as u64).max(1)
    }
}

fn nonce(file: u32, chunk: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[..4].copy_from_slice(&file.to_be_bytes());
    bytes[4..].copy_from_slice(&chunk.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn chunk_aad(model_id: &str, file: u32, name: &str, chunk: u64, count: u64) -> Vec<u8> {
    let mut aad = b"rampart-seal-v1\0".to_vec();
    aad.extend_from_slice(model_id.as_bytes());
    aad.extend_from_slice(&file.to_be_bytes());
    aad.extend_from_slice(&chunk.to_be_bytes());
    aad.extend_from_slice(&count.to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn key_context(model_id: &str) -> Vec<u8> {
    format!("rampart-seal-v1 data key {model_id}").into_bytes()
}

impl Manifest {
    /// The bytes the manifest's tag covers: the manifest with an empty tag.
    fn signed_bytes(&self) -> Result<Vec<u8>, SealError> {
        let unsigned = Manifest { tag: String::new(), ..self.clone() };
        serde_json::to_vec(&unsigned).map_err(|e| SealError::Model(e.to_string()))
    }
}

/// Seals every file of `dir` (but the reference tool's default ignores) into
/// `out`, which must not exist, under a fresh data key wrapped by `kek`.
/// `started` hears the total bytes, `progress` the bytes sealed.
pub fn seal(
    dir: &Path,
    kek: &Kek,
    out: &Path,
    started: &mut dyn FnMut(u64),
    progress: &mut dyn FnMut(u64),
) -> Result<(), SealError> {
    let listed = files::list(dir, &[])?;
    if listed.is_empty() {
        return Err(SealError::Model(format!("'{}' holds no file to seal", dir.display())));
    }
    std::fs::create_dir(out).map_err(|e| SealError::io(out, e))?;
    started(files::total_size(&listed));
    let data_key: [u8; 32] = random()?;
    let model_id = hex(&random::<16>()?);
    let key = aead_key(&data_key)?;
    let mut sealed_files = Vec::new();
    let mut buffer = vec![0u8; CHUNK + TAG_LEN];
    for (index, (name, path)) in listed.iter().enumerate() {
        let index = u32::try_from(index).map_err(|_| SealError::Model("too many files".into()))?;
        let size = std::fs::metadata(path).map_err(|e| SealError::io(path, e))?.len();
        let entry = SealedFile { name: name.clone(), size };
        let count = entry.chunks(CHUNK);
        let mut input = std::fs::File::open(path).map_err(|e| SealError::io(path, e))?;
        let target = out.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SealError::io(parent, e))?;
        }
        let mut output =
            std::io::BufWriter::new(std::fs::File::create(&target).map_err(|e| SealError::io(&target, e))?);
        let mut remaining = size;
        for chunk in 0..count {
            let len = remaining.min(CHUNK as u64) as usize;
            buffer.truncate(len);
            buffer.resize(len, 0);
            input.read_exact(&mut buffer).map_err(|e| SealError::io(path, e))?;
            let aad = chunk_aad(&model_id, index, name, chunk, count);
            key.seal_in_place_append_tag(nonce(index, chunk), Aad::from(aad), &mut buffer)
                .map_err(|_| SealError::Model("encryption failed".into()))?;
            output.write_all(&buffer).map_err(|e| SealError::io(&target, e))?;
            remaining -= len as u64;
            progress(len as u64);
        }
        let output = output.into_inner().map_err(|e| SealError::io(&target, e.into_error()))?;
        output.sync_all().map_err(|e| SealError::io(&target, e))?;
        sealed_files.push(entry);
    }
    let mut manifest = Manifest {
        format: FORMAT.into(),
        cipher: "AES-256-GCM".into(),
        chunk_size: CHUNK,
        wrapped_key: STANDARD.encode(kek.wrap(&data_key, &key_context(&model_id))?),
        model_id,
        kek: kek.id().to_owned(),
        files: sealed_files,
        tag: String::new(),
    };
    let mut tag = Vec::new();
    key.seal_in_place_append_tag(nonce(MANIFEST_INDEX, u64::MAX), Aad::from(manifest.signed_bytes()?), &mut tag)
        .map_err(|_| SealError::Model("the manifest could not be authenticated".into()))?;
    manifest.tag = STANDARD.encode(tag);
    let path = out.join(MANIFEST);
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| SealError::Model(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| SealError::io(&path, e))
}

fn aead_key(bytes: &[u8; 32]) -> Result<LessSafeKey, SealError> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Kek("bad data key".into()))?))
}

/// A sealed model opened with the site's KEK: its manifest checked and its data key unwrapped.
pub struct SealedModel {
    dir: PathBuf,
    manifest: Manifest,
    key: LessSafeKey,
}

impl std::fmt::Debug for SealedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedModel").field("dir", &self.dir).field("files", &self.manifest.files).finish()
    }
}

impl SealedModel {
    /// Opens the sealed model in `dir` with `kek`.
    pub fn open(dir: &Path, kek: &Kek) -> Result<Self, SealError> {
        let path = dir.join(MANIFEST);
        let bad = |reason: String| SealError::Manifest { path: path.clone(), reason };
        let text = std::fs::read(&path).map_err(|e| SealError::io(&path, e))?;
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| bad(format!("malformed ({e})")))?;
        if manifest.format != FORMAT || manifest.cipher != "AES-256-GCM" || manifest.chunk_size == 0 {
            return Err(bad(format!("format '{}' is not {FORMAT} with AES-256-GCM", manifest.format)));
        }
        let safe = |name: &str| {
            !name.is_empty()
                && Path::new(name).components().all(|c| matches!(c, std::path::Component::Normal(_)))
                && name != MANIFEST
        };
        if let Some(file) = manifest.files.iter().find(|f| !safe(&f.name)) {
            return Err(bad(format!("file name '{}' is not a plain relative path", file.name)));
        }
        if manifest.kek != kek.id() {
            return Err(SealError::Kek(format!(
                "'{}' is sealed under {}, not under this site's {}",
                dir.display(),
                manifest.kek,
                kek.id()
            )));
        }
        let wrapped =
            STANDARD.decode(&manifest.wrapped_key).map_err(|_| bad("the wrapped key is not base64".into()))?;
        let key = aead_key(&kek.unwrap(&wrapped, &key_context(&manifest.model_id))?)?;
        let mut tag = STANDARD.decode(&manifest.tag).map_err(|_| bad("the tag is not base64".into()))?;
        let aad = Aad::from(manifest.signed_bytes()?);
        if key.open_in_place(nonce(MANIFEST_INDEX, u64::MAX), aad, &mut tag).is_err() {
            return Err(bad("it was altered after sealing (its tag does not verify)".into()));
        }
        Ok(Self { dir: dir.to_path_buf(), manifest, key })
    }

    /// The sealed files.
    pub fn files(&self) -> &[SealedFile] {
        &self.manifest.files
    }

    /// Total plaintext bytes.
    pub fn total_size(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.size).sum()
    }

    /// Decrypts file `index` into `out`, chunk by chunk (bounded memory);
    /// `progress` hears the plaintext bytes written.
    pub fn decrypt(&self, index: usize, out: &mut dyn Write, progress: &mut dyn FnMut(u64)) -> Result<(), SealError> {
        self.decrypt_chunks(index, progress, &mut |buffer, len| {
            out.write_all(&buffer[..len]).map_err(|e| SealError::io(Path::new("(output)"), e))?;
            Ok(Some(buffer))
        })
    }

    /// Like [`SealedModel::decrypt`], and returns the plaintext's SHA-256,
    /// computed on a second thread while the next chunk is decrypted.
    pub fn decrypt_hashed(
        &self,
        index: usize,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<[u8; 32], SealError> {
        std::thread::scope(|scope| {
            let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(1);
            let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
            let hasher = scope.spawn(move || {
                let mut context = Context::new(&SHA256);
                for (buffer, len) in chunks {
                    context.update(&buffer[..len]);
                    // The decrypting side may have finished; then the buffer is simply freed.
                    let _ = give_back.send(buffer);
                }
                files::digest32(context)
            });
            let decrypted = self.decrypt_chunks(index, progress, &mut |buffer, len| {
                out.write_all(&buffer[..len]).map_err(|e| SealError::io(Path::new("(output)"), e))?;
                to_hasher.send((buffer, len)).map_err(|_| SealError::Model("the hashing thread stopped".into()))?;
                Ok(returned.try_recv().ok())
            });
            drop(to_hasher);
            let digest = hasher.join().map_err(|_| SealError::Model("the hashing thread failed".into()))?;
            decrypted.map(|()| digest)
        })
    }

    /// Decrypts file `index` chunk by chunk, handing each plaintext (the
    /// buffer and its length) to `emit`, which may hand a buffer back for reuse.
    fn decrypt_chunks(
        &self,
        index: usize,
        progress: &mut dyn FnMut(u64),
        emit: &mut dyn FnMut(Vec<u8>, usize) -> Result<Option<Vec<u8>>, SealError>,
    ) -> Result<(), SealError> {
        let entry = &self.manifest.files[index];
        let refuse = |reason: &str| SealError::Sealed { file: entry.name.clone(), reason: reason.to_owned() };
        let path = self.dir.join(&entry.name);
        let mut input = std::fs::File::open(&path).map_err(|e| SealError::io(&path, e))?;
        let chunk_size = self.manifest.chunk_size;
        let count = entry.chunks(chunk_size);
        let expected = entry.size + count * TAG_LEN as u64;
        let actual = input.metadata().map_err(|e| SealError::io(&path, e))?.len();
        if actual < expected {
            return Err(refuse(&format!("truncated ({actual} of {expected} bytes)")));
        }
        if actual > expected {
            return Err(refuse(&format!("{} bytes more than sealed", actual - expected)));
        }
        let file_index = u32::try_from(index).map_err(|_| refuse("too many files"))?;
        let mut spare: Option<Vec<u8>> = None;
        let mut remaining = entry.size;
        for chunk in 0..count {
            let len = remaining.min(chunk_size as u64) as usize;
            let mut buffer = spare.take().unwrap_or_else(|| vec![0u8; chunk_size + TAG_LEN]);
            let sealed = &mut buffer[..len + TAG_LEN];
            input.read_exact(sealed).map_err(|e| SealError::io(&path, e))?;
            let aad = chunk_aad(&self.manifest.model_id, file_index, &entry.name, chunk, count);
            self.key
                .open_in_place(nonce(file_index, chunk), Aad::from(aad), sealed)
                .map_err(|_| refuse(&format!("chunk {chunk} fails authentication (tampered, reordered or swapped)")))?;
            spare = emit(buffer, len)?;
            remaining -= len as u64;
            progress(len as u64);
        }
        Ok(())
    }
}

/// Decrypts a sealed model into `out` (a new directory), for its owner.
pub fn unseal(
    dir: &Path,
    kek: &Kek,
    out: &Path,
    started: &mut dyn FnMut(u64),
    progress: &mut dyn FnMut(u64),
) -> Result<(), SealError> {
    let model = SealedModel::open(dir, kek)?;
    std::fs::create_dir(out).map_err(|e| SealError::io(out, e))?;
    started(model.total_size());
    for (index, entry) in model.files().iter().enumerate() {
        let target = out.join(&entry.name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SealError::io(parent, e))?;
        }
        let file = std::fs::File::create(&target).map_err(|e| SealError::io(&target, e))?;
        let mut writer = std::io::BufWriter::new(file);
        let result = model.decrypt(index, &mut writer, progress);
        if let Err(err) = result {
            drop(writer);
            // What failed to authenticate is not left behind as plaintext.
            let _ = std::fs::remove_file(&target);
            return Err(err);
        }
        writer.flush().map_err(|e| SealError::io(&target, e))?;
    }
    Ok(())
}
