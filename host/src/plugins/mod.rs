//! The plugin runtime: loads WebAssembly components that implement a world of the `spar:plugins`
//! contract, checks their contract version before compiling them, and runs them sandboxed.
//!
//! A [`Plugin`] is compiled and pre-instantiated once; each unit of work opens a [`Session`], a
//! fresh instance in a fresh store. A session that traps (or hits a limit) is thrown away and the
//! next call instantiates anew, since a trapped instance cannot be entered again.

pub mod bindings;
pub mod builtin;
mod compile_cache;
pub mod contract;
pub mod error;
pub mod probe;
pub mod sandbox;
pub mod verifiers;
pub mod world_calls;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Config, Engine, Store};

pub use bindings::{Bindings, Message, PluginInfo};

/// A plugin's message as the engine's chat message.
impl From<Message> for crate::engine::chat_template::Message {
    fn from(m: Message) -> Self {
        crate::engine::chat_template::Message::new(&m.role, m.content)
    }
}
pub use contract::{CONTRACT_VERSION, Manifest, World};
pub use error::{Limit, PluginError};
pub use sandbox::{Limits, PluginState};
pub use world_calls::{
    ConformancePlugin, FilterPlugin, JudgePlugin, RepairPlugin, SearchPlugin, TreeHandle,
    VerifierPlugin,
};

/// One wasmtime engine with its epoch ticker and the linker that provides the contract's host
/// interface. Cheap to share; create one per process.
#[derive(Clone)]
pub struct PluginHost {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    limits: Limits,
}

impl PluginHost {
    /// A host whose plugins run under `limits`.
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        spawn_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        type Data = wasmtime::component::HasSelf<PluginState>;
        bindings::base::spar::plugins::host::add_to_linker::<PluginState, Data>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Ok(PluginHost {
            engine,
            linker: Arc::new(linker),
            limits,
        })
    }

    /// The limits every plugin of this host runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Read a plugin file and check, without compiling it, that this host can run it.
    pub fn inspect(&self, path: &Path) -> Result<(Manifest, Vec<u8>), PluginError> {
        let bytes = std::fs::read(path).map_err(|error| PluginError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let manifest = contract::inspect(&bytes).map_err(|reason| PluginError::Refused {
            path: path.to_path_buf(),
            reason: Box::new(reason),
        })?;
        Ok((manifest, bytes))
    }

    /// Load a plugin that must implement world `B`: check its version and world, compile it,
    /// pre-instantiate it, and ask it who it is.
    pub fn load<B: Bindings>(&self, path: &Path) -> Result<Plugin<B>, PluginError> {
        let (manifest, bytes) = self.inspect(path)?;
        if manifest.world != B::WORLD {
            return Err(PluginError::WrongWorld {
                path: path.to_path_buf(),
                expected: B::WORLD,
                found: manifest.world,
            });
        }
        let compile_error = |e: wasmtime::Error| PluginError::Compile {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        };
        let component = compile_cache::compile(&self.engine, &bytes).map_err(compile_error)?;
        let file_name: Arc<str> = plugin_label(path).into();
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(compile_error)?;
        let pre = B::new_pre(instance_pre).map_err(compile_error)?;
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                name: file_name,
                path: path.to_path_buf(),
                manifest,
                engine: self.engine.clone(),
                limits: self.limits.clone(),
                component,
                pre,
                info: None,
                spent_nanos: AtomicU64::new(0),
            }),
        };
        let mut info = plugin.session().info()?;
        // What a plugin says about itself is printed and logged: bounded and escaped.
        info.name = sandbox::printable(&info.name, sandbox::MAX_PLUGIN_NAME);
        info.version = sandbox::printable(&info.version, sandbox::MAX_PLUGIN_NAME);
        info.description = sandbox::printable(&info.description, sandbox::MAX_PLUGIN_TEXT);
        let inner = Arc::get_mut(&mut plugin.inner).expect("no session outlives load");
        inner.name = info.name.as_str().into();
        tracing::debug!(
            plugin = %info.name,
            world = %inner.manifest.world,
            contract = %inner.manifest.contract_version,
            path = %path.display(),
            "loaded plugin"
        );
        inner.info = Some(info);
        Ok(plugin)
    }
}

