//! Federation: the peer sites this site forwards to, and the assertions it
//! signs for them. A forwarded request goes to the peer's Rampart over mutual
//! TLS (this site's certificate from the alliance PKI, the peer's checked
//! against the federation CA), with a `Rampart-Assertion` naming the caller
//! and the label this site computed, signed with this site's key for that one
//! peer. The peer re-checks everything before serving it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::HeaderValue;
use rampart_api::ApiError;
use rampart_config::Config;
use rampart_identity::{AssertedRequest, AssertionSigner, Principal};
use rampart_labels::Label;
use rampart_router::{SiteSet, Topology};

use crate::backend::Backend;

/// The peer sites and this site's signing key.
pub struct Federation {
    signer: AssertionSigner,
    /// One upstream per peer site that has an address.
    peers: Vec<Backend>,
    /// Each peer's index among the topology's sites.
    sites: Vec<usize>,
}

impl Federation {
    /// The federation of `config`, when it has `[federation]`.
    pub fn new(config: &Config, topology: &Topology) -> anyhow::Result<Option<Self>> {
        let (Some(federation), Some(own)) = (&config.federation, &config.site) else { return Ok(None) };
        let key = std::fs::read(&federation.key)
            .with_context(|| format!("federation.key '{}' cannot be read", federation.key.display()))?;
        let ttl = Duration::from_secs(federation.assertion_ttl_secs);
        let signer = AssertionSigner::from_pem(&own.id, &key, ttl)
            .map_err(|e| anyhow::anyhow!("federation.key '{}': {e}", federation.key.display()))?;
        let mut peers = Vec::new();
        let mut sites = Vec::new();
        for (site, address) in config.peer_sites() {
            peers.push(Backend::peer(site, address, federation)?);
            sites.push(topology.index_of(&site.id).context("a configured site is missing from the topology")?);
        }
        Ok(Some(Self { signer, peers, sites }))
    }

    /// The peers' upstreams, in configuration order.
    pub fn backends(&self) -> &[Backend] {
        &self.peers
    }

    /// The upstream indexes of the peers among `eligible` (topology indexes).
    pub fn candidates(&self, eligible: &SiteSet) -> Vec<usize> {
        (0..self.peers.len()).filter(|&i| eligible.contains(self.sites[i])).collect()
    }

    /// Adds to `down` the peers whose circuit breaker is open.
    pub fn mark_down(&self, down: &mut SiteSet) {
        let now = Instant::now();
        for (peer, &site) in self.peers.iter().zip(&self.sites) {
            if peer.breaker.is_open(now) {
                down.insert(site);
            }
        }
    }

    /// The `Rampart-Assertion` value for sending `principal`'s request at `label` to `peer`.
    pub fn assertion(
        &self,
        peer: &Backend,
        principal: &Principal,
        label: &Label,
        request: &AssertedRequest,
    ) -> Result<HeaderValue, ApiError> {
        let token = self.signer.sign(&peer.name, principal, label, request);
        token.ok().and_then(|t| HeaderValue::from_str(&t).ok()).ok_or_else(|| {
            // The key signed a test assertion at start-up, so this does not happen; refuse if it does.
            ApiError::assertion_failed()
        })
    }
}
