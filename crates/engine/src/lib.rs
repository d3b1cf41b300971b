//! Rampart's embedded inference engine: llama.cpp in-process, so that a site
//! with no GPU cluster still serves a model from one binary.
//!
//! Each model gets one decode thread that owns a llama.cpp context with one KV
//! sequence per concurrent request. New requests join between decode steps
//! (continuous batching); a request whose client went away frees its sequence
//! at the next step. Prompt templating and tokenization run on the blocking
//! pool, so nothing here blocks an async runtime.

pub mod default_model;
mod engine;
mod error;
mod prompt;
mod sampler;
mod stop;
mod template;

pub use engine::{Engine, EngineConfig, EngineError, Event, GenerateRequest, Generation, PromptInput, Sampling};
pub use stop::StopMatcher;
pub use template::{ChatTemplate, Part};
