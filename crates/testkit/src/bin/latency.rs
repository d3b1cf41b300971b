//! A latency probe for benchmarks, printing latency percentiles as one JSON line.
//!
//! Closed loop (the default): one keep-alive HTTP/1.1 connection (plain, TLS,
//! or mutual TLS with a client certificate) sending the same POST back to back.
//! wrk cannot present a client certificate, so the benchmark of Rampart with
//! mutual TLS uses this for every path it compares, keeping the client the same.
//!
//! Open loop (`--rate R`): `--connections K` connections (plain or TLS), each
//! sending on its own fixed schedule so that together they offer R requests
//! per second, as wrk2 does. A request held up by a slow server is timed from
//! when it should have been sent, so queueing is counted (no coordinated omission).
//!
//! ```text
//! latency --url URL --body JSON [--seconds 10] [--warmup 2] [--header 'Name: value']...
//!         [--ca ca.pem] [--cert client.pem --key client.key] [--rate R --connections 64]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

struct Options {
    url: http::Uri,
    body: String,
    seconds: f64,
    warmup: f64,
    headers: Vec<(String, String)>,
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    rate: Option<f64>,
    connections: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        url: http::Uri::default(),
        body: String::new(),
        seconds: 10.0,
        warmup: 2.0,
        headers: Vec::new(),
        ca: None,
        cert: None,
        key: None,
        rate: None,
        connections: 64,
    };
    let mut url = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--body" => options.body = value()?,
            "--seconds" => options.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--warmup" => options.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--header" => {
                let header = value()?;
                let (name, value) = header.split_once(':').ok_or("--header takes 'Name: value'")?;
                options.headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--ca" => options.ca = Some(value()?),
            "--cert" => options.cert = Some(value()?),
            "--key" => options.key = Some(value()?),
            "--rate" => options.rate = Some(value()?.parse().map_err(|e| format!("--rate: {e}"))?),
            "--connections" => options.connections = value()?.parse().map_err(|e| format!("--connections: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    options.url = url.ok_or("--url is required")?.parse().map_err(|e| format!("--url: {e}"))?;
    Ok(options)
}

fn tls_config(options: &Options) -> Result<rustls::ClientConfig, String> {
    let ca = options.ca.as_deref().ok_or("https needs --ca")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots.add(cert.map_err(|e| format!("{ca}: {e}"))?).map_err(|e| format!("{ca}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| e.to_string())
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err("--cert and --key go together".into()),
    }
}

/// Sends the request back to back on one connection for `warmup` then `seconds`; returns the measured latencies.
async fn run<S>(stream: S, options: &Options) -> Result<(Vec<Duration>, usize), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let body = Bytes::from(options.body.clone());
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let started = Instant::now();
    let warmup = Duration::from_secs_f64(options.warmup);
    let end = warmup + Duration::from_secs_f64(options.seconds);
    while started.elapsed() < end {
        let request = request(options, &body)?;
        let sent = Instant::now();
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        response.into_body().collect().await.map_err(|e| e.to_string())?;
        if started.elapsed() > warmup {
            latencies.push(sent.elapsed());
            failures += usize::from(!ok);
        }
    }
    Ok((latencies, failures))
}

fn request(options: &Options, body: &Bytes) -> Result<http::Request<Full<Bytes>>, String> {
    let host = options.url.authority().map(|a| a.to_string()).unwrap_or_default();
    let path = options.url.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http::Request::post(path)
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in &options.headers {
        request = request.header(name, value);
    }
    request.body(Full::new(body.clone())).map_err(|e| e.to_string())
}

/// One connection of the open loop: sends at `start + offset + n * interval`
/// until `end`; returns latencies of requests due after `warmup`.
async fn scheduled(
    options: Arc<Options>,
    start: tokio::time::Instant,
    offset: Duration,
    interval: Duration,
) -> Result<(Vec<Duration>, usize), String> {
    let stream = connect(&options).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let body = Bytes::from(options.body.clone());
    let warmup = Duration::from_secs_f64(options.warmup);
    let end = warmup + Duration::from_secs_f64(options.seconds);
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let mut due = offset;
    while due < end {
        let intended = start + due;
        // Late because the previous answer came late: time from when this one was due.
        // Otherwise wait, and time from the actual send (the timer's own lateness is not the server's).
        let sent = if tokio::time::Instant::now() > intended {
            intended
        } else {
            tokio::time::sleep_until(intended).await;
            tokio::time::Instant::now()
        };
        let response = sender.send_request(request(&options, &body)?).await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        response.into_body().collect().await.map_err(|e| e.to_string())?;
        if due >= warmup {
            latencies.push(sent.elapsed());
            failures += usize::from(!ok);
        }
        due += interval;
    }
    Ok((latencies, failures))
}

/// A connection of either kind the probe speaks.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// A connection to `--url`: plain, TLS, or mutual TLS.
async fn connect(options: &Options) -> Result<Box<dyn Connection>, String> {
    let host = options.url.host().ok_or("--url needs a host")?.to_owned();
    let https = options.url.scheme_str() == Some("https");
    let port = options.url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    if !https {
        return Ok(Box::new(tcp));
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(options)?));
    let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
    Ok(Box::new(connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?))
}

async fn open_loop(options: Options, rate: f64) -> Result<(Vec<Duration>, usize), String> {
    let connections = options.connections.max(1);
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let options = Arc::new(options);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..connections)
        .map(|n| {
            let offset = interval.mul_f64(n as f64 / connections as f64);
            tokio::spawn(scheduled(Arc::clone(&options), start, offset, interval))
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for task in tasks {
        let (l, f) = task.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        failures += f;
    }
    Ok((latencies, failures))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

async fn probe(options: Options) -> Result<String, String> {
    let seconds = options.seconds;
    if let Some(rate) = options.rate {
        let (mut latencies, failures) = open_loop(options, rate).await?;
        latencies.sort();
        return Ok(summary(&latencies, failures, seconds));
    }
    let stream = connect(&options).await?;
    let (mut latencies, failures) = run(stream, &options).await?;
    latencies.sort();
    Ok(summary(&latencies, failures, seconds))
}

fn summary(sorted: &[Duration], failures: usize, seconds: f64) -> String {
    format!(
        "{{\"requests\":{},\"non_2xx\":{},\"rps\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1}}}",
        sorted.len(),
        failures,
        sorted.len() as f64 / seconds,
        percentile(sorted, 0.50),
        percentile(sorted, 0.99),
        percentile(sorted, 0.999),
    )
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match parse_options().map(|options| runtime.block_on(probe(options))) {
        Ok(Ok(line)) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) | Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
