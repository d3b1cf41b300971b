//! Checking RFC 6962 inclusion and consistency proofs.
//!
//! The arithmetic is `tlog_tiles`' (Cloudflare's port of Go's `sumdb/tlog`,
//! which Certificate Transparency relies on). This module adds the input
//! checks a proof from an untrusted party needs before that arithmetic runs,
//! so a malformed proof is an error, never a panic.

use tlog_tiles::{Hash, check_record, check_tree};

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes cannot describe a proof.
    #[error("the proof's index or tree sizes are impossible: {0}")]
    BadInput(String),
    /// The proof does not lead to the given root.
    #[error("the proof does not match the root")]
    Mismatch,
}

/// The hash of a leaf: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    tlog_tiles::record_hash(entry)
}

/// Checks that `leaf` is entry `index` of the tree of `size` entries whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: Hash, proof: &[Hash], root: Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::BadInput(format!("index {index} is not below the tree size {size}")));
    }
    if proof.len() > 64 {
        return Err(ProofError::BadInput(format!("{} hashes is longer than any proof", proof.len())));
    }
    check_record(&proof.to_vec(), size, root, index, leaf).map_err(|_| ProofError::Mismatch)
}

/// Checks that the tree of `old_size` entries with root `old_root` is a prefix
/// of the tree of `new_size` entries with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: Hash,
    new_root: Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::BadInput(format!("the old size {old_size} exceeds the new size {new_size}")));
    }
    if proof.len() > 128 {
        return Err(ProofError::BadInput(format!("{} hashes is longer than any proof", proof.len())));
    }
    if old_size == 0 {
        // Trivially true, so a claim of it proves nothing: refused, as transparency-dev's verifier does.
        return Err(ProofError::BadInput("a consistency proof from the empty tree proves nothing".into()));
    }
    if old_size == new_size {
        // The same tree: no proof, the same root.
        return if proof.is_empty() && old_root == new_root { Ok(()) } else { Err(ProofError::Mismatch) };
    }
    check_tree(&proof.to_vec(), new_size, new_root, old_size, old_root).map_err(|_| ProofError::Mismatch)
}
