//! Active health probes: each backend's `GET /models` and each peer site's
//! `GET /healthz` on a fixed interval, on a thread of its own. Any HTTP answer
//! counts as reachable; requests also update health as they succeed or fail.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::state::Shared;

fn peers(shared: &Shared) -> &[crate::backend::Backend] {
    shared.federation.as_ref().map(|f| f.backends()).unwrap_or_default()
}

/// Starts the probe thread (it lives as long as the process).
pub fn spawn(shared: Arc<Shared>) -> anyhow::Result<()> {
    if shared.backends.is_empty() && peers(&shared).is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("health".into()).spawn(move || {
        runtime.block_on(async move {
            let probed: Vec<_> = shared.backends.iter().chain(peers(&shared)).collect();
            let clients: Vec<_> = probed.iter().map(|b| b.client()).collect();
            let interval = shared.settings.health_interval;
            loop {
                for (backend, client) in probed.iter().zip(&clients) {
                    let mut request = Request::new(Full::new(Bytes::new()));
                    *request.uri_mut() = backend.probe_uri().clone();
                    if let Some(auth) = &backend.authorization {
                        request.headers_mut().insert(http::header::AUTHORIZATION, auth.clone());
                    }
                    let limit = Duration::from_millis(backend.config.connect_timeout_ms.saturating_mul(2));
                    match tokio::time::timeout(limit, client.request(request)).await {
                        Ok(Ok(_)) => backend.set_healthy(true, ""),
                        Ok(Err(err)) => backend.set_healthy(false, &err.to_string()),
                        Err(_) => backend.set_healthy(false, "probe timed out"),
                    }
                }
                tokio::time::sleep(interval).await;
            }
        });
    })?;
    Ok(())
}
