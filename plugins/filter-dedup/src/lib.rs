//! Drops a pair whose chosen and rejected responses are identical (`identical`), and any pair
//! that repeats an earlier pair's prompt, chosen and rejected (`duplicate`).

use std::collections::HashSet;

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::filter::{Decision, Pair, PairFilter};

struct Dedup;

impl PairFilter for Dedup {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "filter-dedup",
            env!("CARGO_PKG_VERSION"),
            "Drops duplicate pairs and pairs with identical responses",
        )
    }

    fn filter(_config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        let mut seen = HashSet::new();
        Ok(pairs
            .iter()
            .map(|p| {
                if p.chosen.trim() == p.rejected.trim() {
                    return Decision::Drop("identical".to_string());
                }
                let prompt: Vec<(&str, &str)> = p
                    .prompt
                    .iter()
                    .map(|m| (m.role.as_str(), m.content.as_str()))
                    .collect();
                let key = format!("{prompt:?}\u{0}{}\u{0}{}", p.chosen, p.rejected);
                if seen.insert(key) {
                    Decision::Keep
                } else {
                    Decision::Drop("duplicate".to_string())
                }
            })
            .collect())
    }
}

spar_plugin_sdk::export_filter!(Dedup);

#[cfg(test)]
mod tests {
    use super::*;
    use spar_plugin_sdk::Message;

    #[test]
    fn drops_identical_and_repeated_pairs() {
        let pair = |p: &str, c: &str, r: &str| Pair {
            id: "x".into(),
            prompt: vec![Message::user(p)],
            chosen: c.into(),
            rejected: r.into(),
            chosen_value: 1.0,
            rejected_value: 0.0,
        };
        let decisions = Dedup::filter(
            "",
            vec![
                pair("q", "a", "b"),
                pair("q", "a", "b"),
                pair("q2", "a", "b"),
                pair("q", "same", " same "),
            ],
        )
        .unwrap();
        assert_eq!(
            decisions,
            vec![
                Decision::Keep,
                Decision::Drop("duplicate".into()),
                Decision::Keep,
                Decision::Drop("identical".into())
            ]
        );
    }
}
