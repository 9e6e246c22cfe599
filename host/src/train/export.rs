//! A training stage's data in the formats the established trainers read, for `spar-host export`
//! and for handing a stage to an external trainer:
//!
//! | format | preference pairs (DPO) | refiner examples (SFT) |
//! |---|---|---|
//! | `trl` | `pairs.jsonl`: `prompt`, `chosen`, `rejected` as message lists (TRL's conversational preference format) | `sft.jsonl`: `messages` |
//! | `llama-factory` | `pairs.json` (sharegpt: `conversations`, `chosen`, `rejected` with `from`/`value`) + `dataset_info.json` entry `spar_pairs` (`ranking: true`) | `sft.json` + entry `spar_sft` |
//! | `openrlhf` | `pairs.jsonl`: `prompt` (messages), `chosen`/`rejected` (prompt + answer messages), for `--apply_chat_template --prompt_key prompt --chosen_key chosen --rejected_key rejected` | `sft.jsonl`: `messages` (`--input_key messages --apply_chat_template`) |

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::chat_template::Message;
use crate::records::{PairRecord, SftRecord};
use crate::storage::write_atomic;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Trl,
    LlamaFactory,
    Openrlhf,
}

/// What a stage trains on.
pub enum StageData<'a> {
    Pairs(&'a [PairRecord]),
    Sft(&'a [SftRecord]),
}

fn jsonl(values: impl IntoIterator<Item = Value>) -> String {
    values.into_iter().map(|v| format!("{v}\n")).collect()
}

fn sharegpt(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let from = match m.role.as_str() {
                "user" => "human",
                "assistant" => "gpt",
                other => other,
            };
            json!({"from": from, "value": m.content})
        })
        .collect()
}

fn messages(messages: &[Message]) -> Value {
    json!(messages)
}

/// Write `data` in `format` into `dir`; returns the data file (the one a trainer is pointed at).
pub fn write(format: Format, data: &StageData<'_>, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let (file, text) = match (format, data) {
        (Format::Trl, StageData::Pairs(pairs)) => (
            "pairs.jsonl",
            jsonl(pairs.iter().map(|p| {
                json!({"prompt": messages(&p.prompt), "chosen": messages(&p.chosen), "rejected": messages(&p.rejected)})
            })),
        ),
        (Format::Trl | Format::Openrlhf, StageData::Sft(examples)) => (
            "sft.jsonl",
            jsonl(
                examples
                    .iter()
                    .map(|e| json!({"messages": messages(&e.messages)})),
            ),
        ),
        (Format::Openrlhf, StageData::Pairs(pairs)) => (
            "pairs.jsonl",
            jsonl(pairs.iter().map(|p| {
                let with = |answer: &[Message]| {
                    messages(&p.prompt.iter().chain(answer).cloned().collect::<Vec<_>>())
                };
                json!({"prompt": messages(&p.prompt), "chosen": with(&p.chosen), "rejected": with(&p.rejected)})
            })),
        ),
        (Format::LlamaFactory, StageData::Pairs(pairs)) => {
            let records: Vec<Value> = pairs
                .iter()
                .map(|p| {
                    json!({
                        "conversations": sharegpt(&p.prompt),
                        "chosen": sharegpt(&p.chosen).pop().unwrap_or(Value::Null),
                        "rejected": sharegpt(&p.rejected).pop().unwrap_or(Value::Null),
                    })
                })
                .collect();
            write_dataset_info(dir, "spar_pairs", "pairs.json", true)?;
            ("pairs.json", serde_json::to_string_pretty(&records)?)
        }
        (Format::LlamaFactory, StageData::Sft(examples)) => {
            let records: Vec<Value> = examples
                .iter()
                .map(|e| json!({"conversations": sharegpt(&e.messages)}))
                .collect();
            write_dataset_info(dir, "spar_sft", "sft.json", false)?;
            ("sft.json", serde_json::to_string_pretty(&records)?)
        }
    };
    let path = dir.join(file);
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Add (or replace) `name` in `dir/dataset_info.json`, keeping other entries.
fn write_dataset_info(dir: &Path, name: &str, file: &str, ranking: bool) -> anyhow::Result<()> {
    let path = dir.join("dataset_info.json");
    let mut info: serde_json::Map<String, Value> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON object", path.display()))?,
        Err(_) => serde_json::Map::new(),
    };
    let mut entry = json!({"file_name": file, "formatting": "sharegpt", "columns": {"messages": "conversations"}});
    if ranking {
        entry["ranking"] = json!(true);
        entry["columns"]["chosen"] = json!("chosen");
        entry["columns"]["rejected"] = json!("rejected");
    }
    info.insert(name.to_string(), entry);
    write_atomic(&path, serde_json::to_string_pretty(&info)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> PairRecord {
        PairRecord {
            id: json!("p1"),
            prompt: vec![Message::new("user", "Say hi in lowercase.")],
            chosen: vec![Message::new("assistant", "hi")],
            rejected: vec![Message::new("assistant", "HI")],
            meta: json!({}),
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn every_format_writes_what_its_trainer_reads() {
        let dir = std::env::temp_dir().join(format!("spar-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pairs = [pair()];
        let sft = [SftRecord {
            messages: vec![
                Message::new("user", "Judge this."),
                Message::new("assistant", "No."),
            ],
            meta: json!({}),
        }];

        let trl = write(Format::Trl, &StageData::Pairs(&pairs), &dir.join("trl")).unwrap();
        let line: Value = serde_json::from_str(read(&trl).trim()).unwrap();
        assert_eq!(line["prompt"][0]["content"], "Say hi in lowercase.");
        assert_eq!(line["chosen"][0]["content"], "hi");
        assert!(line.get("meta").is_none(), "only the columns TRL reads");

        let orl = write(
            Format::Openrlhf,
            &StageData::Pairs(&pairs),
            &dir.join("orl"),
        )
        .unwrap();
        let line: Value = serde_json::from_str(read(&orl).trim()).unwrap();
        assert_eq!(
            line["chosen"].as_array().unwrap().len(),
            2,
            "prompt + answer"
        );
        assert_eq!(line["rejected"][1]["content"], "HI");

        let lf_dir = dir.join("lf");
        write(Format::LlamaFactory, &StageData::Pairs(&pairs), &lf_dir).unwrap();
        write(Format::LlamaFactory, &StageData::Sft(&sft), &lf_dir).unwrap();
        let info: Value = serde_json::from_str(&read(&lf_dir.join("dataset_info.json"))).unwrap();
        assert_eq!(info["spar_pairs"]["ranking"], true);
        assert_eq!(
            info["spar_sft"]["file_name"], "sft.json",
            "both entries kept"
        );
        let records: Value = serde_json::from_str(&read(&lf_dir.join("pairs.json"))).unwrap();
        assert_eq!(records[0]["conversations"][0]["from"], "human");
        assert_eq!(records[0]["chosen"], json!({"from": "gpt", "value": "hi"}));
        let records: Value = serde_json::from_str(&read(&lf_dir.join("sft.json"))).unwrap();
        assert_eq!(records[0]["conversations"][1]["from"], "gpt");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
