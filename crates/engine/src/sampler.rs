//! Building a llama.cpp sampler chain from request parameters.

use llama_cpp_2::sampling::LlamaSampler;

use crate::Sampling;

/// The sampler chain for one request: penalties, then greedy when the
/// temperature is 0, else top-k, top-p, min-p, temperature and a seeded draw.
pub(crate) fn build(params: &Sampling, n_vocab: i32, history: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    let (presence, frequency) = (params.presence_penalty, params.frequency_penalty);
    if presence != 0.0 || frequency != 0.0 {
        chain.push(LlamaSampler::penalties(n_vocab, history, 1.0, frequency, presence));
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
        return LlamaSampler::chain_simple(chain);
    }
    if params.top_k > 0 {
        chain.push(LlamaSampler::top_k(params.top_k));
    }
    if params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p, 1));
    }
    if params.min_p > 0.0 {
        chain.push(LlamaSampler::min_p(params.min_p, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature));
    chain.push(LlamaSampler::dist(params.seed));
    LlamaSampler::chain_simple(chain)
}
