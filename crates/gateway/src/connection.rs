//! What a connection is allowed before any request on it is understood: how
//! many one client address may hold open, how long it may take to start its
//! first request, and how long it may stay open with no request in flight.
//! Bytes alone keep no connection open: partial headers, HTTP/2 pings and
//! idle TLS count for nothing until a request starts (hyper bounds the time
//! to send an HTTP/1.1 request's headers; the admit stage the time to send a body).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use tokio::time::Instant;

/// Connections open per client address, across workers.
pub struct ClientConnections {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientConnections {
    /// At most `limit` connections per address (`server.max_connections_per_client`).
    pub fn new(limit: usize) -> Self {
        Self { limit, open: Mutex::default() }
    }

    /// A place for a new connection from `ip`, or `None` when the address holds its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot { connections: Arc::clone(self), ip })
    }
}

/// One open connection of a client address; its place is freed when dropped.
pub struct ClientSlot {
    connections: Arc<ClientConnections>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// When a connection's last request started or ended, whether it has had
/// one, and how many of its requests are in flight.
pub struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    started_any: AtomicBool,
}

impl Activity {
    /// A connection opened now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            started_any: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        self.last_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        self.opened.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Completes once the connection has had no request in flight for
    /// `between` since its last one ended, or has started none within `first` of opening.
    pub async fn idle(&self, first: Duration, between: Duration) {
        loop {
            let timeout = if self.started_any.load(Ordering::Relaxed) { between } else { first };
            let quiet = self.quiet_for();
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            if !busy && quiet >= timeout {
                return;
            }
            tokio::time::sleep(if busy { timeout } else { timeout - quiet }).await;
        }
    }
}

/// Counts a connection's requests in flight: from when the service is called
/// until the answer's body has been sent (or dropped).
#[derive(Clone)]
pub struct CountInFlight<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> CountInFlight<S> {
    /// `inner`, counted in `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, R> tower::Service<R> for CountInFlight<S>
where
    S: tower::Service<R, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        self.activity.started_any.store(true, Ordering::Relaxed);
        self.activity.touch();
        let guard = InFlight(Arc::clone(&self.activity));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Body::new(Guarded { body, _guard: guard })))
        })
    }
}

/// A request in flight, until dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An answer's body, holding its request in flight until it is done.
struct Guarded {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_holds_at_most_its_limit() {
        let connections = Arc::new(ClientConnections::new(2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = connections.admit(a).unwrap();
        let _second = connections.admit(a).unwrap();
        assert!(connections.admit(a).is_none(), "a third from the same address");
        assert!(connections.admit(b).is_some(), "another address has its own count");
        drop(first);
        assert!(connections.admit(a).is_some(), "a closed connection frees its place");
    }

    #[tokio::test]
    async fn a_connection_is_idle_only_with_nothing_in_flight_and_must_start_its_first_request_soon() {
        let (first, between) = (Duration::from_millis(50), Duration::from_millis(200));
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle(first, between).await;
        let waited = started.elapsed();
        assert!(waited >= first && waited < between, "no request within the first timeout: {waited:?}");

        let activity = Activity::new();
        let guard = {
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            activity.started_any.store(true, Ordering::Relaxed);
            InFlight(Arc::clone(&activity))
        };
        let idle = tokio::time::timeout(between * 3, activity.idle(first, between));
        assert!(idle.await.is_err(), "a request in flight keeps its connection, however long it takes");
        drop(guard);
        let started = Instant::now();
        activity.idle(first, between).await;
        assert!(started.elapsed() >= between, "idle a full timeout after the request ended");
    }
}
