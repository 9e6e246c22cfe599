//! The `verifier` role: programmatic constraint checks.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "verifier",
        with: {
            "spar:plugins/types@0.1.0": crate::base::spar::plugins::types,
            "spar:plugins/host@0.1.0": crate::base::spar::plugins::host,
        },
        pub_export_macro: true,
        export_macro_name: "__spar_export_verifier",
        default_bindings_module: "spar_plugin_sdk::verifier::bindings",
    });
}

/// Bindings of the `repairer` world (`repair-api` alone), exported beside the verifier by
/// `export_verifier!(T, repair)`.
#[doc(hidden)]
pub mod repairer_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "repairer",
        with: {
            "spar:plugins/host@0.1.0": crate::base::spar::plugins::host,
        },
        pub_export_macro: true,
        export_macro_name: "__spar_export_repairer",
        default_bindings_module: "spar_plugin_sdk::verifier::repairer_bindings",
    });
}

use crate::PluginInfo;
pub use api::{CheckResult, ConstraintInfo};
use bindings::exports::spar::plugins::verifier_api as api;

/// A verifier plugin. Arguments arrive as JSON text.
pub trait Verifier: 'static {
    /// Who this plugin is.
    fn info() -> PluginInfo;

    /// The constraints this plugin checks. Default: none listed.
    fn constraints() -> Vec<ConstraintInfo> {
        Vec::new()
    }

    /// The instruction sentence for `id` with `args`. Default: an error saying there is none.
    fn describe(id: &str, _args: &str) -> Result<String, String> {
        Err(format!("no description for constraint `{id}`"))
    }

    /// Check `response` (to `prompt`) against constraint `id` with `args`.
    fn check(id: &str, args: &str, prompt: &str, response: &str) -> Result<CheckResult, String>;

    /// `response` minimally edited so that it keeps constraint `id`, or `None` when there is no
    /// mechanical fix (or nothing to fix). Default: `None` for every constraint. The host calls
    /// it only when the plugin is exported with `export_verifier!(T, repair)`.
    fn repair(
        _id: &str,
        _args: &str,
        _prompt: &str,
        _response: &str,
    ) -> Result<Option<String>, String> {
        Ok(None)
    }
}

impl CheckResult {
    /// The same outcome for strict and loose.
    pub fn both(pass: bool) -> Self {
        CheckResult {
            strict: pass,
            loose: pass,
        }
    }
}

/// Python's `str.strip()`: Unicode whitespace plus the ASCII information separators
/// `\x1c`..`\x1f`, which Rust's `trim` keeps.
pub fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// IFEval's eight loose variants of a response, in the official checker's order: the response,
/// it without `*`, it without its first line, without its last line, without both, and those
/// three again without `*`. Line removal trims the result, as the official checker does.
pub fn loose_variants(response: &str) -> [String; 8] {
    let lines: Vec<&str> = response.split('\n').collect();
    let join = |part: &[&str]| python_strip(&part.join("\n")).to_string();
    let n = lines.len();
    let remove_first = join(&lines[1.min(n)..]);
    let remove_last = join(&lines[..n.saturating_sub(1)]);
    let remove_both = if n >= 2 {
        join(&lines[1..n - 1])
    } else {
        String::new()
    };
    let unstar = |s: &str| s.replace('*', "");
    let starless = [
        unstar(&remove_first),
        unstar(&remove_last),
        unstar(&remove_both),
    ];
    let [starless_first, starless_last, starless_both] = starless;
    [
        response.to_string(),
        unstar(response),
        remove_first,
        remove_last,
        remove_both,
        starless_first,
        starless_last,
        starless_both,
    ]
}

/// Strict and loose results the way IFEval computes them: a response passes only if it is not
/// blank and `follows` accepts it; loose passes if any of [`loose_variants`] passes. Variants are
/// built one at a time and only until one passes, so a huge response costs one extra copy.
pub fn strict_and_loose(response: &str, follows: impl Fn(&str) -> bool) -> CheckResult {
    let passes = |r: &str| !python_strip(r).is_empty() && follows(r);
    let strict = passes(response);
    let loose = strict || LooseVariants::new(response).any(|r| passes(&r));
    CheckResult { strict, loose }
}

/// The variants of [`loose_variants`] after the first (the response itself), lazily.
struct LooseVariants<'r> {
    response: &'r str,
    next: usize,
}

impl<'r> LooseVariants<'r> {
    fn new(response: &'r str) -> Self {
        LooseVariants { response, next: 1 }
    }
}

