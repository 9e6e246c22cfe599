//! The `conformance` world: echoes every WIT type, to test a host and a guest toolchain together.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "conformance",
        with: {
            "spar:plugins/types@0.1.0": crate::base::spar::plugins::types,
            "spar:plugins/host@0.1.0": crate::base::spar::plugins::host,
        },
        pub_export_macro: true,
        export_macro_name: "__spar_export_conformance",
        default_bindings_module: "spar_plugin_sdk::conformance::bindings",
    });
}

use crate::PluginInfo;
pub use api::{Bundle, Color, Permissions, Scalars, Shape};
use bindings::exports::spar::plugins::conformance_api as api;

/// The conformance world. Every method must return its input (the counter must count).
pub trait Conformance: 'static {
    /// The counter resource.
    type Counter: Counter;
    /// Who this plugin is.
    fn info() -> PluginInfo;
    /// Echo.
    fn echo_bundle(value: Bundle) -> Bundle;
    /// Echo.
    fn echo_list(values: Vec<Bundle>) -> Vec<Bundle>;
    /// Echo.
    fn echo_option(value: Option<Option<String>>) -> Option<Option<String>>;
    /// Echo.
    fn echo_result(value: Result<Vec<u32>, String>) -> Result<Vec<u32>, String>;
    /// Echo.
    fn echo_shape(value: Shape) -> Shape;
    /// Echo.
    fn echo_color(value: Color) -> Color;
    /// Echo.
    fn echo_permissions(value: Permissions) -> Permissions;
    /// The sum of both counters' totals.
    fn sum_counters(a: &Self::Counter, b: &Self::Counter) -> i64;
}

/// The counter resource of the conformance world.
pub trait Counter: 'static {
    /// A counter starting at `start`.
    fn new(start: i64) -> Self;
    /// Add `n`, return the new total.
    fn add(&mut self, n: i64) -> i64;
    /// The current total.
    fn get(&self) -> i64;
}

#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

#[doc(hidden)]
pub struct CounterAdapter<C>(std::cell::RefCell<C>);

impl<T: Conformance> api::Guest for Adapter<T> {
    type Counter = CounterAdapter<T::Counter>;
    fn info() -> PluginInfo {
        crate::__enter();
        T::info()
    }
    fn echo_bundle(value: Bundle) -> Bundle {
        T::echo_bundle(value)
    }
    fn echo_list(values: Vec<Bundle>) -> Vec<Bundle> {
        T::echo_list(values)
    }
    fn echo_option(value: Option<Option<String>>) -> Option<Option<String>> {
        T::echo_option(value)
    }
    fn echo_result(value: Result<Vec<u32>, String>) -> Result<Vec<u32>, String> {
        T::echo_result(value)
    }
    fn echo_shape(value: Shape) -> Shape {
        T::echo_shape(value)
    }
    fn echo_color(value: Color) -> Color {
        T::echo_color(value)
    }
    fn echo_permissions(value: Permissions) -> Permissions {
        T::echo_permissions(value)
    }
    fn sum_counters(a: api::CounterBorrow<'_>, b: api::CounterBorrow<'_>) -> i64 {
        let a = a.get::<CounterAdapter<T::Counter>>();
        let b = b.get::<CounterAdapter<T::Counter>>();
        T::sum_counters(&a.0.borrow(), &b.0.borrow())
    }
}

impl<C: Counter> api::GuestCounter for CounterAdapter<C> {
    fn new(start: i64) -> Self {
        CounterAdapter(std::cell::RefCell::new(C::new(start)))
    }
    fn add(&self, n: i64) -> i64 {
        self.0.borrow_mut().add(n)
    }
    fn get(&self) -> i64 {
        self.0.borrow().get()
    }
}

/// Export a [`Conformance`] implementation.
#[macro_export]
macro_rules! export_conformance {
    ($ty:ty) => {
        // Only wasm builds export: the export names contain `:` and `/`, which native linkers
        // reject, and native builds exist only to run a plugin's unit tests.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SparConformance = $crate::conformance::Adapter<$ty>;
            $crate::conformance::bindings::__spar_export_conformance!(__SparConformance with_types_in $crate::conformance::bindings);
        };
        // Native builds (for the plugin's unit tests) still type-check the implementation.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::conformance::Conformance>::echo_bundle;
        };
    };
}
