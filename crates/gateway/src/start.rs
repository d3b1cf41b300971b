//! Start-up and shutdown of a site: the audit log, the models (weights
//! checked and decrypted), TLS, the listeners and their workers; SIGHUP
//! reloads, SIGTERM drains.

use std::sync::Arc;

use anyhow::Context;
use rampart_config::{Config, ModelConfig};
use rampart_engine::{Engine, EngineConfig};
use tokio::sync::watch;

use crate::{health, server, state, tls, trail, weights};

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The engine settings of an embedded model entry whose weights are at `path`.
fn engine_config(model: &ModelConfig, path: std::path::PathBuf) -> EngineConfig {
    EngineConfig {
        name: model.name.clone(),
        path,
        context: model.context,
        threads: if model.threads == 0 { cores() } else { model.threads },
        parallel: model.parallel,
        queue: model.queue,
        batch: model.batch,
        default_max_tokens: model.max_tokens,
        // Decrypted weights must not reach a disk through swap.
        lock_memory: model.sealed.is_some(),
    }
}

/// Serves `config` until SIGTERM or SIGINT.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let trail = match &config.audit {
        Some(audit) => Some(trail::Trail::open(audit)?),
        None => {
            tracing::warn!("no [audit] configured: decisions are not recorded (allowed only on an insecure_dev site)");
            None
        }
    };
    // The weights (memory files of sealed models) live as long as the engines.
    let mut weights = Vec::new();
    let mut engines = Vec::new();
    for model in config.embedded_models() {
        let started = std::time::Instant::now();
        let prepared = weights::prepare(&config, model);
        let weights_seconds = started.elapsed().as_secs_f32();
        weights::audit_load(trail.as_ref(), model, prepared.as_ref())?;
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(err) => {
                // The refusal is in the log as published when the site stops.
                if let Some(trail) = &trail {
                    trail.finish();
                }
                anyhow::bail!("model '{}' is refused: {err}", model.name);
            }
        };
        engines.push(Engine::start(engine_config(model, prepared.path.clone()))?);
        let seconds = started.elapsed().as_secs_f32();
        // `weights_seconds`: checking the signature and decrypting, before llama.cpp opens the model.
        tracing::info!(model = %model.name, seconds, weights_seconds, "embedded model loaded");
        weights.push(prepared);
    }
    let tls = config
        .server
        .tls
        .as_ref()
        .map(|t| tls::ServerTlsSource::new(t, config.identity.as_ref()).map(Arc::new))
        .transpose()
        .context("server TLS")?;
    let workers = if config.server.workers == 0 { cores() } else { config.server.workers };
    let listeners = server::bind_all(config.server.listen, workers)?;
    let address = listeners[0].local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shared = Arc::new(state::Shared::new(&config, engines, trail)?);
    health::spawn(Arc::clone(&shared))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut threads = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        let (shared, shutdown) = (Arc::clone(&shared), shutdown_rx.clone());
        let tls = tls.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || server::run_worker(listener, shared, tls, shutdown))?,
        );
    }
    tracing::info!(%address, workers, models = ?shared.model_ids, "rampart listening on {scheme}://{address}");
    server::wait_for_signal(|| {
        shared.security.identification.reload_directory();
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificates, client CAs and CRLs reloaded"),
                Err(err) => tracing::error!(
                    error = format!("{err:#}"),
                    "TLS reload failed; the previous TLS settings stay in force"
                ),
            }
        }
    })?;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = shutdown_tx.send(true);
    for thread in threads {
        match thread.join() {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("a worker thread panicked"),
        }
    }
    if let Some(trail) = &shared.trail {
        trail.finish();
    }
    drop(weights);
    Ok(())
}
