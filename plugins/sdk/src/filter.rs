//! The `pair-filter` role: which preference pairs reach training.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "pair-filter",
        with: {
            "spar:plugins/types@0.1.0": crate::base::spar::plugins::types,
            "spar:plugins/host@0.1.0": crate::base::spar::plugins::host,
        },
        additional_derives: [PartialEq],
        pub_export_macro: true,
        export_macro_name: "__spar_export_filter",
        default_bindings_module: "spar_plugin_sdk::filter::bindings",
    });
}

use crate::PluginInfo;
pub use api::{Decision, Pair};
use bindings::exports::spar::plugins::filter_api as api;

/// A filter's settings from `config` (its `[[filters]] config` table as JSON): `T::default()`
/// when empty, otherwise the JSON read into `T`. Declare `T` with
/// `#[serde(deny_unknown_fields, default)]` so a misspelt key is an error. The error quotes the
/// config, so the host's message names the setting.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields, default)]
/// struct Config { min_gap: f64 }
/// impl Default for Config { fn default() -> Self { Config { min_gap: 0.5 } } }
/// let config: Config = spar_plugin_sdk::filter::parse_config(config)?;
/// ```
pub fn parse_config<T: serde::de::DeserializeOwned + Default>(config: &str) -> Result<T, String> {
    if config.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(config).map_err(|e| format!("bad config {config}: {e}"))
}

/// A pair filter. `config` is the filter's section of the run config as a JSON object (see
/// [`parse_config`]).
pub trait PairFilter: 'static {
    /// Who this plugin is.
    fn info() -> PluginInfo;
    /// One decision per pair, in order.
    fn filter(config: &str, pairs: Vec<Pair>) -> Result<Vec<Decision>, String>;
}

#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

impl<T: PairFilter> api::Guest for Adapter<T> {
    fn info() -> PluginInfo {
        crate::__enter();
        T::info()
    }
    fn filter(config: String, pairs: Vec<Pair>) -> Result<Vec<Decision>, String> {
        crate::__enter();
        T::filter(&config, pairs)
    }
}

/// Export a [`PairFilter`] implementation as this component's pair filter.
#[macro_export]
macro_rules! export_filter {
    ($ty:ty) => {
        // Only wasm builds export: the export names contain `:` and `/`, which native linkers
        // reject, and native builds exist only to run a plugin's unit tests.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SparFilter = $crate::filter::Adapter<$ty>;
            $crate::filter::bindings::__spar_export_filter!(__SparFilter with_types_in $crate::filter::bindings);
        };
        // Native builds (for the plugin's unit tests) still type-check the implementation.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::filter::PairFilter>::filter;
        };
    };
}

#[cfg(test)]
mod tests {
    use super::parse_config;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Config {
        min_gap: f64,
    }

    impl Default for Config {
        fn default() -> Self {
            Config { min_gap: 0.5 }
        }
    }

    #[test]
    fn configs_parse_with_defaults_and_name_a_misspelt_key() {
        assert_eq!(parse_config::<Config>("").unwrap(), Config::default());
        assert_eq!(parse_config::<Config>("{}").unwrap(), Config::default());
        assert_eq!(
            parse_config::<Config>(r#"{"min_gap": 0.25}"#).unwrap(),
            Config { min_gap: 0.25 }
        );
        let error = parse_config::<Config>(r#"{"min_gpa": 0.25}"#).unwrap_err();
        assert!(error.contains("unknown field `min_gpa`"), "{error}");
        assert!(parse_config::<Config>("not json").is_err());
    }
}