/// A loaded plugin of any world, for commands that take whatever they are given.
pub enum AnyPlugin {
    Verifier(VerifierPlugin),
    Judge(JudgePlugin),
    SearchStrategy(SearchPlugin),
    PairFilter(FilterPlugin),
    Conformance(ConformancePlugin),
}

macro_rules! any_plugin {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyPlugin::Verifier($p) => $e,
            AnyPlugin::Judge($p) => $e,
            AnyPlugin::SearchStrategy($p) => $e,
            AnyPlugin::PairFilter($p) => $e,
            AnyPlugin::Conformance($p) => $e,
        }
    };
}

impl AnyPlugin {
    pub fn info(&self) -> &PluginInfo {
        any_plugin!(self, p => p.info())
    }
    pub fn manifest(&self) -> &Manifest {
        any_plugin!(self, p => p.manifest())
    }
    pub fn exported_functions(&self) -> Vec<String> {
        any_plugin!(self, p => p.exported_functions())
    }
}

impl PluginHost {
    /// Load a plugin of whatever world it implements.
    pub fn load_any(&self, path: &Path) -> Result<AnyPlugin, PluginError> {
        let (manifest, _) = self.inspect(path)?;
        Ok(match manifest.world {
            World::Verifier => AnyPlugin::Verifier(self.load(path)?),
            World::Judge => AnyPlugin::Judge(self.load(path)?),
            World::SearchStrategy => AnyPlugin::SearchStrategy(self.load(path)?),
            World::PairFilter => AnyPlugin::PairFilter(self.load(path)?),
            World::Conformance => AnyPlugin::Conformance(self.load(path)?),
        })
    }
}

/// How a plugin is called before it has told its name: its file name.
fn plugin_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Advance the engine's epoch every [`sandbox::EPOCH_TICK`] for as long as the engine lives, so
/// that a call's deadline is wall-clock time.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(sandbox::EPOCH_TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}

struct PluginInner<B: Bindings> {
    name: Arc<str>,
    path: PathBuf,
    manifest: Manifest,
    engine: Engine,
    limits: Limits,
    component: Component,
    pre: B::Pre,
    info: Option<PluginInfo>,
    /// Time spent in calls since the stage started, in nanoseconds (shared by every session).
    spent_nanos: AtomicU64,
}

/// A compiled, pre-instantiated plugin of world `B`. Clone to share.
pub struct Plugin<B: Bindings> {
    inner: Arc<PluginInner<B>>,
}

impl<B: Bindings> Clone for Plugin<B> {
    fn clone(&self) -> Self {
        Plugin {
            inner: self.inner.clone(),
        }
    }
}

impl<B: Bindings> Plugin<B> {
    /// The name the plugin gave in `info()` (its file name before that).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What its binary declared.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// What it said about itself when loaded.
    pub fn info(&self) -> &PluginInfo {
        self.inner.info.as_ref().expect("info is read at load")
    }

    /// The exported functions of its role, as the compiled component declares them.
    pub fn exported_functions(&self) -> Vec<String> {
        exported_functions(&self.inner.component, &self.inner.engine, B::WORLD)
    }

    /// Start a new stage: the time budget ([`Limits::stage_time`]) counts from zero again.
    pub fn start_stage(&self) {
        self.inner.spent_nanos.store(0, Ordering::Relaxed);
    }

    /// Time its calls have taken in this stage.
    pub fn stage_time_spent(&self) -> Duration {
        Duration::from_nanos(self.inner.spent_nanos.load(Ordering::Relaxed))
    }

    /// A fresh instance for one unit of work.
    pub fn session(&self) -> Session<B> {
        Session {
            plugin: self.clone(),
            live: None,
        }
    }
}

