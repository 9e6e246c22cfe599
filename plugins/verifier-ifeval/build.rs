//! Compile langdetect's profiles into binary tables, so a fresh plugin instance pays nothing to
//! load them (the plugin has no file access at run time anyway).

use std::fmt::Write as _;
use std::path::Path;

fn read(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn main() {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    langdetect_tables(&out_dir);
}

/// Unescape a Java properties value (`\uXXXX` escapes).
fn unescape_properties(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).expect("\\u escape");
                    out.push(char::from_u32(code).expect("valid escape"));
                }
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// langdetect's profiles as binary tables (sorted n-grams, per-n-gram language probabilities) and
/// its normalisation strings as Rust constants.
fn langdetect_tables(out_dir: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/langdetect");
    let properties = read(&dir, "messages.properties");
    let mut consts = String::new();
    let mut kanji = Vec::new();
    for line in properties.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unescape_properties(value);
        match key {
            "NGram.LATIN1_EXCLUDE" | "TO_NORMALIZE_VI_CHARS" | "DMARK_CLASS" => {
                let name = key.trim_start_matches("NGram.");
                writeln!(consts, "pub const {name}: &str = {value:?};").unwrap();
            }
            k if k.starts_with("NORMALIZED_VI_CHARS_") => {
                writeln!(consts, "pub const {k}: &str = {value:?};").unwrap();
            }
            k if k.starts_with("NGram.KANJI_") => kanji.push(value),
            _ => {}
        }
    }
    // Each KANJI class maps to its first character; a later class wins, as in Python's dict.
    let mut cjk = std::collections::BTreeMap::new();
    for class in &kanji {
        let representative = class.chars().next().expect("non-empty class");
        for c in class.chars() {
            cjk.insert(c, representative);
        }
    }
    let deduped: Vec<(char, char)> = cjk.into_iter().collect();
    writeln!(
        consts,
        "pub static CJK_MAP: &[(char, char)] = &{deduped:?};"
    )
    .unwrap();

    let profiles_dir = dir.join("profiles");
    println!("cargo:rerun-if-changed={}", profiles_dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&profiles_dir)
        .expect("profiles folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut table: std::collections::BTreeMap<String, Vec<(u8, f64)>> = Default::default();
    for (index, name) in names.iter().enumerate() {
        let profile: serde_json::Value =
            serde_json::from_str(&read(&profiles_dir, name)).expect("profile is JSON");
        let n_words: Vec<f64> = profile["n_words"]
            .as_array()
            .expect("n_words")
            .iter()
            .map(|n| n.as_f64().unwrap())
            .collect();
        for (word, freq) in profile["freq"].as_object().expect("freq") {
            let length = word.chars().count();
            if (1..=3).contains(&length) {
                let prob = freq.as_f64().unwrap() / n_words[length - 1];
                table
                    .entry(word.clone())
                    .or_default()
                    .push((index as u8, prob));
            }
        }
    }
    writeln!(consts, "pub static LANGUAGES: &[&str] = &{names:?};").unwrap();

    // Layout: word bytes; word offsets (u32, n+1); entry offsets (u32, n+1); entry language (u8);
    // entry probability (f64). Keys sort bytewise, as `str` does.
    let mut word_bytes = Vec::new();
    let mut word_offsets = vec![0u32];
    let mut entry_offsets = vec![0u32];
    let mut entry_langs = Vec::new();
    let mut entry_probs = Vec::new();
    for (word, entries) in &table {
        word_bytes.extend_from_slice(word.as_bytes());
        word_offsets.push(word_bytes.len() as u32);
        for (lang, prob) in entries {
            entry_langs.push(*lang);
            entry_probs.extend_from_slice(&prob.to_le_bytes());
        }
        entry_offsets.push(entry_langs.len() as u32);
    }
    let to_bytes = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(out_dir.join("ld_words.bin"), &word_bytes).unwrap();
    std::fs::write(out_dir.join("ld_word_offsets.bin"), to_bytes(&word_offsets)).unwrap();
    std::fs::write(
        out_dir.join("ld_entry_offsets.bin"),
        to_bytes(&entry_offsets),
    )
    .unwrap();
    std::fs::write(out_dir.join("ld_entry_langs.bin"), &entry_langs).unwrap();
    std::fs::write(out_dir.join("ld_entry_probs.bin"), &entry_probs).unwrap();
    std::fs::write(out_dir.join("langdetect_consts.rs"), consts).unwrap();
}
