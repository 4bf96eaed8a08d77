//! Per-evaluation state reached through `Evaluator::extra`: the resources, edges and plays
//! declared so far, the diagnostics that did not stop evaluation, and what the built-ins
//! need to know (registry, project, inventory, which host is being evaluated).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use starlark::any::ProvidesStaticType;
use starlark::codemap::FileSpan;
use starlark::eval::Evaluator;

use super::errors::{CodedError, user_location};
use super::values::NodeId;
use crate::diag::{Code, Diagnostic};
use crate::graph::EdgeKind;
use crate::inventory::Inventory;
use crate::project::Project;
use crate::schema::{Registry, ResourceType};
use crate::selector::Selector;

/// A resource as declared, before schema validation.
#[derive(Debug, Clone)]
pub struct RawResource {
    pub rtype: Arc<ResourceType>,
    pub name: String,
    /// Config with `$secret` / `$content` / `$ref` markers, identity filled from the name.
    pub config: Map<String, Json>,
    pub meta: Map<String, Json>,
    /// `None` while declared at a module's top level (the default play's template).
    pub host: Option<String>,
    pub play: String,
    pub handler: bool,
    pub sensitive: bool,
    pub span: Option<FileSpan>,
    pub notes: Vec<(FileSpan, String)>,
    /// Where each top-level config field was written, when the front end knows it (the
    /// CUE front end does; for Starlark the call's `field = ` is found in its text).
    pub fields: Vec<(String, FileSpan)>,
    /// For a default-play copy on one host: the top-level declaration it was copied from.
    pub template: Option<NodeId>,
}

#[derive(Debug, Clone)]
pub struct RawEdge {
    pub from: NodeId,
    pub to: NodeId,
    pub kind: EdgeKind,
    pub span: Option<FileSpan>,
    /// For implicit edges the config field, for notify edges `on=...`.
    pub detail: String,
}

/// A `play()` registration (or the `def main(host)` convention).
#[derive(Debug, Clone)]
pub struct PlayDecl {
    pub name: String,
    pub selector: Selector,
    /// Where the body is kept in the main module until the plays run.
    pub body_slot: String,
    pub serial: Option<Json>,
    pub max_fail: Json,
    pub r#become: Option<Json>,
    pub tags: Vec<String>,
    pub span: Option<FileSpan>,
}

#[derive(Debug, Default)]
pub struct BuilderState {
    pub nodes: Vec<RawResource>,
    pub edges: Vec<RawEdge>,
    /// `(from, to, kind)` of every edge in `edges`, so a duplicate is found in O(1) rather
    /// than by scanning them all (which made `require()` in a loop quadratic).
    edge_keys: HashSet<(NodeId, NodeId, EdgeKind)>,
    index: HashMap<(Option<String>, String, String), NodeId>,
    /// Top-level (template) node → its copy on a default-play host.
    instances: HashMap<(NodeId, String), NodeId>,
    pub plays: Vec<PlayDecl>,
    pub diagnostics: Vec<Diagnostic>,
    pub current_host: Option<String>,
    pub current_play: String,
    /// Meta inherited from the running play (`become`, `tags`).
    pub play_meta: Map<String, Json>,
    pub prints: Vec<String>,
}

impl BuilderState {
    /// Copies the top-level resources onto each host of the default play.
    pub fn instantiate_default_play(&mut self, hosts: &[String]) {
        let st = self;
        let templates: Vec<NodeId> = (0..st.nodes.len() as NodeId)
            .filter(|&n| st.nodes[n as usize].host.is_none())
            .collect();
        let template_edges: Vec<RawEdge> = st
            .edges
            .iter()
            .filter(|e| st.nodes[e.to as usize].host.is_none())
            .cloned()
            .collect();
        for h in hosts {
            for &t in &templates {
                let mut copy = st.nodes[t as usize].clone();
                copy.host = Some(h.clone());
                copy.template = Some(t);
                let id = st.nodes.len() as NodeId;
                st.index.insert(
                    (
                        copy.host.clone(),
                        copy.rtype.name.clone(),
                        copy.name.clone(),
                    ),
                    id,
                );
                st.nodes.push(copy);
                st.instances.insert((t, h.clone()), id);
            }
            for e in &template_edges {
                let from = st.instances[&(e.from, h.clone())];
                let to = st.instances[&(e.to, h.clone())];
                st.push_edge(RawEdge {
                    from,
                    to,
                    ..e.clone()
                });
            }
        }
    }

    /// Forgets every node and edge for identity checks (the REPL's `:clear`); the nodes
    /// stay in `nodes` so handles to them remain valid. Returns how many there were.
    pub fn forget(&mut self) -> usize {
        self.index.clear();
        self.instances.clear();
        self.edges.clear();
        self.edge_keys.clear();
        self.nodes.len()
    }

    /// Appends `e` unless an edge of the same kind already joins the same two nodes (the
    /// first declaration of an edge is the one kept, with its span and detail).
    pub fn push_edge(&mut self, e: RawEdge) -> bool {
        let fresh = self.edge_keys.insert((e.from, e.to, e.kind));
        if fresh {
            self.edges.push(e);
        }
        fresh
    }
}

