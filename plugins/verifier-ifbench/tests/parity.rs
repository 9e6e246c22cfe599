//! Parity with IFBench's own checker on its sample responses: every instruction label, strict and
//! loose, must equal the one in IFBench's shipped `eval_results_*.jsonl`, except for the
//! disagreements listed (with their reasons) in `KNOWN_DIFFERENCES`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

fn data(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/ifbench")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// (key, instruction id, start of the response, why the label differs).
/// Both are the current IFBench checker's answers: its provenance run (`data/ifbench/PROVENANCE.md`
/// in the shared benchmark data) reproduces the shipped files except for this one label.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[(
    "163",
    "ratio:sentence_type",
    "Shipped True, but IFBench now splits sentences with NLTK Punkt (since December 2025) instead \
     of a regex: the first sentence ends with `\"paraphrasing.\"`, so it no longer ends with \
     `.` (1 declarative : 1 interrogative, not 2 : 1). The current checker says False, as we do.",
)];

#[test]
fn labels_equal_ifbench_on_every_supported_instruction() {
    // The shipped results were made on an older test file: match rows by stripped prompt.
    let inputs: HashMap<String, Value> = data("IFBench_test.jsonl")
        .into_iter()
        .map(|v| (v["prompt"].as_str().unwrap().trim().to_string(), v))
        .collect();
    let strict = data("eval_results_strict.jsonl");
    let loose = data("eval_results_loose.jsonl");
    let (mut agreed, mut total, mut unsupported, mut unmatched) = (0, 0, 0, 0);
    let mut differences = Vec::new();
    for (strict_row, loose_row) in strict.iter().zip(&loose) {
        let prompt = strict_row["prompt"].as_str().unwrap();
        assert_eq!(prompt, loose_row["prompt"].as_str().unwrap());
        let Some(input) = inputs.get(prompt.trim()) else {
            unmatched += 1;
            continue;
        };
        let key = input["key"].as_str().unwrap();
        let response = strict_row["response"].as_str().unwrap();
        let ids = input["instruction_id_list"].as_array().unwrap();
        assert_eq!(ids, strict_row["instruction_id_list"].as_array().unwrap());
        for (index, (id, args)) in ids
            .iter()
            .zip(input["kwargs"].as_array().unwrap())
            .enumerate()
        {
            let id = id.as_str().unwrap();
            let expected = (
                strict_row["follow_instruction_list"][index]
                    .as_bool()
                    .unwrap(),
                loose_row["follow_instruction_list"][index]
                    .as_bool()
                    .unwrap(),
            );
            if id == verifier_ifbench::NEEDS_POS_TAGGER {
                let error = verifier_ifbench::check(id, &args.to_string(), response).unwrap_err();
                assert!(error.contains("part-of-speech tagger"), "{error}");
                unsupported += 1;
                continue;
            }
            total += 1;
            let result = verifier_ifbench::check(id, &args.to_string(), response)
                .unwrap_or_else(|e| panic!("key {key} {id}: {e}"));
            if (result.strict, result.loose) == expected {
                agreed += 1;
            } else {
                let start: String = response.chars().take(40).collect();
                differences.push(format!(
                    "key {key} {id}: IFBench strict/loose {expected:?}, ours ({}, {}); response {start:?}",
                    result.strict, result.loose
                ));
            }
        }
    }
    println!(
        "{agreed}/{total} instruction labels agree; {unsupported} unsupported (POS tagger); {unmatched} result rows match no current prompt"
    );
    for d in &differences {
        println!("  {d}");
    }
    let known: Vec<String> = KNOWN_DIFFERENCES
        .iter()
        .map(|(key, id, _)| format!("key {key} {id}:"))
        .collect();
    let unexplained: Vec<&String> = differences
        .iter()
        .filter(|d| !known.iter().any(|k| d.starts_with(k.as_str())))
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained differences: {unexplained:#?}"
    );
    assert_eq!(
        differences.len(),
        KNOWN_DIFFERENCES.len(),
        "a known difference is gone: update the list"
    );
    assert_eq!(unsupported, 6);
    assert_eq!(unmatched, 1);
}
