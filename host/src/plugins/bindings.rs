//! Typed bindings generated from `wit/` (and the test-only world in `tests/wit/`), one module
//! per world. The shared `types` and `host`
//! interfaces are generated once (in `base`) and reused by every world.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::contract::World;
use super::sandbox::PluginState;

pub mod base {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin-base",
    });
}

macro_rules! world_bindings {
    ($module:ident, $world_name:literal, $bindings:ident, $pre:ident, $world:expr, $iface:ident) => {
        world_bindings!("../wit", $module, $world_name, $bindings, $pre, $world, $iface);
    };
    ($path:literal, $module:ident, $world_name:literal, $bindings:ident, $pre:ident, $world:expr, $iface:ident) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: $path,
                world: $world_name,
                with: {
                    "spar:plugins/types": crate::plugins::bindings::base::spar::plugins::types,
                    "spar:plugins/host": crate::plugins::bindings::base::spar::plugins::host,
                },
            });
        }

        impl Bindings for $module::$bindings {
            type Pre = $module::$pre<PluginState>;
            const WORLD: World = $world;

            fn new_pre(pre: InstancePre<PluginState>) -> wasmtime::Result<Self::Pre> {
                $module::$pre::new(pre)
            }

            fn instantiate(
                pre: &Self::Pre,
                store: &mut Store<PluginState>,
            ) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }

            fn call_info(&self, store: &mut Store<PluginState>) -> wasmtime::Result<PluginInfo> {
                self.$iface().call_info(store)
            }
        }
    };
}

pub use base::spar::plugins::types::{Message, PluginInfo};

/// What the runtime needs from one world's generated bindings.
pub trait Bindings: Sized + 'static {
    /// The pre-instance type: imports resolved and exports looked up once per plugin.
    type Pre: Clone + Send + Sync + 'static;
    const WORLD: World;
    fn new_pre(pre: InstancePre<PluginState>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(pre: &Self::Pre, store: &mut Store<PluginState>) -> wasmtime::Result<Self>;
    fn call_info(&self, store: &mut Store<PluginState>) -> wasmtime::Result<PluginInfo>;
}

world_bindings!(
    verifier,
    "verifier",
    Verifier,
    VerifierPre,
    World::Verifier,
    spar_plugins_verifier_api
);
// A verifier that also exports `repair-api` (loaded as a second view of the same component
// when its manifest offers repair).
world_bindings!(
    repairing_verifier,
    "repairing-verifier",
    RepairingVerifier,
    RepairingVerifierPre,
    World::Verifier,
    spar_plugins_verifier_api
);
world_bindings!(
    judge,
    "judge",
    Judge,
    JudgePre,
    World::Judge,
    spar_plugins_judge_api
);
world_bindings!(
    search,
    "search-strategy",
    SearchStrategy,
    SearchStrategyPre,
    World::SearchStrategy,
    spar_plugins_search_api
);
world_bindings!(
    filter,
    "pair-filter",
    PairFilter,
    PairFilterPre,
    World::PairFilter,
    spar_plugins_filter_api
);
// The test-only world, outside the product contract (`tests/wit/`: the contract's `types.wit`
// and `conformance.wit`), so the host's tests and a guest toolchain can be checked together.
world_bindings!(
    "../tests/wit",
    conformance,
    "conformance",
    Conformance,
    ConformancePre,
    World::Conformance,
    spar_plugins_conformance_api
);

impl base::spar::plugins::host::Host for PluginState {
    fn log(&mut self, level: base::spar::plugins::host::LogLevel, message: String) {
        use base::spar::plugins::host::LogLevel;
        let level = match level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        PluginState::log(self, level, &message);
    }
}

impl base::spar::plugins::types::Host for PluginState {}