/// Names of the functions inside every exported instance of `component`.
pub fn exported_functions(component: &Component, engine: &Engine, world: World) -> Vec<String> {
    // The world's own interface first, then any optional ones (e.g. `repair-api`) by name: the
    // order in the binary depends on how the guest was linked.
    let mut instances: Vec<(bool, String, Vec<String>)> = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        if let ComponentItem::ComponentInstance(instance) = item.ty {
            let functions = instance
                .exports(engine)
                .filter(|e| matches!(e.1.ty, ComponentItem::ComponentFunc(_)))
                .map(|e| e.0.to_string())
                .collect();
            let own = name.contains(&format!("/{}@", world.interface()));
            instances.push((!own, name.to_string(), functions));
        }
    }
    instances.sort();
    instances.into_iter().flat_map(|(_, _, f)| f).collect()
}

/// One instance of a plugin and the store it lives in, created on first use and recreated after a
/// trap. Not shared between threads: open one session per worker.
pub struct Session<B: Bindings> {
    plugin: Plugin<B>,
    live: Option<(Store<PluginState>, B)>,
}

impl<B: Bindings> Session<B> {
    /// The plugin this session runs.
    pub fn plugin(&self) -> &Plugin<B> {
        &self.plugin
    }

    /// Whether the session holds a live instance (false before the first call and after a trap).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Create the instance now rather than on the first call (benchmarks measure this).
    pub fn instantiate(&mut self) -> Result<(), PluginError> {
        self.call("instantiate", |_, _| Ok(()))
    }

    /// Run one export under the limits. On any trap the instance is dropped.
    pub(crate) fn call<R>(
        &mut self,
        function: &str,
        f: impl FnOnce(&B, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let inner = self.plugin.inner.clone();
        let spent = Duration::from_nanos(inner.spent_nanos.load(Ordering::Relaxed));
        if spent >= inner.limits.stage_time {
            return Err(PluginError::LimitExceeded {
                plugin: inner.name.to_string(),
                function: function.to_string(),
                limit: Limit::StageTime {
                    limit: inner.limits.stage_time,
                },
            });
        }
        let started = Instant::now();
        let result = self.call_within_limits(function, f);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        inner.spent_nanos.fetch_add(nanos, Ordering::Relaxed);
        result
    }

    fn call_within_limits<R>(
        &mut self,
        function: &str,
        f: impl FnOnce(&B, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let inner = &self.plugin.inner;
        if self.live.is_none() {
            let mut store = sandbox::new_store(&inner.engine, inner.name.clone(), &inner.limits);
            match B::instantiate(&inner.pre, &mut store) {
                Ok(bindings) => self.live = Some((store, bindings)),
                Err(error) => {
                    let error = sandbox::classify(&store, "instantiate", &inner.limits, error);
                    return Err(match error {
                        PluginError::Trapped { plugin, reason, .. } => {
                            PluginError::Instantiate { plugin, reason }
                        }
                        other => other,
                    });
                }
            }
        }
        let (store, bindings) = self.live.as_mut().expect("instantiated above");
        sandbox::before_call(store, &inner.limits);
        let result = f(bindings, store);
        let suppressed = store.data_mut().take_suppressed();
        if suppressed > 0 {
            tracing::warn!(
                plugin = &*inner.name,
                "{suppressed} more log lines from `{function}` suppressed (at most {} per call)",
                sandbox::MAX_LOG_LINES_PER_CALL
            );
        }
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                let error = sandbox::classify(store, function, &inner.limits, error);
                self.live = None;
                Err(error)
            }
        }
    }

    /// The plugin's `info()`.
    pub fn info(&mut self) -> Result<PluginInfo, PluginError> {
        self.call("info", |b, store| b.call_info(store))
    }

    /// An error the plugin returned, its text bounded and escaped for printing.
    pub(crate) fn plugin_error(&self, function: &str, message: String) -> PluginError {
        PluginError::Failed {
            plugin: self.plugin.name().to_string(),
            function: function.to_string(),
            message: sandbox::printable(&message, sandbox::MAX_PLUGIN_TEXT),
        }
    }
}
