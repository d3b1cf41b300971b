//! The engine's public face: load a model, submit requests, receive events.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use rampart_api::{FinishReason, Usage};
use tokio::sync::mpsc;

pub use crate::error::EngineError;
pub use crate::prompt::PromptInput;
use crate::prompt::{self, Tokenizer};
use crate::template::ChatTemplate;

mod decode_loop;

/// How to load and run one model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The model id clients ask for.
    pub name: String,
    /// GGUF file.
    pub path: PathBuf,
    /// Context length per sequence, in tokens.
    pub context: u32,
    /// CPU threads for decoding.
    pub threads: usize,
    /// Sequences decoded together.
    pub parallel: u32,
    /// Requests that may wait for a free sequence.
    pub queue: usize,
    /// Most tokens per decode step.
    pub batch: u32,
    /// `max_tokens` when a request sets none; default: the rest of the context.
    pub default_max_tokens: Option<u32>,
    /// Lock the weights in memory (`mlock`), so they are never swapped to disk; where the
    /// limit on locked memory does not allow it, llama.cpp warns and goes on.
    pub lock_memory: bool,
}

/// Sampling parameters, resolved to concrete values.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f32,
    /// Nucleus mass; 1 disables.
    pub top_p: f32,
    /// 0 disables.
    pub top_k: i32,
    /// 0 disables.
    pub min_p: f32,
    /// Seed of the random draw.
    pub seed: u32,
    /// Most tokens to generate; `None` for the engine's default.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Presence penalty, -2 to 2.
    pub presence_penalty: f32,
    /// Frequency penalty, -2 to 2.
    pub frequency_penalty: f32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            seed: 0,
            max_tokens: None,
            stop: Vec::new(),
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: PromptInput,
    /// How to sample.
    pub sampling: Sampling,
}

/// What a running generation reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text (complete UTF-8, stop sequences withheld).
    Text(String),
    /// Generation ended.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// Exact token counts.
        usage: Usage,
    },
    /// Generation failed after it started.
    Failed(String),
}

/// A generation accepted by the engine.
pub struct Generation {
    /// Tokens in the prompt as the model sees it.
    pub prompt_tokens: u32,
    /// Tokens generated so far (what a generation cancelled before `Done` cost).
    pub generated: Arc<AtomicU32>,
    /// Events until `Done` or `Failed`; dropping it cancels the generation.
    pub events: mpsc::UnboundedReceiver<Event>,
}

/// A job for the decode thread.
pub(crate) struct Job {
    pub(crate) tokens: Vec<LlamaToken>,
    pub(crate) generated: Arc<AtomicU32>,
    pub(crate) sampling: Sampling,
    pub(crate) max_tokens: u32,
    pub(crate) events: mpsc::UnboundedSender<Event>,
}

/// State shared by the submitting side and the decode thread.
pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    pub(crate) model: LlamaModel,
    template: Option<ChatTemplate>,
    /// Bytes of the vocabulary's longest token.
    longest_token: usize,
}

/// A loaded model with its decode thread. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    /// Turns at tokenizing: as many at once as the model has decode threads.
    tokenizing: Arc<tokio::sync::Semaphore>,
}

/// llama.cpp's process-wide backend, initialised once.
pub(crate) fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend initialises once per process")
    })
}

fn check_gguf(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(|_| "the file is too short to be a GGUF model".to_owned())?;
    if &magic != b"GGUF" {
        return Err("not a GGUF file (bad magic bytes)".to_owned());
    }
    Ok(())
}

