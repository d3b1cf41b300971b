//! The decode thread: continuous batching over one llama.cpp context.
//!
//! Every step builds one batch holding the last sampled token of each
//! generating sequence plus as much pending prompt as the batch has room for,
//! decodes it, samples, and reports. New requests are admitted between steps;
//! sequences whose receiver was dropped are freed before the next step.
//!
//! With a KV cache per sequence (not unified), llama.cpp puts into one
//! micro-batch only sequences whose ids follow one another in batch order
//! (`split_equal`, sequential); any other arrangement costs a whole extra
//! forward pass per run of ids. So a new request takes the lowest free
//! sequence id, and every batch lists its sequences in id order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use rampart_api::{FinishReason, Usage};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::{EngineError, Job, Shared};
use crate::{Event, StopMatcher, sampler};

/// One request bound to a KV sequence.
struct Slot {
    seq: i32,
    job: Job,
    sampler: LlamaSampler,
    /// Prompt tokens already submitted for decoding.
    prompt_done: usize,
    /// Position of the next token to decode.
    pos: i32,
    /// Sampled and not yet decoded.
    next_token: Option<LlamaToken>,
    /// Index in the current batch whose logits this slot samples from.
    logits_at: Option<i32>,
    generated: u32,
    decoder: encoding_rs::Decoder,
    stop: StopMatcher,
}

impl Slot {
    fn prompt_tokens(&self) -> u32 {
        self.job.tokens.len() as u32
    }
    fn send(&self, event: Event) {
        // A closed receiver means the client left; the slot is freed next step.
        let _ = self.job.events.send(event);
    }
    fn finish(&mut self, reason: FinishReason) {
        let rest = self.stop.flush();
        if !rest.is_empty() && reason == FinishReason::Length {
            self.send(Event::Text(rest));
        }
        self.send(Event::Done { finish_reason: reason, usage: Usage::new(self.prompt_tokens(), self.generated) });
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, queue: mpsc::Receiver<Job>) -> Result<(), EngineError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let path = shared.config.path.clone();
    let load_error = |reason: String| EngineError::Load { path: path.clone(), reason };
    std::thread::Builder::new()
        .name(format!("engine-{}", shared.config.name))
        .spawn(move || {
            let ctx = match shared.model.new_context(super::backend(), shared.context_params()) {
                Ok(ctx) => ctx,
                Err(err) => {
                    let _ = ready_tx.send(Err(format!("llama.cpp could not create a context: {err}")));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            DecodeLoop::new(&shared, ctx, queue).run();
        })
        .map_err(|err| load_error(format!("cannot start the decode thread: {err}")))?;
    ready_rx.recv().unwrap_or_else(|_| Err("the decode thread ended during start-up".to_owned())).map_err(load_error)
}

struct DecodeLoop<'a> {
    shared: &'a Shared,
    ctx: LlamaContext<'a>,
    queue: mpsc::Receiver<Job>,
    slots: Vec<Slot>,
    /// Free sequence ids, lowest first.
    free_seqs: BinaryHeap<Reverse<i32>>,
    batch: LlamaBatch<'static>,
    piece: Vec<u8>,
}

impl<'a> DecodeLoop<'a> {
    fn new(shared: &'a Shared, ctx: LlamaContext<'a>, queue: mpsc::Receiver<Job>) -> Self {
        let parallel = shared.config.parallel as i32;
        Self {
            shared,
            ctx,
            queue,
            slots: Vec::with_capacity(parallel as usize),
            free_seqs: (0..parallel).map(Reverse).collect(),
            batch: LlamaBatch::new(shared.config.batch as usize, parallel),
            piece: Vec::with_capacity(64),
        }
    }

    fn run(mut self) {
        while self.admit() {
            self.release_cancelled();
            if self.slots.is_empty() {
                continue;
            }
            if let Err(err) = self.step() {
                tracing::error!(model = %self.shared.config.name, error = %err, "decode step failed; failing its sequences");
                for slot in std::mem::take(&mut self.slots) {
                    slot.send(Event::Failed(format!("the engine failed: {err}")));
                    self.free(slot.seq);
                }
            }
        }
    }

