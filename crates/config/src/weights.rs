//! Signed and sealed weights: the site's key-encryption key, what it requires
//! of embedded models, and each model's signature, owner keys and sealed copy.

use std::path::PathBuf;

use serde::Deserialize;

use crate::validate::{KeyPath, fail};
use crate::{Config, ConfigError, EngineKind};

/// Whether a KEK setting is a `pkcs11:` URI rather than a file.
pub fn is_pkcs11(kek: &std::path::Path) -> bool {
    kek.to_str().is_some_and(|s| s.starts_with("pkcs11:"))
}

/// `[weights]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsConfig {
    /// The site's key-encryption key, which unwraps sealed models' data keys: a key file
    /// (`rampart model kek-gen`) or a `pkcs11:` URI naming a key in an HSM.
    #[serde(default)]
    pub kek: Option<PathBuf>,
    /// What every embedded model must be; default: `signed_and_sealed` at a site of RAND SL3 or above
    /// (its `[[sites]]` entry), `none` otherwise.
    #[serde(default)]
    pub require: Option<Requirement>,
}

/// What embedded models must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Nothing: plain, unsigned models are served.
    None,
    /// Signed by an owner key.
    Signed,
    /// Signed and sealed.
    SignedAndSealed,
}

impl Requirement {
    /// The key's value, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::None => "none",
            Requirement::Signed => "signed",
            Requirement::SignedAndSealed => "signed_and_sealed",
        }
    }
}

/// The RAND security level from which sealing and signing are required by default.
pub const REQUIRED_FROM_LEVEL: u8 = 3;

impl Config {
    /// What embedded models must be at this site: `weights.require`, or its default.
    pub fn weights_requirement(&self) -> Requirement {
        if let Some(require) = self.weights.require {
            return require;
        }
        let own = self.site.as_ref().and_then(|own| self.sites.iter().find(|s| s.id == own.id));
        match own {
            Some(site) if site.security_level >= REQUIRED_FROM_LEVEL => Requirement::SignedAndSealed,
            _ => Requirement::None,
        }
    }

    pub(crate) fn validate_weights(&self) -> Result<(), ConfigError> {
        let require = self.weights_requirement();
        let why = || match self.weights.require {
            Some(_) => "weights.require".to_owned(),
            None => format!("this site's security level (SL{REQUIRED_FROM_LEVEL} and above seal and sign by default)"),
        };
        for (i, model) in self.models.iter().enumerate() {
            let at = |k: &str| KeyPath::key("models").index(i).then(k);
            if model.engine == EngineKind::Remote {
                for (key, set) in [
                    ("sealed", model.sealed.is_some()),
                    ("signature", model.signature.is_some()),
                    ("owner_keys", !model.owner_keys.is_empty()),
                ] {
                    if set {
                        return fail(
                            at(key),
                            "only embedded models are loaded here; a remote model's weights are its backend's",
                        );
                    }
                }
                continue;
            }
            if model.signature.is_some() == model.owner_keys.is_empty() {
                return fail(
                    at("owner_keys"),
                    "a signature is checked with the owner's public keys: give both or neither",
                );
            }
            if model.sealed.is_some() && self.weights.kek.is_none() {
                return fail(at("sealed"), "a sealed model needs the site's key-encryption key: set weights.kek");
            }
            if require != Requirement::None && model.signature.is_none() {
                return fail(
                    at("signature"),
                    format!("{} requires signed models ({}): give signature and owner_keys", why(), require.as_str()),
                );
            }
            if require == Requirement::SignedAndSealed && model.sealed.is_none() {
                return fail(
                    at("sealed"),
                    format!("{} requires sealed models: seal it with `rampart model seal` and set sealed", why()),
                );
            }
        }
        Ok(())
    }
}
