//! The `search-strategy` role: which tree nodes to refine next.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "search-strategy",
        with: {
            "spar:plugins/types@0.1.0": crate::base::spar::plugins::types,
            "spar:plugins/host@0.1.0": crate::base::spar::plugins::host,
        },
        additional_derives: [PartialEq],
        pub_export_macro: true,
        export_macro_name: "__spar_export_search",
        default_bindings_module: "spar_plugin_sdk::search::bindings",
    });
}

use crate::PluginInfo;
pub use api::{Expansion, Node, NodeId, SearchParams, Step};
use bindings::exports::spar::plugins::search_api as api;
use std::cell::RefCell;

/// A search strategy: names the tree type that does the work.
pub trait SearchStrategy: 'static {
    /// One search tree's state.
    type Tree: SearchTree;
    /// Who this plugin is.
    fn info() -> PluginInfo;
}

/// One tree's search. The host calls `next` once per round until it returns [`Step::Done`].
pub trait SearchTree: 'static {
    /// Start at the judged root (the failed response).
    fn new(root: Node, params: SearchParams) -> Self;
    /// The next step, given the children judged since the last step (empty on the first call).
    fn next(&mut self, new_nodes: Vec<Node>) -> Step;
}

impl Node {
    /// Whether this node passes `gate` (value strictly above it) and was parsed.
    pub fn passes(&self, gate: f64) -> bool {
        self.valid && self.value > gate
    }
}

/// The best node by value among those that were parsed; ties go to the earliest id.
pub fn best<'n>(nodes: impl IntoIterator<Item = &'n Node>) -> Option<&'n Node> {
    nodes
        .into_iter()
        .filter(|n| n.valid)
        .fold(None, |best: Option<&Node>, n| match best {
            Some(b) if b.value >= n.value => Some(b),
            _ => Some(n),
        })
}

/// The `k` best parsed nodes, best first (ties by id).
pub fn top<'n>(nodes: impl IntoIterator<Item = &'n Node>, k: usize) -> Vec<&'n Node> {
    let mut valid: Vec<&Node> = nodes.into_iter().filter(|n| n.valid).collect();
    valid.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.id.cmp(&b.id)));
    valid.truncate(k);
    valid
}

#[doc(hidden)]
pub struct Adapter<T>(std::marker::PhantomData<T>);

#[doc(hidden)]
pub struct TreeAdapter<X>(RefCell<X>);

impl<T: SearchStrategy> api::Guest for Adapter<T> {
    type Tree = TreeAdapter<T::Tree>;
    fn info() -> PluginInfo {
        crate::__enter();
        T::info()
    }
}

impl<X: SearchTree> api::GuestTree for TreeAdapter<X> {
    fn new(root: Node, params: SearchParams) -> Self {
        crate::__enter();
        TreeAdapter(RefCell::new(X::new(root, params)))
    }
    fn next(&self, new_nodes: Vec<Node>) -> Step {
        crate::__enter();
        self.0.borrow_mut().next(new_nodes)
    }
}

/// Export a [`SearchStrategy`] implementation as this component's search strategy.
#[macro_export]
macro_rules! export_search {
    ($ty:ty) => {
        // Only wasm builds export: the export names contain `:` and `/`, which native linkers
        // reject, and native builds exist only to run a plugin's unit tests.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SparSearch = $crate::search::Adapter<$ty>;
            $crate::search::bindings::__spar_export_search!(__SparSearch with_types_in $crate::search::bindings);
        };
        // Native builds (for the plugin's unit tests) still type-check the implementation.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::search::SearchStrategy>::info;
        };
    };
}
