//! The model engine on tiny random models built by the tests: loading, agreement with
//! candle-transformers, gradients to every weight, batched generation, stop strings, templates.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use spar_host::engine::chat_template::Message;
use spar_host::engine::config::Family;
use spar_host::engine::generate::{FinishReason, Request, generate};
use spar_host::engine::loader;
use spar_host::engine::model::{Transformer, attention_mask};
use spar_host::engine::sampling::SamplingParams;
use spar_host::engine::tiny::{self, TinySpec};

fn full_logits(model: &Transformer, ids: &[u32]) -> Tensor {
    let device = Device::Cpu;
    let t = ids.len();
    let input = Tensor::new(ids, &device).unwrap().unsqueeze(0).unwrap();
    let positions = Tensor::arange(0u32, t as u32, &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mask = attention_mask(&[vec![true; t]], t, &device).unwrap();
    model
        .forward(&input, &positions, &mask, None, false)
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn own_module_matches_candle_transformers_llama() {
    let spec = TinySpec::default();
    let cfg = tiny::config(&spec);
    let weights = tiny::weights(&cfg, spec.seed).unwrap();
    let device = Device::Cpu;
    let ours = Transformer::new(
        &cfg,
        VarBuilder::from_tensors(weights.clone(), DType::F32, &device),
    )
    .unwrap();

    let theirs_cfg: candle_transformers::models::llama::LlamaConfig =
        serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    let theirs_cfg = theirs_cfg.into_config(false);
    let vb = VarBuilder::from_tensors(weights, DType::F32, &device);
    let theirs = candle_transformers::models::llama::Llama::load(vb, &theirs_cfg).unwrap();
    let mut cache =
        candle_transformers::models::llama::Cache::new(true, DType::F32, &theirs_cfg, &device)
            .unwrap();

    let ids: Vec<u32> = "Hello, tiny model!".bytes().map(u32::from).collect();
    let input = Tensor::new(ids.as_slice(), &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let reference = theirs
        .forward(&input, 0, &mut cache)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let all = full_logits(&ours, &ids);
    let last = all.squeeze(0).unwrap().get(ids.len() - 1).unwrap();
    let diff = max_abs_diff(&last, &reference);
    assert!(diff < 1e-4, "max |diff| = {diff}");
}

#[test]
fn every_weight_gets_a_gradient_from_the_full_sequence_loss() {
    for family in [Family::Llama, Family::Qwen2] {
        let spec = TinySpec {
            family,
            ..TinySpec::default()
        };
        let cfg = tiny::config(&spec);
        let weights = tiny::weights(&cfg, spec.seed).unwrap();
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().unwrap();
            for (name, tensor) in &weights {
                data.insert(name.clone(), candle_core::Var::from_tensor(tensor).unwrap());
            }
        }
        let model = Transformer::new(
            &cfg,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let ids: Vec<u32> = "gradients everywhere".bytes().map(u32::from).collect();
        let logits = full_logits(&model, &ids).squeeze(0).unwrap();
        let targets = Tensor::new(&ids[1..], &Device::Cpu).unwrap();
        let loss =
            candle_nn::loss::cross_entropy(&logits.narrow(0, 0, ids.len() - 1).unwrap(), &targets)
                .unwrap();
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        assert_eq!(data.len(), weights.len());
        for (name, var) in data.iter() {
            let grad = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{family:?}: no gradient for {name}"));
            let norm: f32 = grad.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm > 0.0, "{family:?}: zero gradient for {name}");
        }
    }
}

#[test]
fn an_hf_directory_round_trips_and_gives_the_same_logits() {
    let dir = common::scratch("engine-hf");
    let spec = TinySpec {
        family: Family::Qwen2,
        tie_embeddings: true,
        ..TinySpec::default()
    };
    tiny::write_hf_dir(&dir, &spec).unwrap();
    let loaded = loader::load(&dir).unwrap();
    let from_disk = loaded.transformer(DType::F32, &Device::Cpu).unwrap();
    let cfg = tiny::config(&spec);
    let in_memory = Transformer::new(
        &cfg,
        VarBuilder::from_tensors(
            tiny::weights(&cfg, spec.seed).unwrap(),
            DType::F32,
            &Device::Cpu,
        ),
    )
    .unwrap();
    let ids: Vec<u32> = "round trip".bytes().map(u32::from).collect();
    assert_eq!(
        max_abs_diff(
            &full_logits(&from_disk, &ids),
            &full_logits(&in_memory, &ids)
        ),
        0.0
    );
    assert_eq!(loaded.stop_token_ids(), vec![258]);
    let template = loaded
        .template
        .as_ref()
        .expect("template from tokenizer_config.json");
    assert_eq!(
        template
            .render(&[Message::new("user", "hi")], true)
            .unwrap(),
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    // The chat template's special tokens are single ids; the rest is one id per byte.
    let ids = loaded
        .tokenizer
        .encode("<|im_start|>user\nhi<|im_end|>")
        .unwrap();
    assert_eq!(ids.len(), 1 + "user\nhi".len() + 1);
    assert_eq!(ids.first(), Some(&257));
    assert_eq!(ids.last(), Some(&258));
    assert_eq!(loaded.tokenizer.decode(&ids).unwrap(), "user\nhi");
}

fn requests(seeds: &[(u64, &str)], temperature: f64) -> Vec<Request> {
    let tokenizer = tiny::tokenizer().unwrap();
    seeds
        .iter()
        .map(|(seed, prompt)| Request {
            prompt_ids: tokenizer.encode(prompt).unwrap(),
            sampling: SamplingParams {
                temperature,
                top_p: 0.9,
                top_k: 0,
                seed: *seed,
            },
            max_new_tokens: 24,
            stop_token_ids: vec![258],
            stop_strings: vec![],
        })
        .collect()
}

#[test]
fn batched_generation_equals_one_at_a_time_for_the_same_seeds() {
    let spec = TinySpec::default();
    let cfg = tiny::config(&spec);
    let model = Transformer::new(
        &cfg,
        VarBuilder::from_tensors(
            tiny::weights(&cfg, spec.seed).unwrap(),
            DType::F32,
            &Device::Cpu,
        ),
    )
    .unwrap();
    let tokenizer = tiny::tokenizer().unwrap();
    let batch = requests(
        &[
            (1, "a"),
            (2, "a much longer prompt here"),
            (3, "mid length"),
            (1, "a"),
        ],
        0.9,
    );
    let together = generate(&model, &tokenizer, &batch, &Device::Cpu).unwrap();
    for (i, request) in batch.iter().enumerate() {
        let alone = generate(
            &model,
            &tokenizer,
            std::slice::from_ref(request),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(together[i], alone[0], "request {i}");
    }
    assert_eq!(
        together[0], together[3],
        "same prompt and seed, same output"
    );
    assert_ne!(
        together[0].token_ids,
        generate(
            &model,
            &tokenizer,
            &requests(&[(99, "a")], 0.9),
            &Device::Cpu
        )
        .unwrap()[0]
            .token_ids
    );
}

#[test]
fn a_stop_string_ends_the_sequence_exactly() {
    let spec = TinySpec::default();
    let cfg = tiny::config(&spec);
    let model = Transformer::new(
        &cfg,
        VarBuilder::from_tensors(
            tiny::weights(&cfg, spec.seed).unwrap(),
            DType::F32,
            &Device::Cpu,
        ),
    )
    .unwrap();
    let tokenizer = tiny::tokenizer().unwrap();
    let mut request = requests(&[(5, "stop here")], 0.0).remove(0);
    request.stop_token_ids.clear();
    let free = generate(
        &model,
        &tokenizer,
        std::slice::from_ref(&request),
        &Device::Cpu,
    )
    .unwrap()
    .remove(0);
    assert_eq!(free.finish_reason, FinishReason::Length);
    // Stop on a piece of what the model says anyway, starting a few characters in.
    let chars: Vec<char> = free.text.chars().collect();
    assert!(chars.len() >= 8, "{:?}", free.text);
    let stop: String = chars[4..7].iter().collect();
    let expected: String = free.text[..free.text.find(&stop).unwrap()].to_string();
    request.stop_strings = vec![stop.clone()];
    let stopped = generate(&model, &tokenizer, &[request], &Device::Cpu)
        .unwrap()
        .remove(0);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.text, expected);
    assert!(!stopped.text.contains(&stop));
}

#[test]
fn bad_model_directories_are_named_with_the_reason() {
    let dir = common::scratch("engine-bad");
    let error = loader::load(&dir).err().unwrap().to_string();
    assert_eq!(
        error,
        format!("{}: no config.json in this model directory", dir.display())
    );
    tiny::write_hf_dir(&dir, &TinySpec::default()).unwrap();
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let error = loader::load(&dir).err().unwrap().to_string();
    assert_eq!(
        error,
        format!(
            "{}: no tokenizer.json in this model directory",
            dir.display()
        )
    );
    tiny::write_hf_dir(&dir, &TinySpec::default()).unwrap();
    let config = std::fs::read_to_string(dir.join("config.json"))
        .unwrap()
        .replace("\"llama\"", "\"gpt2\"");
    std::fs::write(dir.join("config.json"), config).unwrap();
    let error = format!("{:#}", loader::load(&dir).err().unwrap());
    assert!(
        error.starts_with(&format!(
            "{}: unsupported architecture `gpt2`",
            dir.join("config.json").display()
        )),
        "{error}"
    );
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    let spec = TinySpec {
        max_positions: 16,
        ..TinySpec::default()
    };
    let cfg = tiny::config(&spec);
    let model = Transformer::new(
        &cfg,
        VarBuilder::from_tensors(
            tiny::weights(&cfg, spec.seed).unwrap(),
            DType::F32,
            &Device::Cpu,
        ),
    )
    .unwrap();
    let tokenizer = tiny::tokenizer().unwrap();
    let error = generate(
        &model,
        &tokenizer,
        &requests(&[(1, "twelve chars")], 0.0),
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert_eq!(
        error,
        "request 0: prompt of 12 tokens plus 24 new tokens exceeds the model's context of 16 tokens"
    );
}
