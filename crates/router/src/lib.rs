//! Rampart's placement decisions: which sites may serve a request.
//!
//! A site may serve a request when it serves the model, its accreditation
//! covers the request's label, the requesting nation's residency rules allow
//! its jurisdiction, the model owner's placement rules allow it, and it is
//! healthy. [`Topology`] compiles a configuration's `[[sites]]`,
//! `[[residency]]` and `[[placement]]` into [`SiteSet`]s once, so a decision is
//! a few set intersections however many rules there are; [`Topology::explain`]
//! names, for each excluded site, the class of rule that excluded it.
//! [`facility`] turns a site's power, cooling and alarm signals into whether
//! it takes new requests.

pub mod facility;
mod site_set;
mod topology;

pub use site_set::SiteSet;
pub use topology::{Exclusion, RouterError, Site, Topology};
