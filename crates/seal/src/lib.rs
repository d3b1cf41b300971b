//! Rampart's protection of model weights.
//!
//! - [`oms`]: OpenSSF model signing (OMS v1.0): sign a model directory with an
//!   ECDSA key and verify it, naming every changed, missing or extra file;
//!   interoperable with the reference `model_signing` tool.
//! - [`sealed`]: sealing with AES-256-GCM in fixed-size chunks under a
//!   per-model data key wrapped by the site's key-encryption key ([`kek`]),
//!   streaming with bounded memory; opening decrypts chunk by chunk. The KEK
//!   is a key file or an HSM key through PKCS#11 ([`pkcs11`]).
//! - [`memory`]: anonymous memory files, so that decrypted weights reach the
//!   engine without touching a disk.

mod error;
mod files;
pub mod kek;
pub mod load;
pub mod memory;
pub mod oms;
pub mod pkcs11;
pub mod sealed;

pub use error::SealError;
pub use files::Resource;

/// Bytes of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
