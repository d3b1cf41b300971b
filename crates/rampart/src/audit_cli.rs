//! `rampart audit ...`: keys, verification and reading of the audit log.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use rampart_audit::keys;
use rampart_audit::storage::FsStorage;
use rampart_audit::verify;

/// The audit log's commands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Write a new Ed25519 signing key for a log (C2SP signed-note format, mode 0600).
    Keygen {
        /// The log's name: the origin line of its checkpoints, e.g. `rampart.example.org/site-a`.
        #[arg(long)]
        name: String,
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the verifier key of a signing key (`<name>+<hex id>+<base64>`).
    Vkey {
        /// The signing key file.
        #[arg(long)]
        signing_key: PathBuf,
    },
    /// Print the keyed digest an entry's `request_sha256` holds for a request body
    /// (HMAC-SHA256 under a key derived from the signing key): to find a request's entry.
    Digest {
        /// The site's signing key file.
        #[arg(long)]
        signing_key: PathBuf,
        /// The request body, exactly as sent; `-` (the default) reads standard input.
        #[arg(default_value = "-")]
        body: PathBuf,
    },
    /// Verify a whole log: every entry, every tile, the checkpoint's signature and root.
    Verify {
        /// The log directory.
        dir: PathBuf,
        /// The verifier key, or a file holding it. Never read from the log directory.
        #[arg(long)]
        vkey: String,
    },
    /// Print an inclusion proof (JSON) of entry N against the current checkpoint.
    Prove {
        /// The log directory.
        dir: PathBuf,
        /// The entry's index.
        #[arg(long)]
        index: u64,
        /// The verifier key, or a file holding it.
        #[arg(long)]
        vkey: String,
    },
    /// Print a consistency proof (JSON) from an earlier tree size to the current checkpoint.
    Consistency {
        /// The log directory.
        dir: PathBuf,
        /// The earlier tree size.
        #[arg(long)]
        old: u64,
        /// The verifier key, or a file holding it.
        #[arg(long)]
        vkey: String,
    },
    /// Print the log's entries.
    Show {
        /// The log directory.
        dir: PathBuf,
        /// First entry to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// One JSON entry per line, nothing else.
        #[arg(long)]
        json: bool,
    },
}

/// The verifier key given on the command line: the key itself, or a file holding it.
fn verifier_key(given: &str, log_dir: &Path) -> anyhow::Result<String> {
    let path = Path::new(given);
    let text = if keys::is_verifier_key(given) {
        given.to_owned()
    } else {
        let absolute = std::path::absolute(path)?;
        anyhow::ensure!(
            !absolute.starts_with(std::path::absolute(log_dir)?),
            "--vkey '{given}' is inside the log directory: a verifier key must come from somewhere the log's writer cannot change"
        );
        std::fs::read_to_string(path).with_context(|| format!("cannot read the verifier key file '{given}'"))?
    };
    Ok(text.trim().to_owned())
}

/// A hash in base64, as the transparency-dev test vectors and checkpoints write them.
fn b64(hash: &rampart_audit::Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hash.0)
}

fn open_dir(dir: &Path) -> anyhow::Result<FsStorage> {
    anyhow::ensure!(dir.is_dir(), "'{}' is not a directory holding an audit log", dir.display());
    Ok(FsStorage::new(dir)?)
}

/// The development audit key of `rampart dev init`: `DIR/audit-key` (the
/// signing key) and `DIR/audit.vkey` (its verifier key, for `audit verify`).
pub fn write_dev_key(dir: &Path) -> anyhow::Result<()> {
    let (skey, vkey) = keys::generate("localhost/rampart-dev-audit")?;
    keys::write_signing_key(&dir.join("audit-key"), &skey)?;
    std::fs::write(dir.join("audit.vkey"), format!("{vkey}\n"))?;
    Ok(())
}

/// Runs one audit command.
pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Keygen { name, out } => {
            let (skey, vkey) = keys::generate(&name)?;
            keys::write_signing_key(&out, &skey)?;
            eprintln!("wrote the signing key to {} (keep it secret); its verifier key:", out.display());
            println!("{vkey}");
        }
        AuditCommand::Vkey { signing_key } => {
            let skey = keys::read_signing_key(&signing_key)?;
            println!("{}", keys::verifier_key(&skey)?);
        }
        AuditCommand::Digest { signing_key, body } => {
            let skey = keys::read_signing_key(&signing_key)?;
            let bytes = match body.as_os_str() == "-" {
                true => {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("standard input")?;
                    bytes
                }
                false => std::fs::read(&body).with_context(|| format!("{} cannot be read", body.display()))?,
            };
            println!("{}", rampart_audit::digest::RequestDigester::from_signing_key(&skey).digest_hex(&bytes));
        }
        AuditCommand::Verify { dir, vkey } => {
            let vkey = verifier_key(&vkey, &dir)?;
            let storage = open_dir(&dir)?;
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("verifying [{bar:30}] {pos}/{len} entries ({per_sec}, {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let result = verify::verify(&storage, &vkey, &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            let report = result.map_err(|e| anyhow::anyhow!("the audit log does not verify: {e}"))?;
            let partials = match report.partials {
                0 => String::new(),
                n => format!(" ({n} older partial versions among them)"),
            };
            println!(
                "{}: {} entries, {} tiles{partials} and the signed checkpoint of '{}' verify",
                dir.display(),
                report.size,
                report.tiles + report.partials,
                report.origin
            );
        }
        AuditCommand::Prove { dir, index, vkey } => {
            let vkey = verifier_key(&vkey, &dir)?;
            let proof = verify::prove_inclusion(&open_dir(&dir)?, &vkey, index)?;
            let json = serde_json::json!({
                "index": proof.index, "tree_size": proof.size, "leaf_hash": b64(&proof.leaf),
                "root": b64(&proof.root), "proof": proof.proof.iter().map(b64).collect::<Vec<_>>(),
            });
            println!("{json}");
        }
        AuditCommand::Consistency { dir, old, vkey } => {
            let vkey = verifier_key(&vkey, &dir)?;
            let (old_root, size, root, proof) = verify::prove_consistency(&open_dir(&dir)?, &vkey, old)?;
            let json = serde_json::json!({
                "size1": old, "size2": size, "root1": b64(&old_root), "root2": b64(&root),
                "proof": proof.iter().map(b64).collect::<Vec<_>>(),
            });
            println!("{json}");
        }
        AuditCommand::Show { dir, from, json } => {
            let storage = open_dir(&dir)?;
            let size = verify::checkpoint_size(&storage)?;
            verify::for_each_entry(&storage, size, from, &mut |index, entry| {
                let text = String::from_utf8_lossy(entry);
                if json { println!("{text}") } else { println!("{index}\t{text}") }
            })?;
        }
    }
    Ok(())
}
