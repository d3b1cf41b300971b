//! Labelled report collections.
//!
//! A collection is a named set of [`Document`]s kept by the site. A document
//! has an id, a title, a document label and portions (its paragraphs), each
//! with a portion label the document label must dominate; what the site
//! retrieves from and cites is portions, so that nothing above a caller's
//! clearance is ever read out with what they may see.
//!
//! - [`source`] reads documents from marked text or Markdown (a banner line,
//!   portion-marked paragraphs, or a STANAG 4774 label sidecar) and from JSON
//!   Lines, refusing a portion above its document's label with its file and line.
//! - [`store`] keeps collections behind the [`CollectionStore`] trait; the
//!   [`FsStore`] driver writes each change as a new generation and switches to
//!   it in one rename, so a change is whole or absent, even after `kill -9`.

mod document;
pub mod source;
pub mod store;

pub use document::{Document, DocumentError, Portion, check_id};
pub use store::{Collection, CollectionStore, FsStore, StoreError, Summary};
