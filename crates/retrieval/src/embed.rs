//! Text embeddings with all-MiniLM-L6-v2, run in-process by candle: the
//! tokenizer pads a batch to its longest text (truncating at 256 tokens, the
//! model's training length), the mean of the token vectors under the attention
//! mask is taken and scaled to unit length, so a dot product is the cosine.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::model::{CONFIG, TOKENIZER, WEIGHTS};

/// Dimensions of an embedding.
pub const DIMENSIONS: usize = 384;
/// Tokens a text is truncated to.
const MAX_TOKENS: usize = 256;
/// Texts embedded in one pass.
const BATCH: usize = 32;

/// Why the model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file of the model is missing or unreadable.
    #[error(
        "the embedding model in {dir}: {reason}; fetch it with `rampart model fetch-embedding` or copy it in (docs/retrieval.md)"
    )]
    Load {
        /// The model directory.
        dir: String,
        /// What failed.
        reason: String,
    },
    /// Running the model failed.
    #[error("embedding failed: {0}")]
    Run(String),
}

fn run_error(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Run(e.to_string())
}

/// The embedding model, loaded.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Embedder {
    /// Loads the model from `dir` (its weights, tokenizer and configuration).
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let failed = |reason: String| EmbedError::Load { dir: dir.display().to_string(), reason };
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| failed(format!("{name}: {e}")));
        let config: Config = serde_json::from_slice(&read(CONFIG)?).map_err(|e| failed(format!("{CONFIG}: {e}")))?;
        let device = Device::Cpu;
        let weights = VarBuilder::from_buffered_safetensors(read(WEIGHTS)?, DType::F32, &device)
            .map_err(|e| failed(format!("{WEIGHTS}: {e}")))?;
        let model = BertModel::load(weights, &config).map_err(|e| failed(format!("{WEIGHTS}: {e}")))?;
        let mut tokenizer = Tokenizer::from_bytes(read(TOKENIZER)?).map_err(|e| failed(format!("{TOKENIZER}: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| failed(format!("{TOKENIZER}: {e}")))?;
        Ok(Self { model, tokenizer, device })
    }

    /// The unit-length embedding of each text, in order. Texts are batched
    /// by length, so a batch pads its short texts to little more than their own length.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            for (&i, vector) in batch.iter().zip(self.embed_batch(&batch_texts)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// The unit-length embedding of one text (a query).
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed_batch(&[text])?.remove(0))
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(run_error)?;
        let tensor = |rows: Vec<&[u32]>| -> Result<Tensor, EmbedError> {
            let rows: Vec<Tensor> =
                rows.into_iter().map(|r| Tensor::new(r, &self.device)).collect::<Result<_, _>>().map_err(run_error)?;
            Tensor::stack(&rows, 0).map_err(run_error)
        };
        let ids = tensor(encodings.iter().map(|e| e.get_ids()).collect())?;
        let mask = tensor(encodings.iter().map(|e| e.get_attention_mask()).collect())?;
        let types = ids.zeros_like().map_err(run_error)?;
        let tokens = self.model.forward(&ids, &types, Some(&mask)).map_err(run_error)?;
        let pooled = (|| {
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let mean = tokens.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
            mean.broadcast_div(&mean.sqr()?.sum_keepdim(1)?.sqrt()?)?.to_vec2::<f32>()
        })()
        .map_err(run_error)?;
        Ok(pooled)
    }
}
