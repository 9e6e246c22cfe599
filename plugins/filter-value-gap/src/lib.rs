//! Keeps a pair only when the chosen response's judged value exceeds the rejected one's by at
//! least `min_gap` (default 0.5): a pair the judge barely separates teaches DPO little.

use spar_plugin_sdk::PluginInfo;
use spar_plugin_sdk::filter::{Decision, Pair, PairFilter, parse_config};

struct ValueGap;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    min_gap: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config { min_gap: 0.5 }
    }
}

fn min_gap(config: &str) -> Result<f64, String> {
    let Config { min_gap } = parse_config(config)?;
    if !(0.0..=1.0).contains(&min_gap) {
        return Err(format!(
            "`min_gap` must be a number between 0 and 1, got {min_gap}"
        ));
    }
    Ok(min_gap)
}

impl PairFilter for ValueGap {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "filter-value-gap",
            env!("CARGO_PKG_VERSION"),
            "Drops pairs whose values differ by less than min_gap",
        )
    }

    fn filter(config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        let gap = min_gap(config)?;
        Ok(pairs
            .iter()
            .map(|p| {
                if p.chosen_value - p.rejected_value + 1e-12 >= gap {
                    Decision::Keep
                } else {
                    Decision::Drop("value-gap".to_string())
                }
            })
            .collect())
    }
}

spar_plugin_sdk::export_filter!(ValueGap);

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(chosen: f64, rejected: f64) -> Pair {
        Pair {
            id: "p".into(),
            prompt: vec![],
            chosen: "a".into(),
            rejected: "b".into(),
            chosen_value: chosen,
            rejected_value: rejected,
        }
    }

    #[test]
    fn drops_close_values_and_checks_its_config() {
        let decisions =
            ValueGap::filter(r#"{"min_gap": 0.4}"#, vec![pair(1.0, 0.2), pair(0.6, 0.4)]).unwrap();
        assert_eq!(
            decisions,
            vec![Decision::Keep, Decision::Drop("value-gap".into())]
        );
        assert!(ValueGap::filter(r#"{"min_gap": "big"}"#, vec![]).is_err());
        assert_eq!(
            ValueGap::filter("", vec![pair(0.8, 0.2)]).unwrap(),
            vec![Decision::Keep]
        );
    }
}
