//! A closed-loop latency probe for benchmarks: one keep-alive HTTP/1.1
//! connection (plain, TLS, or mutual TLS with a client certificate) sending
//! the same POST back to back, printing latency percentiles as one JSON line.
//!
//! wrk cannot present a client certificate, so the benchmark of Rampart with
//! mutual TLS uses this for every path it compares, keeping the client the same.
//!
//! ```text
//! latency --url URL --body JSON [--seconds 10] [--warmup 2] [--header 'Name: value']...
//!         [--ca ca.pem] [--cert client.pem --key client.key]
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
    let host = options.url.authority().map(|a| a.to_string()).unwrap_or_default();
    let path = options.url.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let body = Bytes::from(options.body.clone());
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let started = Instant::now();
    let warmup = Duration::from_secs_f64(options.warmup);
    let end = warmup + Duration::from_secs_f64(options.seconds);
    while started.elapsed() < end {
        let mut request = http::Request::post(&path)
            .header(http::header::HOST, &host)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in &options.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body.clone())).map_err(|e| e.to_string())?;
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

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

async fn probe(options: Options) -> Result<String, String> {
    let host = options.url.host().ok_or("--url needs a host")?.to_owned();
    let port = options.url.port_u16().unwrap_or(if options.url.scheme_str() == Some("https") { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut latencies, failures) = if options.url.scheme_str() == Some("https") {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&options)?));
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        run(tls, &options).await?
    } else {
        run(tcp, &options).await?
    };
    latencies.sort();
    Ok(format!(
        "{{\"requests\":{},\"non_2xx\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1}}}",
        latencies.len(),
        failures,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
    ))
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
