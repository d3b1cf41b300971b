//! The real `rampart` binary in front of real upstream servers on loopback.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};

async fn post(r: &Rampart, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(r.url(path)).json(body).send().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["error"]["message"].is_string() && body["error"]["type"].is_string(), "OpenAI error shape: {body}");
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_streaming_models_and_request_ids() {
    let (upstream, addr) = mock("alpha").await;
    let r = Rampart::start(&(server_section("") + &backend("a", addr, &["echo", "embed"], ""))).await;

    // Non-streaming: passed through, with a generated request id forwarded upstream.
    let response = post(&r, "/v1/chat/completions", &chat_body("echo", json!({}))).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(upstream.stats.last_request_id_len.load(Ordering::SeqCst), 32);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from alpha");
    assert_eq!(body["usage"]["total_tokens"], 16);

    // The site assigns its own id, whatever the client sends (a client's is recorded beside it).
    let client = reqwest::Client::new();
    let assigned = client
        .post(r.url("/v1/chat/completions"))
        .header("x-request-id", "trace-42")
        .json(&chat_body("echo", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(assigned.headers()["x-request-id"].len(), 32, "the site's own id");
    let replaced = client
        .post(r.url("/v1/chat/completions"))
        .header("x-request-id", "bad id!")
        .json(&chat_body("echo", json!({})))
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id!");
    let on_error = client.get(r.url("/nope")).header("x-request-id", "err-1").send().await.unwrap();
    assert_eq!(on_error.headers()["x-request-id"].len(), 32, "errors carry the site's id too");

    // Streaming: chunks in order, finish, usage, then [DONE] last.
    let response = post(
        &r,
        "/v1/chat/completions",
        &chat_body("echo", json!({"stream": true, "stream_options": {"include_usage": true}})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let parsed: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let text: String = parsed.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "t0 t1 t2 t3 t4 ");
    assert_eq!(parsed[parsed.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(parsed.last().unwrap()["usage"]["completion_tokens"], 5);

    // Embeddings pass through.
    let response = post(&r, "/v1/embeddings", &json!({"model": "embed", "input": "hello"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["data"][0]["embedding"][1], -0.5);

    // Models.
    let models: Value = reqwest::get(r.url("/v1/models")).await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["echo", "embed"]);
    assert_eq!(reqwest::get(r.url("/v1/models/echo")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(r.url("/v1/models/nope")).await.unwrap().status(), 404);

    // Readiness and metrics.
    r.wait_ready().await;
    let metrics = reqwest::get(r.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"rampart_requests_total{route="chat_completions",model="echo",status="200"} 4"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"rampart_tokens_total{model="echo",direction="out"} 20"#), "{metrics}");
    assert!(metrics.contains("rampart_gateway_overhead_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("rampart_upstream_seconds_count{route=\"chat_completions\"} 4"), "{metrics}");
    assert!(!metrics.contains("Hi\""), "metrics never carry prompt text");
    // Prometheus's own checker reads the 0.0.4 text as it is served (promtool, installed by scripts/setup).
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(metrics.as_bytes());
    assert!(
        promtool.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    // A scraper asking for OpenMetrics gets it, ending with # EOF.
    let open = reqwest::Client::new()
        .get(r.url("/metrics"))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(open.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(open.text().await.unwrap().ends_with("# EOF\n"));
}

/// Runs a command with `input` on its standard input.
trait WithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output;
}

impl WithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_status() {
    let (_upstream, addr) = mock("alpha").await;
    let dead = free_port();
    let dead_addr: std::net::SocketAddr = format!("127.0.0.1:{dead}").parse().unwrap();
    let config = server_section("max_body_bytes = 4096")
        + &backend("a", addr, &["echo", "fail-503", "html-500"], "")
        + &backend("slow", addr, &["slow-headers"], "first_byte_timeout_ms = 300\nmax_concurrent = 1")
        + &backend("dead", dead_addr, &["nobody"], "connect_timeout_ms = 200");
    let r = Rampart::start(&config).await;
    let client = reqwest::Client::new();

    let malformed = client
        .post(r.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{\"model\":")
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(malformed).await;
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("not valid JSON"));

    let (status, err) =
        error_of(post(&r, "/v1/chat/completions", &chat_body("echo", json!({"temperature": 5}))).await).await;
    assert_eq!((status, err["param"].as_str()), (400, Some("temperature")));
    let (status, err) =
        error_of(post(&r, "/v1/chat/completions", &json!({"model": "echo", "messages": [{"role": 7}]})).await).await;
    assert_eq!((status, err["param"].as_str()), (400, Some("messages[0].role")));

    let (status, err) = error_of(post(&r, "/v1/chat/completions", &chat_body("gpt-9", json!({}))).await).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("model_not_found")));

    let huge = chat_body("echo", json!({"messages": [{"role": "user", "content": "x".repeat(10_000)}]}));
    let (status, err) = error_of(post(&r, "/v1/chat/completions", &huge).await).await;
    assert_eq!((status, err["code"].as_str()), (413, Some("request_too_large")));

    let form = client
        .post(r.url("/v1/chat/completions"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(form).await.0, 415);

    let (status, err) = error_of(post(&r, "/v1/chat/completions", &chat_body("nobody", json!({}))).await).await;
    assert_eq!((status, err["code"].as_str()), (502, Some("upstream_unreachable")));

    let (status, err) = error_of(post(&r, "/v1/chat/completions", &chat_body("html-500", json!({}))).await).await;
    assert_eq!((status, err["code"].as_str()), (502, Some("upstream_error")));

    let (status, err) = error_of(post(&r, "/v1/chat/completions", &chat_body("fail-503", json!({}))).await).await;
    assert_eq!((status, err["code"].as_str()), (503, Some("overloaded")), "an upstream OpenAI error passes through");

    let (status, err) = error_of(post(&r, "/v1/chat/completions", &chat_body("slow-headers", json!({}))).await).await;
    assert_eq!((status, err["code"].as_str()), (504, Some("upstream_timeout")));

    // Saturated: the only slot of "slow" is taken by a request in flight.
    let busy = tokio::spawn({
        let url = r.url("/v1/chat/completions");
        async move { reqwest::Client::new().post(url).json(&chat_body("slow-headers", json!({}))).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = post(&r, "/v1/chat/completions", &chat_body("slow-headers", json!({}))).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, err) = error_of(response).await;
    assert_eq!((status, err["code"].as_str()), (503, Some("upstream_saturated")));
    let _ = busy.await;

    let (status, _) = error_of(client.get(r.url("/v1/chat/completions")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    let (status, err) = error_of(client.get(r.url("/v2/nothing")).send().await.unwrap()).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_route")));

    // None of that took the server down.
    assert_eq!(post(&r, "/v1/chat/completions", &chat_body("echo", json!({}))).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_disconnect_cancels_the_upstream_request() {
    let (upstream, addr) = mock("alpha").await;
    let r = Rampart::start(&(server_section("") + &backend("a", addr, &["slow-stream", "slow-headers"], ""))).await;

    let response = post(&r, "/v1/chat/completions", &chat_body("slow-stream", json!({"stream": true}))).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(body);
    assert!(
        eventually(5, || upstream.stats.cancelled.load(Ordering::SeqCst) == 1).await,
        "stream not cancelled upstream"
    );
    assert_eq!(upstream.stats.streams_completed.load(Ordering::SeqCst), 0);

    // A non-streaming request abandoned while waiting for the backend.
    let pending = tokio::spawn({
        let url = r.url("/v1/chat/completions");
        async move { reqwest::Client::new().post(url).json(&chat_body("slow-headers", json!({}))).send().await }
    });
    assert!(eventually(5, || upstream.stats.requests.load(Ordering::SeqCst) == 2).await);
    pending.abort();
    assert!(
        eventually(5, || upstream.stats.cancelled.load(Ordering::SeqCst) == 2).await,
        "waiting request not cancelled upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_on_another_backend_before_the_first_byte() {
    let (broken, broken_addr) = mock("broken").await;
    let (first, first_addr) = mock("first").await;
    let (second, second_addr) = mock("second").await;
    let config = server_section("[proxy]\nhealth_interval_ms = 600000\nretries = 2")
        + &backend("broken", broken_addr, &["answers-503"], "")
        + &backend("first", first_addr, &["echo", "answers-503"], "")
        + &backend("second", second_addr, &["echo"], "");
    let r = Rampart::start(&config).await;
    r.wait_ready().await;

    // An upstream 503 before the first byte is retried on the next backend. The
    // failing backend answers fastest, so it is tried first until its circuit
    // breaker opens after 5 failures in a row; then it is left alone.
    for _ in 0..12 {
        let response = post(&r, "/v1/chat/completions", &chat_body("answers-503", json!({}))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["system_fingerprint"], "first");
    }
    assert_eq!(broken.stats.requests.load(Ordering::SeqCst), 5, "tried until its breaker opened");

    // A backend that dies is skipped: every request still succeeds.
    first.stop().await;
    for _ in 0..10 {
        let response = post(&r, "/v1/chat/completions", &chat_body("echo", json!({"stream": true}))).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains("\"system_fingerprint\":\"second\"") && text.ends_with("data: [DONE]\n\n"), "{text}");
    }
    assert_eq!(second.stats.requests.load(Ordering::SeqCst), 10);
    // Readiness names the model left without a usable backend ('first' is down,
    // 'broken' has its breaker open), not the one 'second' still serves.
    let ready = reqwest::get(r.url("/readyz")).await.unwrap().text().await.unwrap();
    assert!(ready.contains("model 'answers-503'") && !ready.contains("model 'echo'"), "{ready}");
}
