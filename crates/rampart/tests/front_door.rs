//! The front door bounds every connection before any request on it is
//! understood: the real binary against slow and greedy clients on loopback.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(upstream: std::net::SocketAddr) -> String {
    format!(
        "{}{}",
        server_section(
            "header_read_timeout_secs = 1\nbody_read_timeout_secs = 1\nidle_timeout_secs = 1\nmax_connections_per_client = 4"
        ),
        backend("upstream", upstream, &["m"], "")
    )
}

/// Reads until the server closes the connection (within `seconds`); returns what it sent.
async fn until_closed(stream: &mut TcpStream, seconds: u64) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(seconds), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection was still open after {seconds} s");
    String::from_utf8_lossy(&received).into_owned()
}

async fn connect(rampart: &Rampart) -> TcpStream {
    TcpStream::connect(("127.0.0.1", rampart.port)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off_and_one_address_holds_a_bounded_number_of_connections() {
    let (_upstream, addr) = mock("upstream").await;
    let rampart = Rampart::start(&config(addr)).await;

    // A connection that never sends anything is closed.
    let mut silent = connect(&rampart).await;
    assert_eq!(until_closed(&mut silent, 10).await, "");

    // Headers that never end: closed without an answer.
    let mut partial = connect(&rampart).await;
    partial
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n")
        .await
        .unwrap();
    assert!(!until_closed(&mut partial, 10).await.contains("200"));

    // A body that never ends: 408, in OpenAI's error format.
    let mut slow_body = connect(&rampart).await;
    slow_body
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut slow_body, 10).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");

    // HTTP/1.1 without Host: 400 (RFC 9112); with it, served.
    let mut hostless = connect(&rampart).await;
    hostless.write_all(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut hostless, 10).await;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("missing_host"), "{answer}");

    // Two Hosts, or one that is not a host name: 400 as well.
    for hosts in ["Host: localhost\r\nHost: other", "Host: a b"] {
        let mut twice = connect(&rampart).await;
        twice
            .write_all(format!("GET /healthz HTTP/1.1\r\n{hosts}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let answer = until_closed(&mut twice, 10).await;
        assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("missing_host"), "{hosts}: {answer}");
    }

    // A kept-alive connection that falls silent after its answer is closed too.
    let mut kept = connect(&rampart).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut kept, 10).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Four connections from one address are held; a fifth is closed at once, and a place
    // freed is taken again.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&rampart).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut fifth = connect(&rampart).await;
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let mut byte = [0u8; 1];
    let refused = tokio::time::timeout(Duration::from_millis(500), fifth.read(&mut byte)).await;
    assert!(matches!(refused, Ok(Ok(0)) | Ok(Err(_))), "a fifth connection was served: {refused:?}");
    drop(held.pop());
    assert!(
        eventually(5, || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", rampart.port)).unwrap();
            std::io::Write::write_all(
                &mut stream,
                b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            let mut answer = String::new();
            let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
            answer.starts_with("HTTP/1.1 200")
        })
        .await,
        "the freed place was not taken again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_connection_must_start_a_request_soon_whatever_else_it_sends() {
    let (_upstream, addr) = mock("upstream").await;
    let config = format!(
        "{}{}",
        server_section("header_read_timeout_secs = 1\nidle_timeout_secs = 60"),
        backend("upstream", addr, &["m"], "")
    );
    let rampart = Rampart::start(&config).await;

    // Silent: closed at the header timeout, not the idle one.
    let mut silent = connect(&rampart).await;
    assert_eq!(until_closed(&mut silent, 10).await, "");

    // HTTP/2 that pings every 200 ms and never starts a request: closed all the same.
    let mut pinging = connect(&rampart).await;
    pinging.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let pings = async {
        for n in 0u8..100 {
            let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0];
            if pinging.write_all(&ping).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("a pinging connection that started no request was held for 20 s");
    };
    tokio::time::timeout(Duration::from_secs(30), pings).await.unwrap();
}
