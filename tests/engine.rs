//! The model engine on tiny random models built by the tests: loading, agreement with
//! candle-transformers, gradients to every weight, batched generation, stop strings, templates.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use spar_host::engine::chat_template::Message;
use spar_host::engine::config::Family;
use spar_host::engine::generate::{FinishReason, PromptSharing, Request, generate, generate_with};
use spar_host::engine::loader;
use spar_host::engine::model::{Transformer, attention_mask};
use spar_host::engine::sampling::SamplingParams;
use spar_host::engine::simd_level::{Kernel, with_kernel};
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

/// The default tiny model, in f32 on the CPU.
fn tiny_model() -> Transformer {
    let spec = TinySpec::default();
    let cfg = tiny::config(&spec);
    Transformer::new(
        &cfg,
        VarBuilder::from_tensors(
            tiny::weights(&cfg, spec.seed).unwrap(),
            DType::F32,
            &Device::Cpu,
        ),
    )
    .unwrap()
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
    let model = tiny_model();
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

/// Sequences that share a prompt (n samples, branch children, k votes) prefill it once and copy
/// its cache; every sequence still gets the tokens of a prefill of its own, sampled and greedy,
/// whatever the order of the shared prompts in the batch.
#[test]
fn shared_prompt_prefill_gives_the_tokens_of_separate_prefills() {
    let model = tiny_model();
    let tokenizer = tiny::tokenizer().unwrap();
    let prompts = ["a", "a much longer prompt here", "mid length", "x"];
    // Interleaved groups of different sizes, one prompt alone.
    let jobs: Vec<(u64, &str)> = (0..13u64)
        .map(|i| (i, prompts[(i as usize * 7) % 3]))
        .chain([(40, prompts[3])])
        .collect();
    for temperature in [0.9, 0.0] {
        let batch = requests(&jobs, temperature);
        let run = |sharing| generate_with(&model, &tokenizer, &batch, &Device::Cpu, sharing);
        let (shared, separate) = (
            run(PromptSharing::On).unwrap(),
            run(PromptSharing::Off).unwrap(),
        );
        assert_eq!(shared, separate, "temperature {temperature}");
        if temperature > 0.0 {
            let distinct: std::collections::HashSet<&Vec<u32>> =
                shared.iter().map(|g| &g.token_ids).collect();
            assert!(distinct.len() > 4, "the seeds give different samples");
        }
    }
}

/// Logits of a prefill and three decode steps for six sequences, with decode-sized products
/// taking `kernel` (`None`: candle's GEMM, the reference).
fn decode_logits(model: &Transformer, kernel: Option<Kernel>) -> Vec<Tensor> {
    let device = Device::Cpu;
    with_kernel(kernel, || {
        let (b, t) = (6usize, 5usize);
        let ids: Vec<u32> = (0..(b * t) as u32).map(|i| 3 + (i * 37) % 250).collect();
        let mut input = Tensor::from_vec(ids, (b, t), &device).unwrap();
        let mut positions = Tensor::arange(0u32, t as u32, &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
            .repeat((b, 1))
            .unwrap();
        let mut cache = model.new_cache();
        let mut all = Vec::new();
        for step in 0..4 {
            let keys = t + step;
            let mask = attention_mask(&vec![vec![true; keys]; b], keys - cache.len(), &device);
            let logits = model
                .forward(&input, &positions, &mask.unwrap(), Some(&mut cache), true)
                .unwrap();
            input = logits.argmax(2).unwrap().to_dtype(DType::U32).unwrap();
            positions = Tensor::full(keys as u32, (b, 1), &device).unwrap();
            all.push(logits);
        }
        all
    })
}

/// Every decode kernel this CPU has (AVX-512, AVX2 with FMA, portable) gives logits within 1e-4
/// of the GEMM's, in the prefill and in every decode step.
#[test]
fn every_decode_kernel_gives_the_reference_logits() {
    let model = tiny_model();
    let reference = decode_logits(&model, None);
    for kernel in [Kernel::Avx512, Kernel::Avx2, Kernel::Portable] {
        if !kernel.available() {
            eprintln!("{kernel:?}: not on this CPU, not checked");
            continue;
        }
        for (step, (ours, theirs)) in decode_logits(&model, Some(kernel))
            .iter()
            .zip(&reference)
            .enumerate()
        {
            let diff = max_abs_diff(ours, theirs);
            eprintln!("{kernel:?} step {step}: max |logit difference| {diff:e}");
            assert!(diff < 1e-4, "{kernel:?} step {step}: {diff}");
        }
    }
}

/// Weights stored in bf16 (CPU generation with `dtype = "bf16"`): every decode kernel, and the
/// GEMM path that widens them, gives the logits of the f32 model whose weights were rounded to
/// bf16 the same way, so the only difference from f32 is the rounding of the weights (printed).
#[test]
fn bf16_weight_storage_gives_the_logits_of_the_rounded_weights() {
    let spec = TinySpec::default();
    let cfg = tiny::config(&spec);
    let weights = tiny::weights(&cfg, spec.seed).unwrap();
    let stored = |name: &str| {
        name.ends_with("_proj.weight")
            || name.ends_with("embed_tokens.weight")
            || name == "lm_head.weight"
    };
    let rounded: std::collections::HashMap<String, Tensor> = weights
        .iter()
        .map(|(name, w)| {
            let w = if stored(name) {
                w.to_dtype(DType::BF16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
            } else {
                w.clone()
            };
            (name.clone(), w)
        })
        .collect();
    let build = |weights| {
        Transformer::new(
            &cfg,
            VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
        )
        .unwrap()
    };
    let bf16 = build(weights.clone()).storing_weights_in_bf16().unwrap();
    let reference = decode_logits(&build(rounded), None);
    let unrounded = decode_logits(&build(weights), None);
    for kernel in [
        Some(Kernel::Avx512),
        Some(Kernel::Avx2),
        Some(Kernel::Portable),
        None,
    ] {
        if kernel.is_some_and(|k| !k.available()) {
            continue;
        }
        for (step, ours) in decode_logits(&bf16, kernel).iter().enumerate() {
            let diff = max_abs_diff(ours, &reference[step]);
            let from_f32 = max_abs_diff(ours, &unrounded[step]);
            eprintln!(
                "{kernel:?} step {step}: {diff:e} from the rounded f32 model, {from_f32:e} from f32"
            );
            assert!(diff < 1e-4, "{kernel:?} step {step}: {diff}");
            assert!(from_f32 > 0.0, "the weights were not stored in bf16");
        }
    }
}

/// Greedy decoding of 40 prompts of different lengths in one batch of 40 equals decoding each
/// alone, token for token: padding and batch composition never change an answer (so a run's
/// results do not depend on `batch_size`).
#[test]
fn greedy_batch_of_forty_equals_forty_batches_of_one() {
    let model = tiny_model();
    let tokenizer = tiny::tokenizer().unwrap();
    let prompts: Vec<String> = (0..40)
        .map(|i| format!("prompt {i}: {}", "word ".repeat(i % 13)))
        .collect();
    let seeds: Vec<(u64, &str)> = prompts.iter().map(|p| (7, p.as_str())).collect();
    let batch = requests(&seeds, 0.0);
    let together = generate(&model, &tokenizer, &batch, &Device::Cpu).unwrap();
    assert_eq!(together.len(), 40);
    for (i, request) in batch.iter().enumerate() {
        let alone = generate(
            &model,
            &tokenizer,
            std::slice::from_ref(request),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(together[i], alone[0], "prompt {i}");
    }
    let distinct: std::collections::HashSet<&Vec<u32>> =
        together.iter().map(|g| &g.token_ids).collect();
    assert!(distinct.len() > 1, "the prompts lead to different answers");
}

#[test]
fn a_stop_string_ends_the_sequence_exactly() {
    let model = tiny_model();
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

#[test]
fn gguf_and_hf_checkpoints_of_the_same_weights_give_the_same_logits() {
    for family in [Family::Llama, Family::Qwen2] {
        let dir = common::scratch(&format!("engine-gguf-{family:?}"));
        let spec = TinySpec {
            family,
            ..TinySpec::default()
        };
        tiny::write_hf_dir(&dir.join("hf"), &spec).unwrap();
        let cfg = tiny::config(&spec);
        let weights = tiny::weights(&cfg, spec.seed).unwrap();
        let gguf_path = dir.join("tiny.gguf");
        let tokenizer = tiny::tokenizer().unwrap();
        spar_host::engine::gguf::write_f32(
            &gguf_path,
            &cfg,
            &weights,
            &tokenizer,
            &[256, 257, 258],
            Some(tiny::CHATML_TEMPLATE),
        )
        .unwrap();
        let hf = loader::load(&dir.join("hf")).unwrap();
        let gguf = loader::load(&gguf_path).unwrap();
        let ids: Vec<u32> = "same weights, two formats".bytes().map(u32::from).collect();
        let a = full_logits(&hf.transformer(DType::F32, &Device::Cpu).unwrap(), &ids);
        let b = full_logits(&gguf.transformer(DType::F32, &Device::Cpu).unwrap(), &ids);
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-5, "{family:?}: max |diff| = {diff}");
        assert_eq!(
            gguf.tokenizer.encode("<|im_start|>hi").unwrap(),
            vec![257, 104, 105]
        );
        let template = gguf.template.as_ref().expect("template from GGUF metadata");
        assert_eq!(
            template
                .render(&[Message::new("user", "x")], false)
                .unwrap(),
            "<|im_start|>user\nx<|im_end|>\n"
        );
        assert_eq!(gguf.stop_token_ids(), vec![258]);
    }
}

fn smollm2_metadata() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/smollm2/tokenizer-gguf-metadata.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn smollm2_tokenizer_from_gguf_metadata_gives_the_known_ids() {
    let m = smollm2_metadata();
    let strings = |k: &str| -> Vec<String> {
        m[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let types: Vec<i32> = m["tokenizer.ggml.token_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    let tokenizer = spar_host::engine::gguf::tokenizer_from_parts(
        m["tokenizer.ggml.model"].as_str().unwrap(),
        m["tokenizer.ggml.pre"].as_str().unwrap(),
        &strings("tokenizer.ggml.tokens"),
        &strings("tokenizer.ggml.merges"),
        &types,
    )
    .unwrap();
    // The reference ids (design stack notes, from the model's own tokenizer).
    assert_eq!(
        tokenizer
            .encode("<|im_start|>user\nHello 123, world!<|im_end|>")
            .unwrap(),
        vec![1, 4093, 198, 19556, 216, 33, 34, 35, 28, 905, 17, 2]
    );
    assert_eq!(
        tokenizer
            .decode(&[19556, 216, 33, 34, 35, 28, 905, 17])
            .unwrap(),
        "Hello 123, world!"
    );
    // And the model's own chat template renders as transformers renders it.
    let template = spar_host::engine::chat_template::ChatTemplate::new(
        m["tokenizer.chat_template"].as_str().unwrap(),
        "SmolLM2 GGUF",
        "<|im_start|>",
        "<|im_end|>",
    )
    .unwrap();
    assert_eq!(
        template
            .render(
                &[Message::new(
                    "user",
                    "Write a haiku about the sea in lowercase letters only."
                )],
                true
            )
            .unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite a haiku about the sea in lowercase letters only.<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn bad_gguf_files_are_named_with_the_reason() {
    let dir = common::scratch("engine-bad-gguf");
    let spec = TinySpec::default();
    let cfg = tiny::config(&spec);
    let weights = tiny::weights(&cfg, spec.seed).unwrap();
    let tokenizer = tiny::tokenizer().unwrap();
    let good = dir.join("good.gguf");
    spar_host::engine::gguf::write_f32(&good, &cfg, &weights, &tokenizer, &[256, 257, 258], None)
        .unwrap();

    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"definitely not gguf").unwrap();
    let error = format!("{:#}", loader::load(&junk).err().unwrap());
    assert!(
        error.starts_with(&format!("{}: not a readable GGUF file: ", junk.display())),
        "{error}"
    );

    // An unknown tensor type code (llama.cpp's newer quantisations look like this to us).
    let mut bytes = std::fs::read(&good).unwrap();
    let name = b"blk.0.attn_k.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let type_at = at + 4 + 8 * dims;
    bytes[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let odd = dir.join("odd-quant.gguf");
    std::fs::write(&odd, &bytes).unwrap();
    let error = format!("{:#}", loader::load(&odd).err().unwrap());
    assert!(
        error.starts_with(&format!("{}: not a readable GGUF file: ", odd.display())),
        "{error}"
    );
    assert!(error.contains("99"), "{error}");

    let mut cfg2 = cfg.clone();
    cfg2.model_type = "falcon".into();
    let other = dir.join("falcon.gguf");
    spar_host::engine::gguf::write_f32(&other, &cfg2, &weights, &tokenizer, &[], None).unwrap();
    let error = format!("{:#}", loader::load(&other).err().unwrap());
    assert_eq!(
        error,
        format!(
            "{}: unsupported architecture `falcon` (general.architecture); supported: llama, qwen2",
            other.display()
        )
    );
}

#[test]
fn generate_command_writes_one_line_per_sample_independent_of_batching() {
    let dir = common::scratch("engine-generate-cli");
    tiny::write_hf_dir(&dir.join("model"), &TinySpec::default()).unwrap();
    let prompts = dir.join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"id\": \"a\", \"prompt\": \"Say something.\"}\n{\"id\": \"b\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n",
    )
    .unwrap();
    let run = |batch: &str, out: &str| {
        let output = common::spar_host()
            .args(["generate", "--model"])
            .arg(dir.join("model"))
            .arg("--prompts")
            .arg(&prompts)
            .arg("--output")
            .arg(dir.join(out))
            .args([
                "--n",
                "2",
                "--temperature",
                "0.9",
                "--top-p",
                "0.9",
                "--max-new-tokens",
                "12",
                "--seed",
                "3",
                "--batch-size",
                batch,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read_to_string(dir.join(out)).unwrap()
    };
    let one = run("1", "one.jsonl");
    let four = run("4", "four.jsonl");
    assert_eq!(one, four, "outputs must not depend on batching");
    let lines: Vec<serde_json::Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        (lines[0]["id"].as_str(), lines[0]["sample"].as_u64()),
        (Some("a"), Some(0))
    );
    assert_eq!(
        (lines[3]["id"].as_str(), lines[3]["sample"].as_u64()),
        (Some("b"), Some(1))
    );
    assert_ne!(
        lines[0]["text"], lines[1]["text"],
        "different samples, different seeds"
    );

    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"nothing\": 1}\n").unwrap();
    let output = common::spar_host()
        .args(["generate", "--model"])
        .arg(dir.join("model"))
        .arg("--prompts")
        .arg(&bad)
        .arg("--output")
        .arg(dir.join("x.jsonl"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!(
            "error: {}:1: needs a `prompt` string or a `messages` list",
            bad.display()
        )
    );
}

#[test]
fn sharded_checkpoints_load_like_single_files() {
    let dir = common::scratch("engine-sharded");
    let spec = TinySpec::default();
    tiny::write_hf_dir(&dir, &spec).unwrap();
    let single = loader::load(&dir).unwrap();
    // Split the weights over two shards with an index, as HF does for large models.
    let weights = tiny::weights(&tiny::config(&spec), spec.seed).unwrap();
    let mut names: Vec<String> = weights.keys().cloned().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let tensors = part
            .iter()
            .map(|n| (n.clone(), weights[n].clone()))
            .collect();
        spar_host::engine::weights::save_safetensors(&tensors, &dir.join(shard)).unwrap();
        for n in part {
            map.insert(n.clone(), serde_json::json!(shard));
        }
    }
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
    )
    .unwrap();
    let sharded = loader::load(&dir).unwrap();
    let ids: Vec<u32> = "shards".bytes().map(u32::from).collect();
    let a = full_logits(&single.transformer(DType::F32, &Device::Cpu).unwrap(), &ids);
    let b = full_logits(
        &sharded.transformer(DType::F32, &Device::Cpu).unwrap(),
        &ids,
    );
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

#[test]
fn prompt_and_completion_tokenize_with_an_exact_boundary() {
    let dir = common::scratch("engine-boundary");
    tiny::write_hf_dir(&dir, &TinySpec::default()).unwrap();
    let loaded = loader::load(&dir).unwrap();
    let template = loaded.template.as_ref().unwrap();
    let prompt = [Message::new("user", "Name a color.")];
    let (p, c) = spar_host::engine::chat_template::tokenize_turn(
        template,
        &loaded.tokenizer,
        &prompt,
        "Blue",
    )
    .unwrap();
    assert_eq!(
        loaded
            .tokenizer
            .encode("<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n")
            .unwrap(),
        p
    );
    assert_eq!(c, loaded.tokenizer.encode("Blue<|im_end|>\n").unwrap());
    assert_eq!(
        c[c.len() - 2],
        258,
        "the completion ends with the end-of-turn token and its newline"
    );
}

/// The LM head's fused log-probs with no rows (a batch without trained tokens): no log-probs and
/// a zero weight gradient, not a panic. No rows fit the kept-logits budget, so this is the path
/// that keeps them.
#[test]
fn token_log_probs_of_no_rows_are_empty_with_a_zero_gradient() {
    use spar_host::engine::token_logprobs::fused;
    let device = Device::Cpu;
    let hidden = candle_core::Var::from_vec(Vec::<f32>::new(), (0, 4), &device).unwrap();
    let weight = candle_core::Var::from_vec(vec![0.5f32; 12], (3, 4), &device).unwrap();
    let out = fused(hidden.as_tensor(), weight.as_tensor(), &[]).unwrap();
    assert_eq!(out.logps.dims(), &[0]);
    let grads = out.logps.sum_all().unwrap().backward().unwrap();
    let grad_weight = grads.get(weight.as_tensor()).unwrap();
    let values = grad_weight.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(values.iter().all(|&x| x == 0.0), "{values:?}");
}