    /// Takes new jobs while sequences are free; blocks only when idle.
    /// Returns false when the engine is being dropped and has no work left.
    fn admit(&mut self) -> bool {
        while let Some(&Reverse(seq)) = self.free_seqs.peek() {
            let job = if self.slots.is_empty() {
                match self.queue.blocking_recv() {
                    Some(job) => job,
                    None => return false,
                }
            } else {
                match self.queue.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return true,
                }
            };
            if job.events.is_closed() {
                continue;
            }
            self.free_seqs.pop();
            let sampler = sampler::build(&job.sampling, self.shared.model.n_vocab(), self.shared.config.context as i32);
            let stop = StopMatcher::new(job.sampling.stop.clone());
            self.slots.push(Slot {
                seq,
                job,
                sampler,
                prompt_done: 0,
                pos: 0,
                next_token: None,
                logits_at: None,
                generated: 0,
                decoder: encoding_rs::UTF_8.new_decoder(),
                stop,
            });
        }
        true
    }

    fn free(&mut self, seq: i32) {
        // Removing a whole sequence cannot fail for a valid id.
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.free_seqs.push(Reverse(seq));
    }

    fn release_cancelled(&mut self) {
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].job.events.is_closed() {
                let slot = self.slots.swap_remove(i);
                self.free(slot.seq);
            } else {
                i += 1;
            }
        }
    }

    fn step(&mut self) -> Result<(), String> {
        self.batch.clear();
        self.slots.sort_unstable_by_key(|slot| slot.seq);
        // Generating sequences first: each gets its one token; prompts share the rest.
        let generating = self.slots.iter().filter(|slot| slot.next_token.is_some()).count();
        let mut prompt_budget = (self.shared.config.batch as usize).saturating_sub(generating);
        for slot in &mut self.slots {
            slot.logits_at = None;
            if let Some(token) = slot.next_token.take() {
                slot.logits_at = Some(self.batch.n_tokens());
                self.batch.add(token, slot.pos, &[slot.seq], true).map_err(|e| e.to_string())?;
                slot.pos += 1;
                continue;
            }
            let remaining = slot.job.tokens.len() - slot.prompt_done;
            let take = remaining.min(prompt_budget);
            if take == 0 {
                continue;
            }
            let last = slot.prompt_done + take == slot.job.tokens.len();
            for (k, &token) in slot.job.tokens[slot.prompt_done..slot.prompt_done + take].iter().enumerate() {
                let wants_logits = last && k + 1 == take;
                if wants_logits {
                    slot.logits_at = Some(self.batch.n_tokens());
                }
                self.batch.add(token, slot.pos, &[slot.seq], wants_logits).map_err(|e| e.to_string())?;
                slot.pos += 1;
            }
            slot.prompt_done += take;
            prompt_budget -= take;
        }
        self.ctx.decode(&mut self.batch).map_err(|e| e.to_string())?;
        self.sample_all();
        Ok(())
    }

    fn sample_all(&mut self) {
        let context = self.shared.config.context as i32;
        let mut i = 0;
        while i < self.slots.len() {
            let finished = match self.slots[i].logits_at {
                Some(at) => self.sample_one(i, at, context),
                None => None,
            };
            if let Some(reason) = finished {
                let mut slot = self.slots.swap_remove(i);
                slot.finish(reason);
                self.free(slot.seq);
            } else {
                i += 1;
            }
        }
    }

    /// Samples the next token of slot `i`; returns why it finished, if it did.
    fn sample_one(&mut self, i: usize, at: i32, context: i32) -> Option<FinishReason> {
        let vocab = self.shared.model.vocab();
        let slot = &mut self.slots[i];
        let token = slot.sampler.sample(&self.ctx, at);
        if vocab.is_eog(token) {
            return Some(FinishReason::Stop);
        }
        slot.generated += 1;
        slot.job.generated.store(slot.generated, std::sync::atomic::Ordering::Relaxed);
        self.piece.clear();
        vocab.token_to_piece_into(token, &mut self.piece, false, None);
        let mut text = String::with_capacity(self.piece.len() + 4);
        let _ = slot.decoder.decode_to_string(&self.piece, &mut text, false);
        let (emit, stopped) = slot.stop.push(&text);
        if !emit.is_empty() {
            slot.send(Event::Text(emit));
        }
        if stopped {
            return Some(FinishReason::Stop);
        }
        if slot.generated >= slot.job.max_tokens || slot.pos >= context {
            return Some(FinishReason::Length);
        }
        slot.next_token = Some(token);
        None
    }
}