impl Engine {
    /// Loads the model and starts its decode thread. Fails with the path and
    /// the reason when the file is missing, not GGUF, or not loadable.
    pub fn start(config: EngineConfig) -> Result<Self, EngineError> {
        let load_error = |reason: String| EngineError::Load { path: config.path.clone(), reason };
        check_gguf(&config.path).map_err(load_error)?;
        let model = LlamaModel::load_from_file(
            backend(),
            &config.path,
            &LlamaModelParams::default().with_use_mlock(config.lock_memory),
        )
        .map_err(|e| load_error(format!("llama.cpp could not load it (corrupt or unsupported GGUF): {e}")))?;
        let template = match model.meta_val_str("tokenizer.chat_template") {
            Ok(source) => {
                let vocab = model.vocab();
                let text = |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
                Some(ChatTemplate::new(&source, text(vocab.bos()), text(vocab.eos())).map_err(load_error)?)
            }
            Err(_) => None,
        };
        let longest_token = prompt::longest_token(&model);
        let shared = Arc::new(Shared { config, model, template, longest_token });
        let (jobs, queue) = mpsc::channel(shared.config.queue);
        decode_loop::spawn(Arc::clone(&shared), queue)?;
        let tokenizing = Arc::new(tokio::sync::Semaphore::new(shared.config.threads.max(1)));
        Ok(Self { shared, jobs, tokenizing })
    }

    /// The model id.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Whether the model can chat (it has a chat template).
    pub fn can_chat(&self) -> bool {
        self.shared.template.is_some()
    }

    /// Tokens a prompt takes, after templating; runs on the calling thread.
    pub fn count_prompt_tokens(&self, prompt: &PromptInput) -> Result<u32, EngineError> {
        Ok(self.shared.tokenize(prompt, &AtomicBool::new(false))?.len() as u32)
    }

    /// Queues a request. Templating and tokenization run on the blocking pool,
    /// as many at once as the model has threads, and stop if this future is
    /// dropped (its client left); a full queue is refused before they run, an
    /// over-long prompt as soon as it cannot fit.
    pub async fn submit(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        // A full queue refuses before any work; then prompts are tokenized a few at a time.
        if self.jobs.capacity() == 0 {
            return Err(EngineError::QueueFull(self.name().to_owned()));
        }
        let _turn = self.tokenizing.acquire().await.map_err(|_| EngineError::Stopped(self.name().to_owned()))?;
        let shared = Arc::clone(&self.shared);
        let prompt = request.prompt;
        let cancelled = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&cancelled.0);
        let tokens = tokio::task::spawn_blocking(move || shared.tokenize(&prompt, &flag))
            .await
            .map_err(|_| EngineError::Stopped(self.name().to_owned()))??;
        drop(cancelled);
        let context = self.shared.config.context;
        let prompt_tokens = tokens.len() as u32;
        if prompt_tokens >= context {
            return Err(EngineError::PromptTooLong { prompt_tokens, context });
        }
        let room = context - prompt_tokens;
        let wanted = request.sampling.max_tokens.or(self.shared.config.default_max_tokens).unwrap_or(room);
        let (events_tx, events) = mpsc::unbounded_channel();
        let generated = Arc::new(AtomicU32::new(0));
        let job = Job {
            tokens,
            generated: Arc::clone(&generated),
            max_tokens: wanted.min(room),
            sampling: request.sampling,
            events: events_tx,
        };
        self.jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => EngineError::QueueFull(self.name().to_owned()),
            mpsc::error::TrySendError::Closed(_) => EngineError::Stopped(self.name().to_owned()),
        })?;
        Ok(Generation { prompt_tokens, generated, events })
    }
}

/// Sets its flag when dropped: the tokenizing thread then stops.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Shared {
    fn tokenize(&self, prompt: &PromptInput, cancelled: &AtomicBool) -> Result<Vec<LlamaToken>, EngineError> {
        let tokenizer = Tokenizer {
            model: &self.model,
            template: self.template.as_ref(),
            context: self.config.context,
            longest_token: self.longest_token,
        };
        tokenizer.tokenize(prompt, &self.config.name, cancelled)
    }

    pub(crate) fn context_params(&self) -> llama_cpp_2::context::params::LlamaContextParams {
        let c = &self.config;
        let total = c.context.saturating_mul(c.parallel);
        let threads = i32::try_from(c.threads.max(1)).unwrap_or(i32::MAX);
        llama_cpp_2::context::params::LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(total))
            .with_n_seq_max(c.parallel)
            .with_n_batch(c.batch)
            .with_n_ubatch(c.batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // A unified KV cache changes greedy output with the batch shape.
            .with_kv_unified(false)
    }
}