impl Iterator for LooseVariants<'_> {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        let r = self.response;
        let first_newline = r.find('\n');
        let last_newline = r.rfind('\n');
        let remove_first = || first_newline.map_or("", |i| &r[i + 1..]);
        let remove_last = || last_newline.map_or("", |i| &r[..i]);
        let remove_both = || match (first_newline, last_newline) {
            (Some(a), Some(b)) if a < b => &r[a + 1..b],
            _ => "",
        };
        let variant = match self.next {
            1 => r.replace('*', ""),
            2 => python_strip(remove_first()).to_string(),
            3 => python_strip(remove_last()).to_string(),
            4 => python_strip(remove_both()).to_string(),
            5 => python_strip(remove_first()).replace('*', ""),
            6 => python_strip(remove_last()).replace('*', ""),
            7 => python_strip(remove_both()).replace('*', ""),
            _ => return None,
        };
        self.next += 1;
        Some(variant)
    }
}

#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

impl<T: Verifier> api::Guest for Adapter<T> {
    fn info() -> PluginInfo {
        crate::__enter();
        T::info()
    }
    fn constraints() -> Vec<ConstraintInfo> {
        crate::__enter();
        T::constraints()
    }
    fn describe(id: String, args: String) -> Result<String, String> {
        crate::__enter();
        T::describe(&id, &args)
    }
    fn check(
        id: String,
        args: String,
        prompt: String,
        response: String,
    ) -> Result<CheckResult, String> {
        crate::__enter();
        T::check(&id, &args, &prompt, &response)
    }
}

#[doc(hidden)]
pub struct RepairAdapter<T>(std::marker::PhantomData<T>);

impl<T: Verifier> repairer_bindings::exports::spar::plugins::repair_api::Guest
    for RepairAdapter<T>
{
    fn repair(
        id: String,
        args: String,
        prompt: String,
        response: String,
    ) -> Result<Option<String>, String> {
        crate::__enter();
        T::repair(&id, &args, &prompt, &response)
    }
}

/// Export a [`Verifier`] implementation as this component's verifier; `export_verifier!(T,
/// repair)` also exports its [`Verifier::repair`], so hosts can ask it for minimal fixes.
#[macro_export]
macro_rules! export_verifier {
    ($ty:ty, repair) => {
        $crate::export_verifier!($ty);
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SparRepairer = $crate::verifier::RepairAdapter<$ty>;
            $crate::verifier::repairer_bindings::__spar_export_repairer!(__SparRepairer with_types_in $crate::verifier::repairer_bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::verifier::Verifier>::repair;
        };
    };
    ($ty:ty) => {
        // Only wasm builds export: the export names contain `:` and `/`, which native linkers
        // reject, and native builds exist only to run a plugin's unit tests.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SparVerifier = $crate::verifier::Adapter<$ty>;
            $crate::verifier::bindings::__spar_export_verifier!(__SparVerifier with_types_in $crate::verifier::bindings);
        };
        // Native builds (for the plugin's unit tests) still type-check the implementation.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::verifier::Verifier>::check;
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_variants_follow_the_official_order() {
        let v = loose_variants("Sure!\n**Answer** here\nBye");
        assert_eq!(v[0], "Sure!\n**Answer** here\nBye");
        assert_eq!(v[1], "Sure!\nAnswer here\nBye");
        assert_eq!(v[2], "**Answer** here\nBye");
        assert_eq!(v[3], "Sure!\n**Answer** here");
        assert_eq!(v[4], "**Answer** here");
        assert_eq!(v[5], "Answer here\nBye");
        assert_eq!(v[6], "Sure!\nAnswer here");
        assert_eq!(v[7], "Answer here");
        let one = loose_variants("single");
        assert_eq!(one[2], "");
        assert_eq!(one[3], "");
        assert_eq!(one[4], "");
    }

    #[test]
    fn lazy_variants_equal_the_eager_ones() {
        for response in [
            "Sure!\n**Answer** here\nBye",
            "single",
            "a\nb",
            "\n",
            "",
            "x\n\n*y*\n",
        ] {
            let eager = loose_variants(response);
            let lazy: Vec<String> = LooseVariants::new(response).collect();
            assert_eq!(lazy, eager[1..], "{response:?}");
        }
    }

    #[test]
    fn blank_responses_never_pass() {
        let r = strict_and_loose("   ", |_| true);
        assert!(!r.strict && !r.loose);
        let r = strict_and_loose("\x1c\x1f", |_| true);
        assert!(
            !r.strict && !r.loose,
            "Python's strip takes information separators"
        );
        let r = strict_and_loose("Intro\nreal", |r| r == "real");
        assert!(!r.strict && r.loose);
    }
}
