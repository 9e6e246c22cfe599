//! The transformer itself, written with differentiable candle ops only (candle-transformers'
//! models return last-position logits and use fused ops that drop gradients; see the design's
//! stack notes). Tensor names are Hugging Face's, so loading and saving are inverses. Serves both
//! training (logits for every position, gradients to every weight) and generation (KV cache).

use super::attention::{self, Mask};
use super::decode_attention::decode_attention;
use super::heads::{merge_heads, split_heads};
use super::kv_cache::{Cache, LayerCache};
use super::rope::{Rope, RopeAt};
use super::token_logprobs::{self, TokenLogps};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::config::ModelConfig;
use super::linear::{Linear, linear};
use super::lora::AdapterSwitch;

/// RMS normalisation (see [`super::rms_norm`]).
#[derive(Clone, Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm {
            weight: vb.get(size, "weight")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::rms_norm::rms_norm(x, &self.weight, self.eps)
    }
}

#[derive(Clone, Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (heads, kv_heads) = (cfg.num_attention_heads, cfg.kv_heads());
        let bias = cfg.qkv_bias();
        Ok(Attention {
            q_proj: linear(h, heads * hd, bias, vb.pp("q_proj"))?,
            k_proj: linear(h, kv_heads * hd, bias, vb.pp("k_proj"))?,
            v_proj: linear(h, kv_heads * hd, bias, vb.pp("v_proj"))?,
            o_proj: linear(heads * hd, h, false, vb.pp("o_proj"))?,
            heads,
            kv_heads,
            head_dim: hd,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Mask,
        rope: &RopeAt,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let t = x.dim(1)?;
        // Grouped-query attention without copying keys and values per query head: the query
        // heads that share a KV head become extra query rows of that KV head, [B, G, R·T, D].
        let q = self.q_proj.forward(x)?;
        let q = split_heads(&q, self.heads, self.kv_heads, Some(rope))?;
        let k = self.k_proj.forward(x)?;
        let k = split_heads(&k, self.kv_heads, self.kv_heads, Some(rope))?;
        let v = split_heads(&self.v_proj.forward(x)?, self.kv_heads, self.kv_heads, None)?;
        // Whole sequences (training, scoring, a prefill into an empty cache) take the fused op,
        // which skips masked key ranges and keeps no score tensor; a decode step reads the cache
        // in place (`decode_attention`) on the CPU and takes the tensor ops elsewhere.
        let whole_sequences = cache.as_ref().is_none_or(|c| c.is_empty());
        let (k, v) = match cache {
            Some(cache) if !whole_sequences => cache.append(&k, &v)?,
            Some(cache) => {
                cache.append(&k, &v)?;
                (k, v)
            }
            None => (k, v),
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let out = if whole_sequences {
            attention::attention(&q, &k, &v, mask, scale)?
        } else if let Some(out) = decode_attention(&q, &k, &v, mask.tensor(), t, scale)? {
            out
        } else {
            attention::composite(&q, &k, &v, mask, scale)?
        };
        let out = merge_heads(&out, self.heads)?;
        self.o_proj.forward(&out)
    }
}

#[derive(Clone, Debug)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_proj: linear(h, i, false, vb.pp("gate_proj"))?,
            up_proj: linear(h, i, false, vb.pp("up_proj"))?,
            down_proj: linear(i, h, false, vb.pp("down_proj"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = self.gate_proj.forward(x)?;
        let up = self.up_proj.forward(x)?;
        self.down_proj.forward(&super::swiglu::swiglu(&gate, &up)?)
    }
}

#[derive(Clone, Debug)]
struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

/// A decoder-only transformer (llama family and Qwen2) with a language-model head.
#[derive(Clone, Debug)]
pub struct Transformer {
    embed_tokens: Embedding,
    layers: Vec<Block>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    config: ModelConfig,
    /// Activations' dtype when it differs from the weights' (mixed-precision training: f32
    /// master weights, bf16 compute).
    compute_dtype: Option<DType>,
    /// Turns every LoRA adapter of this model on or off.
    adapters: AdapterSwitch,
}

impl Transformer {
    /// Build from weights named as in Hugging Face checkpoints.
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let model = vb.pp("model");
        let embed = model
            .pp("embed_tokens")
            .get((config.vocab_size, config.hidden_size), "weight")?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let vb = model.pp(format!("layers.{i}"));
                Ok(Block {
                    input_layernorm: RmsNorm::new(
                        config.hidden_size,
                        config.rms_norm_eps,
                        vb.pp("input_layernorm"),
                    )?,
                    self_attn: Attention::new(config, vb.pp("self_attn"))?,
                    post_attention_layernorm: RmsNorm::new(
                        config.hidden_size,
                        config.rms_norm_eps,
                        vb.pp("post_attention_layernorm"),
                    )?,
                    mlp: Mlp::new(config, vb.pp("mlp"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if config.tie_word_embeddings {
            Linear::new(embed.clone(), None, "lm_head".into())
        } else {
            linear(
                config.hidden_size,
                config.vocab_size,
                false,
                vb.pp("lm_head"),
            )?
        };
        Ok(Transformer {
            embed_tokens: Embedding::new(embed, config.hidden_size),
            layers,
            norm: RmsNorm::new(config.hidden_size, config.rms_norm_eps, model.pp("norm"))?,
            lm_head,
            rope: Rope::new(config, vb.dtype(), vb.device())?,
            config: config.clone(),
            compute_dtype: None,
            adapters: AdapterSwitch::default(),
        })
    }

    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.layers
            .iter_mut()
            .flat_map(|l| {
                let (a, m) = (&mut l.self_attn, &mut l.mlp);
                [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj]
                    .into_iter()
                    .chain([&mut m.gate_proj, &mut m.up_proj, &mut m.down_proj])
            })
            .chain(std::iter::once(&mut self.lm_head))
    }

    /// Every linear layer's checkpoint name with its weight's shape [out, in].
    pub fn linear_layers(&mut self) -> Vec<(String, (usize, usize))> {
        self.linears_mut()
            .map(|l| Ok((l.name.clone(), l.weight().dims2()?)))
            .collect::<Result<_>>()
            .expect("linear weights are matrices")
    }

    /// Put LoRA adapters `(A [r, in], B [out, r])` on the named linear layers, each scaled by
    /// `scale` (α / r). A name that is no linear layer of this model is an error.
    pub fn attach_adapters(
        &mut self,
        mut adapters: std::collections::HashMap<String, (Tensor, Tensor)>,
        scale: f64,
    ) -> Result<()> {
        let switch = self.adapters.clone();
        for layer in self.linears_mut() {
            if let Some((a, b)) = adapters.remove(&layer.name) {
                layer.adapter = Some(switch.adapter(a, b, scale));
            }
        }
        match adapters.keys().next() {
            Some(name) => Err(candle_core::Error::Msg(format!(
                "no linear layer `{name}` to put an adapter on"
            ))),
            None => Ok(()),
        }
    }

    /// Switch the LoRA adapters on (the default) or off (the base model, exactly).
    pub fn set_adapters_enabled(&self, on: bool) {
        self.adapters.set(on);
    }

    /// Each adapted layer's `scale · B·A` [out, in] by the name of the weight it merges into.
    pub fn adapter_deltas(&mut self) -> Result<Vec<(String, Tensor)>> {
        self.linears_mut()
            .filter_map(|l| {
                let adapter = l.adapter.as_ref()?;
                Some(
                    adapter
                        .merged_delta()
                        .map(|delta| (format!("{}.weight", l.name), delta)),
                )
            })
            .collect()
    }

    /// Keep the linear layers' and the embedding's weights in bf16 and compute in f32: half the
    /// memory, and half the bytes a CPU decode step streams (the decode kernels widen each weight
    /// as they load it; a prefill widens each matrix for its GEMM). Norms, RoPE, activations and
    /// the KV cache stay f32. For generation only: nothing is trained through these weights.
    pub fn storing_weights_in_bf16(mut self) -> Result<Self> {
        let embed = self.embed_tokens.embeddings().to_dtype(DType::BF16)?;
        let tied = self.config.tie_word_embeddings;
        for layer in self.linears_mut() {
            let weight = if tied && layer.name == "lm_head" {
                embed.clone()
            } else {
                layer.weight().to_dtype(DType::BF16)?
            };
            layer.set_weight(weight);
        }
        self.embed_tokens = Embedding::new(embed, self.config.hidden_size);
        self.compute_dtype = Some(DType::F32);
        Ok(self)
    }

    /// Compute in `dtype` (e.g. bf16 on a GPU) while the weights keep theirs (f32 master
    /// weights for training); gradients flow back through the casts into the f32 weights.
    pub fn with_compute_dtype(mut self, dtype: DType) -> Self {
        self.compute_dtype = Some(dtype);
        self
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn new_cache(&self) -> Cache {
        Cache::new(self.layers.len())
    }

    /// Logits [B, T, V] for `input_ids` [B, T] at `positions` [B, T] under an additive `mask`
    /// [B, 1, T, T_past + T] (0 where attention is allowed, a large negative number elsewhere).
    /// With a cache, keys and values are appended to it. With `last_only`, only the last position's
    /// logits are computed ([B, 1, V]), which is all generation needs.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&mut Cache>,
        last_only: bool,
    ) -> Result<Tensor> {
        let x = self.trunk(input_ids, positions, mask, cache)?;
        let x = if last_only {
            let t = x.dim(1)?;
            x.narrow(1, t - 1, 1)?
        } else {
            x
        };
        self.lm_head.forward(&self.norm.forward(&x)?)
    }

    /// The final hidden states [B, T, D] (after the last norm) without a cache: training picks the
    /// positions it needs before projecting them to the vocabulary with [`Transformer::logits`].
    pub fn hidden_states(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        self.norm
            .forward(&self.trunk(input_ids, positions, mask, None)?)
    }

    /// Logits of hidden states from [`Transformer::hidden_states`] (any leading shape).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)
    }

    /// Each row's log-probability of its target token, from hidden states [N, D] picked from
    /// [`Transformer::hidden_states`]: on the CPU in f32 without keeping the logits
    /// ([`token_logprobs`]), otherwise from full logits.
    pub fn token_logps(&self, hidden: &Tensor, targets: &[u32]) -> Result<TokenLogps> {
        let weight = self.lm_head.weight();
        // The LM head is built without a bias; an adapter on it needs the layer's own forward.
        if self.lm_head.adapter.is_none() && token_logprobs::fused_applies(hidden, weight) {
            return token_logprobs::fused(hidden, weight, targets);
        }
        token_logprobs::from_logits(&self.logits(hidden)?.to_dtype(DType::F32)?, targets)
    }

    /// The embedding and the decoder layers.
    fn trunk(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut Cache>,
    ) -> Result<Tensor> {
        let mask = Mask::new(mask);
        let rope = RopeAt::new(&self.rope, positions);
        let mut x = self.embed_tokens.forward(input_ids)?;
        if let Some(dtype) = self.compute_dtype {
            x = x.to_dtype(dtype)?;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let residual = x.clone();
            let h = layer.input_layernorm.forward(&x)?;
            let h = layer.self_attn.forward(&h, &mask, &rope, layer_cache)?;
            let x2 = (residual + h)?;
            let h = layer
                .mlp
                .forward(&layer.post_attention_layernorm.forward(&x2)?)?;
            x = (x2 + h)?;
        }
        Ok(x)
    }
}

/// The value masked attention scores get: large and finite, so a row with every key masked (a
/// padding query) stays finite instead of turning into NaN.
pub const MASKED: f32 = -1e9;

/// An additive mask [B, 1, T, past + T] for queries at the end of each sequence: key `j` is visible
/// to query `i` when it is not padding and `j <= past + i`. `key_valid[b][j]` says whether key `j`
/// of sequence `b` is a real token.
pub fn attention_mask(key_valid: &[Vec<bool>], queries: usize, device: &Device) -> Result<Tensor> {
    let b = key_valid.len();
    let keys = key_valid.first().map_or(0, Vec::len);
    let past = keys - queries;
    let mut data = Vec::with_capacity(b * queries * keys);
    for valid in key_valid {
        for i in 0..queries {
            for (j, ok) in valid.iter().enumerate() {
                data.push(if *ok && j <= past + i { 0.0 } else { MASKED });
            }
        }
    }
    Tensor::from_vec(data, (b, 1, queries, keys), device)
}
