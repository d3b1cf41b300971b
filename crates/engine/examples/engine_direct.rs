//! The embedded engine driven in-process, for `bench/engine`: the same
//! requests as the HTTP measurement, submitted straight to `Engine`, so the
//! gap to llama.cpp splits into the engine's share and the serving path's.
//!
//! usage: engine_direct MODEL PROMPT NTG THREADS NPL[,NPL...]
//! prints one JSON object per NPL: total generation tok/s while every stream
//! generates, and (for one stream) the time to the first token.

use std::path::PathBuf;
use std::time::Instant;

use rampart_engine::{Engine, EngineConfig, Event, GenerateRequest, PromptInput, Sampling};

/// One stream: when it was submitted and when each piece of text arrived.
async fn stream(engine: &Engine, prompt: &str, tokens: u32) -> (Instant, Vec<Instant>) {
    let sampling = Sampling { temperature: 0.0, max_tokens: Some(tokens), ..Sampling::default() };
    let request = GenerateRequest { prompt: PromptInput::Text(prompt.to_owned()), sampling };
    let submitted = Instant::now();
    let mut generation = engine.submit(request).await.expect("the engine takes the request");
    let mut arrivals = Vec::new();
    while let Some(event) = generation.events.recv().await {
        match event {
            Event::Text(_) => arrivals.push(Instant::now()),
            Event::Done { .. } => break,
            Event::Failed(reason) => panic!("generation failed: {reason}"),
        }
    }
    (submitted, arrivals)
}

/// Tokens per second, all streams together, between the moment the last
/// stream started generating and the moment the first one finished.
fn window_rate(streams: &[(Instant, Vec<Instant>)]) -> f64 {
    let start = streams.iter().map(|(_, t)| t[0]).max().expect("streams");
    let end = streams.iter().map(|(_, t)| *t.last().expect("tokens")).min().expect("streams");
    let produced = streams.iter().flat_map(|(_, t)| t).filter(|&&t| t > start && t <= end).count();
    produced as f64 / (end - start).as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: engine_direct MODEL PROMPT NTG THREADS NPL[,NPL...]");
        std::process::exit(2);
    }
    let (tokens, threads): (u32, usize) = (args[3].parse()?, args[4].parse()?);
    let npls: Vec<usize> = args[5].split(',').map(str::parse).collect::<Result<_, _>>()?;
    let engine = Engine::start(EngineConfig {
        name: "bench".into(),
        path: PathBuf::from(&args[1]),
        context: 512,
        threads,
        parallel: 8,
        queue: 64,
        batch: 512,
        default_max_tokens: None,
        lock_memory: false,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        stream(&engine, &args[2], 8).await; // warm up
        for npl in npls {
            let streams = futures_util::future::join_all((0..npl).map(|_| stream(&engine, &args[2], tokens))).await;
            let rate = if npl == 1 {
                let t = &streams[0].1;
                (t.len() - 1) as f64 / (t[t.len() - 1] - t[0]).as_secs_f64()
            } else {
                window_rate(&streams)
            };
            let ttft_ms = (streams[0].1[0] - streams[0].0).as_secs_f64() * 1e3;
            println!("{{\"npl\":{npl},\"s_tg\":{rate:.2},\"ttft_ms\":{ttft_ms:.2}}}");
        }
    });
    Ok(())
}
