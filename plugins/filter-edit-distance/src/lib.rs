//! Keeps a pair only when chosen and rejected differ little: normalised character edit distance
//! (Levenshtein / length of the longer) at most `max_distance` (default 0.6). SPaR's point is that
//! refined pairs differ only where the instruction matters; pairs that differ everywhere teach
//! DPO the noise instead.

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::filter::{Decision, Pair, PairFilter, parse_config};

struct EditDistance;

/// Levenshtein distance over characters, in O(len(a) · len(b)) time and O(len(b)) memory.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Edit distance divided by the longer length (0 for two empty strings).
pub fn normalised(a: &str, b: &str) -> f64 {
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        0.0
    } else {
        levenshtein(a, b) as f64 / longest as f64
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    max_distance: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_distance: 0.6 }
    }
}

fn max_distance(config: &str) -> Result<f64, String> {
    let Config { max_distance } = parse_config(config)?;
    if !(0.0..=1.0).contains(&max_distance) {
        return Err(format!(
            "`max_distance` must be a number between 0 and 1, got {max_distance}"
        ));
    }
    Ok(max_distance)
}

impl PairFilter for EditDistance {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "filter-edit-distance",
            env!("CARGO_PKG_VERSION"),
            "Drops pairs whose normalised edit distance exceeds max_distance",
        )
    }

    fn filter(config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        let limit = max_distance(config)?;
        Ok(pairs
            .iter()
            .map(|p| {
                if normalised(&p.chosen, &p.rejected) <= limit {
                    Decision::Keep
                } else {
                    Decision::Drop("edit-distance".to_string())
                }
            })
            .collect())
    }
}

spar_plugin_sdk::export_filter!(EditDistance);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("héllo", "hello"), 1);
        assert!((normalised("abcd", "abcx") - 0.25).abs() < 1e-12);
    }

    #[test]
    fn keeps_minimal_edits_and_drops_rewrites() {
        let pair = |c: &str, r: &str| Pair {
            id: "x".into(),
            prompt: vec![],
            chosen: c.into(),
            rejected: r.into(),
            chosen_value: 1.0,
            rejected_value: 0.0,
        };
        let decisions = EditDistance::filter(
            r#"{"max_distance": 0.3}"#,
            vec![
                pair("hello world", "Hello, world"),
                pair("completely new text", "abc"),
            ],
        )
        .unwrap();
        assert_eq!(
            decisions,
            vec![Decision::Keep, Decision::Drop("edit-distance".into())]
        );
    }
}
