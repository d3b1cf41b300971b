//! `rampart model sign / verify / seal / unseal / kek-gen`: the model owner's
//! and the site's tools for signed and sealed weights, with progress bars.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use rampart_seal::kek::Kek;
use rampart_seal::{oms, sealed};

/// Signing and sealing commands.
#[derive(Subcommand)]
pub enum WeightsCommand {
    /// Sign every file of a model directory (OpenSSF model signing v1.0, ECDSA P-256).
    Sign {
        /// The model directory.
        dir: PathBuf,
        /// The owner's private key (PEM, ECDSA P-256).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signature (a Sigstore bundle).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a model directory against its signature; names any changed, missing or extra file.
    Verify {
        /// The model directory.
        dir: PathBuf,
        /// The signature.
        #[arg(long)]
        sig: PathBuf,
        /// The owner's public key (PEM; ECDSA P-256, P-384 or P-521).
        #[arg(long = "pub")]
        public_key: PathBuf,
    },
    /// Seal a model directory: AES-256-GCM in chunks under a data key wrapped by the KEK.
    Seal {
        /// The model directory.
        dir: PathBuf,
        /// The key-encryption key: a key file (`rampart model kek-gen`) or a `pkcs11:` URI.
        #[arg(long)]
        kek: PathBuf,
        /// The sealed directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Decrypt a sealed model to a directory (for its owner; a site serves sealed models from memory).
    Unseal {
        /// The sealed directory.
        dir: PathBuf,
        /// The key-encryption key: a key file or a `pkcs11:` URI.
        #[arg(long)]
        kek: PathBuf,
        /// The directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a new key-encryption key: a file (32 random bytes, mode 0600), or an AES-256 key
    /// that never leaves an HSM when OUT is a `pkcs11:` URI.
    KekGen {
        /// The file to create (never overwritten), or a `pkcs11:token=...;object=...?module-path=...&pin-source=...` URI.
        #[arg(long)]
        out: PathBuf,
    },
}

fn bar(action: &str) -> ProgressBar {
    ProgressBar::new(0).with_style(
        ProgressStyle::with_template(&format!(
            "{action} [{{bar:30}}] {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} '{}'", path.display()))
}

/// Runs `action` with a progress bar; clears it however it ends.
fn with_bar<T>(
    label: &str,
    action: impl FnOnce(&mut dyn FnMut(u64), &mut dyn FnMut(u64)) -> Result<T, rampart_seal::SealError>,
) -> anyhow::Result<T> {
    let bar = bar(label);
    let result = action(&mut |total| bar.set_length(total), &mut |n| bar.inc(n));
    bar.finish_and_clear();
    Ok(result?)
}

/// Runs one command.
pub fn run(command: WeightsCommand) -> anyhow::Result<()> {
    match command {
        WeightsCommand::Sign { dir, key, out } => {
            let key = read(&key, "the signing key")?;
            with_bar("signing", |started, progress| oms::sign(&dir, &key, &out, started, progress))?;
            println!("{}", out.display());
        }
        WeightsCommand::Verify { dir, sig, public_key } => {
            let public_key = read(&public_key, "the public key")?;
            let manifest =
                with_bar("verifying", |started, progress| oms::verify(&dir, &sig, &public_key, started, progress))?;
            println!("verified: {} files of '{}' match the signature", manifest.files.len(), dir.display());
        }
        WeightsCommand::Seal { dir, kek, out } => {
            let kek = Kek::open(&kek)?;
            with_bar("sealing", |started, progress| sealed::seal(&dir, &kek, &out, started, progress))?;
            println!("{}", out.display());
        }
        WeightsCommand::Unseal { dir, kek, out } => {
            let kek = Kek::open(&kek)?;
            with_bar("unsealing", |started, progress| sealed::unseal(&dir, &kek, &out, started, progress))?;
            println!("{}", out.display());
        }
        WeightsCommand::KekGen { out } => {
            let kek = Kek::create(&out)?;
            println!("{} ({})", out.display(), kek.id());
        }
    }
    Ok(())
}
