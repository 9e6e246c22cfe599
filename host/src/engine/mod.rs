//! The model engine: configs, the trainable transformer, weights (HF directories and GGUF),
//! tokenizers, chat templates, sampling and batched generation.

mod attention;
pub mod chat_template;
pub mod config;
pub(crate) mod cpu_slice;
mod decode_attention;
pub mod device;
pub mod generate;
pub mod gguf;
mod heads;
pub mod kv_cache;
mod linear;
mod linear_product;
pub mod loader;
pub mod lora;
pub mod masked_softmax;
pub mod model;
mod rms_norm;
mod rope;
pub mod sampling;
pub(crate) mod simd;
pub mod simd_level;
pub mod small_matmul;
mod swiglu;
#[cfg(test)]
mod test_support;
pub mod tiny;
pub mod token_logprobs;
pub mod tokenizer;
pub mod weights;
