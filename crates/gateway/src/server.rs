//! Listening and serving: one single-threaded tokio runtime per worker, each
//! with its own `SO_REUSEPORT` listener and upstream connection pools, so
//! requests never hop between cores. A connection is refused when its
//! client's address holds `server.max_connections_per_client`, and closed
//! when it starts no request within `header_read_timeout_secs` of opening,
//! or has none in flight for `idle_timeout_secs` after its last one. On SIGTERM or
//! SIGINT, workers stop accepting and give in-flight requests
//! `shutdown_grace_secs` to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rampart_identity::PeerCertificate;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::connection::{Activity, CountInFlight};
use crate::state::{Shared, Worker};
use crate::tls::ServerTlsSource;

/// Time a client gets to complete the TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A refused client certificate is a security event (warn); other handshake failures are routine (debug).
fn log_handshake_failure(remote: SocketAddr, err: &std::io::Error) {
    match err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            tracing::warn!(%remote, reason = ?reason, "client certificate refused in the TLS handshake");
        }
        _ => tracing::debug!(%remote, error = %err, "TLS handshake failed"),
    }
}

fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into()).with_context(|| format!("cannot listen on {addr}"))?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds `count` listeners on one address (the first fixes the port when 0 is asked).
pub fn bind_all(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let first = bind(addr)?;
    let actual = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind(actual)?);
    }
    Ok(listeners)
}

/// Runs one worker until `shutdown` turns true, then drains its connections.
pub fn run_worker(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<ServerTlsSource>>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let grace = shared.settings.shutdown_grace;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let connections = Arc::clone(&shared.connections);
        let idle_timeout = shared.settings.idle_timeout;
        // A connection's first request, like any later one's headers, is due within the header timeout.
        let first_request_timeout = shared.settings.header_read_timeout;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(shared.settings.header_read_timeout);
        // HTTP framing before any stage: an HTTP/1.1 request without Host is refused.
        let router = crate::router(Worker::new(shared)).layer(axum::middleware::from_fn(crate::error::require_host));
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, remote)) = accepted else { continue };
                    let Some(slot) = connections.admit(remote.ip()) else {
                        tracing::debug!(%remote, "connection refused: its address holds server.max_connections_per_client");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let activity = Activity::new();
                    let connection = Connection {
                        builder: builder.clone(),
                        watcher: graceful.watcher(),
                        activity,
                        first_request_timeout,
                        idle_timeout,
                    };
                    let router = router.clone();
                    let acceptor = tls.as_ref().map(|source| TlsAcceptor::from(source.current()));
                    tokio::spawn(async move {
                        let _slot = slot;
                        match acceptor {
                            None => connection.serve(stream, router).await,
                            Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                                Ok(Err(err)) => log_handshake_failure(remote, &err),
                                Ok(Ok(tls_stream)) => {
                                    // A verified client certificate identifies every request on this connection.
                                    let peer = match tls_stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                                        None => None,
                                        Some(der) => match PeerCertificate::from_der(der) {
                                            Ok(peer) => Some(Arc::new(peer)),
                                            Err(err) => {
                                                tracing::warn!(error = %err, "client certificate refused");
                                                return;
                                            }
                                        },
                                    };
                                    let router = router.map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                                        if let Some(peer) = &peer {
                                            request.extensions_mut().insert(Arc::clone(peer));
                                        }
                                        request
                                    });
                                    connection.serve(tls_stream, router).await;
                                }
                            },
                        }
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
            tracing::warn!("in-flight requests did not finish within the shutdown grace period");
        }
        Ok(())
    })
}

/// One accepted connection, served until it ends, the site stops, or it stays idle too long.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    activity: Arc<Activity>,
    first_request_timeout: Duration,
    idle_timeout: Duration,
}

impl Connection {
    async fn serve<I, S>(self, io: I, service: S)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: tower::Service<
                http::Request<hyper::body::Incoming>,
                Response = http::Response<axum::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let service = TowerToHyperService::new(CountInFlight::new(service, Arc::clone(&self.activity)));
        let served =
            self.watcher.watch(self.builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned());
        tokio::select! {
            _ = served => {}
            // No request in flight for too long: dropping the connection closes it.
            _ = self.activity.idle(self.first_request_timeout, self.idle_timeout) => {
                tracing::debug!("closing a connection with no request (header_read_timeout_secs, then idle_timeout_secs)");
            }
        }
    }
}

/// Waits for SIGTERM or SIGINT, calling `on_hangup` at each SIGHUP (directory and TLS reload).
pub fn wait_for_signal(on_hangup: impl Fn()) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = hangup.recv() => on_hangup(),
            }
        }
    })
}
