//! Prometheus metrics. Labels carry only configured model names and fixed
//! route names, never client-supplied text, so their number stays bounded.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route name, e.g. `chat_completions`.
    pub route: &'static str,
    /// Configured model name, or `unknown`.
    pub model: String,
    /// HTTP status.
    pub status: u16,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route name.
    pub route: &'static str,
}

/// Labels of a token counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Configured model name.
    pub model: String,
    /// `in` (prompt) or `out` (completion).
    pub direction: &'static str,
}

/// All of Rampart's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_seconds: Family<RouteLabels, Histogram>,
    overhead_seconds: Family<RouteLabels, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    in_flight: Gauge,
}

fn latency_histogram() -> Histogram {
    // 20 µs to ~168 s.
    Histogram::new(exponential_buckets(0.000_02, 2.0, 24))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rampart");
        let requests = Family::default();
        let upstream_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let overhead_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let tokens = Family::default();
        let in_flight = Gauge::default();
        registry.register("requests", "Requests answered, by route, model and status", requests.clone());
        registry.register(
            "upstream_seconds",
            "Time from forwarding a request to the backend's (or engine's) first response",
            upstream_seconds.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Time Rampart itself spent on a request before its response started, upstream time excluded",
            overhead_seconds.clone(),
        );
        registry.register(
            "tokens",
            "Tokens processed, by model and direction (in = prompt, out = completion)",
            tokens.clone(),
        );
        registry.register("in_flight_requests", "Requests being served now", in_flight.clone());
        Self { registry, requests, upstream_seconds, overhead_seconds, tokens, in_flight }
    }
}

impl Metrics {
    /// Records a finished request.
    pub fn request(&self, route: &'static str, model: &str, status: u16) {
        self.requests.get_or_create(&RequestLabels { route, model: model.to_owned(), status }).inc();
    }

    /// Records the split of a request's time to first response byte.
    pub fn latency(&self, route: &'static str, upstream: Duration, overhead: Duration) {
        let labels = RouteLabels { route };
        self.upstream_seconds.get_or_create(&labels).observe(upstream.as_secs_f64());
        self.overhead_seconds.get_or_create(&labels).observe(overhead.as_secs_f64());
    }

    /// Adds token counts.
    pub fn tokens(&self, model: &str, prompt: u64, completion: u64) {
        for (direction, n) in [("in", prompt), ("out", completion)] {
            if n > 0 {
                self.tokens.get_or_create(&TokenLabels { model: model.to_owned(), direction }).inc_by(n);
            }
        }
    }

    /// Counts a request in flight until the guard and all its clones are dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight { _counted: Arc::new(Counted(self.in_flight.clone())) }
    }

    /// The OpenMetrics text exposition (`application/openmetrics-text; version=1.0.0`).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The Prometheus text exposition, format 0.0.4 (`text/plain; version=0.0.4`).
    pub fn encode(&self) -> String {
        prometheus_text(&self.encode_openmetrics())
    }
}

/// OpenMetrics text as Prometheus text format 0.0.4, which `prometheus_client`
/// does not write: a counter's HELP and TYPE name its samples (`x_total`, not
/// the family `x`), and there is no `# EOF` line. Everything else is the same.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> =
        openmetrics.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines().filter(|line| *line != "# EOF") {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|kind| {
            let rest = line.strip_prefix(kind)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{kind}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Counts one request in flight: the gauge is decremented when the last
/// clone is dropped (the audit stage holds one, a stream answering the request another).
#[derive(Clone)]
pub struct InFlight {
    _counted: Arc<Counted>,
}

struct Counted(Gauge);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_004_text_names_counters_by_their_samples_and_has_no_eof() {
        let metrics = Metrics::default();
        metrics.request("chat", "m", 200);
        metrics.tokens("m", 3, 4);
        let text = metrics.encode();
        assert!(text.contains("# HELP rampart_requests_total Requests answered"), "{text}");
        assert!(text.contains("# TYPE rampart_requests_total counter\n"), "{text}");
        assert!(text.contains("# TYPE rampart_tokens_total counter\n"), "{text}");
        assert!(text.contains("# TYPE rampart_in_flight_requests gauge\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(metrics.encode_openmetrics().ends_with("# EOF\n"));
    }
}
