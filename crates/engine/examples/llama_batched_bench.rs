//! The reference for `bench/engine`: llama.cpp's own decode loop, driven
//! directly (the equivalent of llama.cpp's `llama-batched-bench`, whose
//! sources the published crate does not ship), linked against the same
//! compiled llama.cpp as the engine. No gateway, no sampling: the ceiling.
//!
//! usage: llama_batched_bench MODEL NPP NTG THREADS NPL[,NPL...]
//! prints one JSON object per NPL: pp/tg tokens per second and timings.
//!
//! With `on-demand` for NPL, it processes one prompt of NPP tokens for each
//! line read from standard input and prints its time, so a benchmark can take
//! llama.cpp's prompt time and Rampart's time to first token in turn.

use std::io::BufRead;
use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

const BATCH: usize = 512;
const CELLS_PER_SEQUENCE: u32 = 512;
/// The token fed everywhere: which token it is does not change the work.
const TOKEN: LlamaToken = LlamaToken(100);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: llama_batched_bench MODEL NPP NTG THREADS NPL[,NPL...]");
        std::process::exit(2);
    }
    let (npp, ntg, threads): (usize, usize, i32) = (args[2].parse()?, args[3].parse()?, args[4].parse()?);
    let on_demand = args[5] == "on-demand";
    let npls: Vec<usize> =
        if on_demand { vec![1] } else { args[5].split(',').map(str::parse).collect::<Result<_, _>>()? };
    let max_npl = *npls.iter().max().unwrap_or(&1) as u32;
    let mut backend = LlamaBackend::init()?;
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, &args[1], &LlamaModelParams::default())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(CELLS_PER_SEQUENCE * max_npl))
        .with_n_seq_max(max_npl)
        .with_n_batch(BATCH as u32)
        .with_n_ubatch(BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_kv_unified(false);
    let mut ctx = model.new_context(&backend, params)?;
    let mut batch = LlamaBatch::new(BATCH, max_npl as i32);
    if on_demand {
        for line in std::io::stdin().lock().lines() {
            line?;
            let pp = prompts(&mut ctx, &mut batch, 1, npp)?;
            println!("{{\"t_pp\":{pp:.6}}}");
        }
        return Ok(());
    }
    for &npl in &npls {
        let pp = prompts(&mut ctx, &mut batch, npl, npp)?;
        // Generation: one token per sequence per decode step.
        let started = Instant::now();
        for step in 0..ntg {
            batch.clear();
            for seq in 0..npl as i32 {
                batch.add(TOKEN, (npp + step) as i32, &[seq], true)?;
            }
            ctx.decode(&mut batch)?;
        }
        let tg = started.elapsed().as_secs_f64();
        println!(
            "{{\"npl\":{npl},\"t_pp\":{pp:.6},\"s_pp\":{:.2},\"t_tg\":{tg:.6},\"s_tg\":{:.2}}}",
            (npl * npp) as f64 / pp,
            (npl * ntg) as f64 / tg
        );
    }
    Ok(())
}

/// Prompt processing from an empty cache: `npl` prompts of `npp` tokens,
/// `BATCH` tokens per decode. Returns the seconds it took.
fn prompts(
    ctx: &mut LlamaContext,
    batch: &mut LlamaBatch,
    npl: usize,
    npp: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    ctx.clear_kv_cache();
    let started = Instant::now();
    let mut pending: Vec<(i32, usize)> = (0..npl as i32).flat_map(|s| (0..npp).map(move |p| (s, p))).collect();
    while !pending.is_empty() {
        batch.clear();
        let take = pending.len().min(BATCH);
        for (seq, pos) in pending.drain(..take) {
            batch.add(TOKEN, pos as i32, &[seq], pos + 1 == npp)?;
        }
        ctx.decode(batch)?;
    }
    Ok(started.elapsed().as_secs_f64())
}
