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

use crate::PluginInfo;
use bindings::exports::spar::plugins::verifier_api as api;
pub use api::{CheckResult, ConstraintInfo};

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

/// Export a [`Verifier`] implementation as this component's verifier.
#[macro_export]
macro_rules! export_verifier {
    ($ty:ty) => {
        const _: () = {
            type __SparVerifier = $crate::verifier::Adapter<$ty>;
            $crate::verifier::bindings::__spar_export_verifier!(__SparVerifier with_types_in $crate::verifier::bindings);
        };
    };
}