/// The `Evaluator::extra` of every evaluation of one playbook.
#[derive(ProvidesStaticType)]
pub struct EvalContext {
    pub state: RefCell<BuilderState>,
    pub registry: &'static Registry,
    pub project: Project,
    pub inventory: Inventory,
    /// Display name of every loaded user file → its real path (for relative paths).
    pub files: RefCell<HashMap<String, PathBuf>>,
    /// Display name of the playbook being run.
    pub main_file: String,
    /// How many `load()`s deep the evaluation is (0 = the playbook itself).
    pub load_depth: Cell<usize>,
    /// Live facts when the command has target sessions; `None` offline.
    pub facts: super::values::FactsHandle,
}

impl EvalContext {
    pub fn get<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a EvalContext> {
        eval.extra
            .and_then(|e| e.downcast_ref::<EvalContext>())
            .ok_or_else(|| anyhow::anyhow!("the resource graph is not available in this context"))
    }

    /// Where the current built-in call is, from the user's point of view.
    pub fn call_site(eval: &Evaluator) -> (Option<FileSpan>, Vec<(FileSpan, String)>) {
        let stack = eval.call_stack();
        let (primary, notes) = user_location(None, &stack);
        (primary.or_else(|| eval.call_stack_top_location()), notes)
    }

    /// The directory of the `.star` file a call site is in (for `template`/`asset` paths).
    pub fn dir_of(&self, span: &Option<FileSpan>) -> PathBuf {
        let files = self.files.borrow();
        span.as_ref()
            .and_then(|s| files.get(s.filename()))
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| self.project.root.clone())
    }

    pub fn report(&self, d: Diagnostic) {
        self.state.borrow_mut().diagnostics.push(d);
    }

    /// Maps a node named by a handle to the node of the host being evaluated.
    pub fn resolve(&self, node: NodeId, id: &str) -> anyhow::Result<NodeId> {
        let st = self.state.borrow();
        let owner = st.nodes[node as usize].host.clone();
        match (&owner, &st.current_host) {
            (None, None) => Ok(node),
            (Some(a), Some(b)) if a == b => Ok(node),
            (None, Some(h)) => st.instances.get(&(node, h.clone())).copied().ok_or_else(|| {
                CodedError::new(Code::Arg, format!("`{id}` was declared at top level, which is not applied to host `{h}`"))
                    .help("top-level resources belong to the default play (`--on`); declare the resource inside the play body instead")
                    .into()
            }),
            (Some(a), b) => Err(CodedError::new(
                Code::Arg,
                format!("`{id}` belongs to host `{a}`, not to {}", b.as_deref().map_or("the top level".to_owned(), |b| format!("host `{b}`"))),
            )
            .help("edges only connect resources of the same host")
            .into()),
        }
    }

    /// Adds a node unless its identity is taken on this host; returns the existing node then.
    pub fn add_node(&self, r: RawResource) -> Result<NodeId, NodeId> {
        let mut st = self.state.borrow_mut();
        let key = (r.host.clone(), r.rtype.name.clone(), r.name.clone());
        if let Some(&existing) = st.index.get(&key) {
            return Err(existing);
        }
        let id = st.nodes.len() as NodeId;
        st.nodes.push(r);
        st.index.insert(key, id);
        Ok(id)
    }

    pub fn add_edge(&self, e: RawEdge) {
        self.state.borrow_mut().push_edge(e);
    }

    /// Copies the top-level resources onto each host of the default play.
    pub fn instantiate_default_play(&self, hosts: &[String]) {
        self.state.borrow_mut().instantiate_default_play(hosts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: NodeId, to: NodeId, kind: EdgeKind, detail: &str) -> RawEdge {
        RawEdge {
            from,
            to,
            kind,
            span: None,
            detail: detail.into(),
        }
    }

    /// Duplicates are dropped (the first declaration is kept), edges of another kind or
    /// direction are not, the order of declaration is kept, and `forget` starts afresh.
    #[test]
    fn edges_are_deduplicated_by_ends_and_kind() {
        let mut st = BuilderState::default();
        assert!(st.push_edge(edge(0, 1, EdgeKind::Explicit, "first")));
        assert!(!st.push_edge(edge(0, 1, EdgeKind::Explicit, "again")));
        assert!(st.push_edge(edge(0, 1, EdgeKind::Implicit, "path")));
        assert!(st.push_edge(edge(1, 0, EdgeKind::Explicit, "")));
        let seen: Vec<_> = st
            .edges
            .iter()
            .map(|e| (e.from, e.to, e.kind, e.detail.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (0, 1, EdgeKind::Explicit, "first"),
                (0, 1, EdgeKind::Implicit, "path"),
                (1, 0, EdgeKind::Explicit, ""),
            ]
        );
        st.forget();
        assert!(st.push_edge(edge(0, 1, EdgeKind::Explicit, "after :clear")));
        assert_eq!(st.edges.len(), 1);
    }
}
