//! The resource graph: validated resources per host and the edges between them
//! (explicit `require()`, implicit handle references, `notify()`, and the automatic edges
//! of `auto.rs`), with the checks that need the whole graph (cycles), the order apply runs
//! a host's resources in, and its JSON and DOT renderings.

pub mod auto;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;
use serde_json::Value as Json;
use starlark::codemap::FileSpan;

use crate::diag::{Code, Diagnostic, span_line};
use crate::eval::PlayInfo;

/// Where an edge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// `require(r, dep)`.
    Explicit,
    /// A handle (or `changed()`) inside another resource's config or meta.
    Implicit,
    /// `notify(r, handler)`.
    Notify,
    /// Added by froyo (spec §3, "Automatic edges"): a path after its nearest managed
    /// directory, an owned resource after its managed user and group, and so on.
    Auto,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Explicit => "explicit",
            EdgeKind::Implicit => "implicit",
            EdgeKind::Notify => "notify",
            EdgeKind::Auto => "auto",
        }
    }
}

/// One validated resource on one host.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `type[name]`, e.g. `linux.file::file[/etc/motd]`; unique per host.
    pub id: String,
    pub rtype: String,
    pub name: String,
    pub host: String,
    pub play: String,
    pub handler: bool,
    /// Config with schema defaults filled in; secrets, contents and deferred values are
    /// `$secret` / `$content` / `$ref` markers.
    pub config: Json,
    pub meta: Json,
    pub sensitive: bool,
    pub span: Option<FileSpan>,
}

impl Resource {
    /// `file:line` of the declaration (the first frame outside `@stdlib//`).
    pub fn location(&self) -> String {
        self.span.as_ref().map(span_line).unwrap_or_default()
    }
}

/// One edge: `from` must be applied before `to` (for notify: `from` triggers `to`).
#[derive(Debug, Clone)]
pub struct Edge {
    pub kind: EdgeKind,
    /// The config field of an implicit or automatic edge, `on=...` of a notify edge.
    pub detail: String,
    pub span: Option<FileSpan>,
    /// For an automatic edge, whether it runs from the resource whose field (`detail`)
    /// caused it to what that field names (which is `absent`, so it goes last) rather
    /// than the other way round.
    pub reversed: bool,
}

impl Edge {
    /// The resource whose field caused an automatic edge `from` → `to`.
    pub fn cause<'g>(&self, from: &'g Resource, to: &'g Resource) -> &'g Resource {
        if self.reversed { from } else { to }
    }

    fn provenance(&self, from: &Resource, to: &Resource) -> String {
        let at = self
            .span
            .as_ref()
            .map(|s| format!(" at {}", span_line(s)))
            .unwrap_or_default();
        match self.kind {
            EdgeKind::Explicit => format!("explicit: require(){at}"),
            EdgeKind::Implicit => format!("implicit: handle in `{}`{at}", self.detail),
            EdgeKind::Notify => format!("notify ({}){at}", self.detail),
            EdgeKind::Auto => format!(
                "auto: `{}` of `{}`{at}",
                self.detail,
                self.cause(from, to).id
            ),
        }
    }
}

/// The graph of one evaluation, every host together (edges never cross hosts).
#[derive(Debug, Default)]
pub struct Graph {
    pub graph: DiGraph<Resource, Edge>,
    pub plays: Vec<PlayInfo>,
}

#[derive(Serialize)]
struct NodeJson<'a> {
    host: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    rtype: &'a str,
    name: &'a str,
    play: &'a str,
    handler: bool,
    sensitive: bool,
    config: &'a Json,
    meta: &'a Json,
    location: String,
}

#[derive(Serialize)]
struct EdgeJson<'a> {
    host: &'a str,
    from: &'a str,
    to: &'a str,
    kind: EdgeKind,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
    /// Automatic edges: the resource whose field `detail` caused the edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
    location: String,
}

impl Graph {
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.graph.node_weights()
    }

    /// The stable JSON form printed by `froyo graph --format json` (version 1).
    pub fn to_json(&self) -> Json {
        let g = &self.graph;
        let nodes: Vec<NodeJson> = g
            .node_weights()
            .map(|r| NodeJson {
                host: &r.host,
                id: &r.id,
                rtype: &r.rtype,
                name: &r.name,
                play: &r.play,
                handler: r.handler,
                sensitive: r.sensitive,
                config: &r.config,
                meta: &r.meta,
                location: r.location(),
            })
            .collect();
        let edges: Vec<EdgeJson> = g
            .edge_references()
            .map(|e| EdgeJson {
                host: &g[e.source()].host,
                from: &g[e.source()].id,
                to: &g[e.target()].id,
                kind: e.weight().kind,
                detail: &e.weight().detail,
                by: (e.weight().kind == EdgeKind::Auto)
                    .then(|| e.weight().cause(&g[e.source()], &g[e.target()]).id.as_str()),
                location: e.weight().span.as_ref().map(span_line).unwrap_or_default(),
            })
            .collect();
        serde_json::json!({ "version": 1, "plays": self.plays, "nodes": nodes, "edges": edges })
    }

    /// Graphviz DOT, one cluster per host; edges styled by kind.
    pub fn to_dot(&self) -> String {
        let g = &self.graph;
        let mut out = String::from(
            "digraph froyo {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        let mut hosts: Vec<&str> = Vec::new();
        for r in g.node_weights() {
            if !hosts.contains(&r.host.as_str()) {
                hosts.push(&r.host);
            }
        }
        for (hi, host) in hosts.iter().enumerate() {
            out.push_str(&format!(
                "  subgraph cluster_{hi} {{\n    label={};\n",
                dot_str(host)
            ));
            for i in g.node_indices().filter(|&i| g[i].host == *host) {
                let r = &g[i];
                let style = if r.handler { ", style=dashed" } else { "" };
                out.push_str(&format!(
                    "    n{} [label={}{style}];\n",
                    i.index(),
                    dot_str(&r.id)
                ));
            }
            out.push_str("  }\n");
        }
        for e in g.edge_references() {
            let w = e.weight();
            let (label, style) = match w.kind {
                EdgeKind::Explicit => (w.kind.as_str().to_owned(), "style=solid"),
                EdgeKind::Implicit => (w.kind.as_str().to_owned(), "style=dotted"),
                EdgeKind::Notify => (w.kind.as_str().to_owned(), "style=dashed"),
                // Grey with an open arrowhead: froyo's own ordering, apart from the user's.
                EdgeKind::Auto => (
                    format!("auto: {}", w.detail),
                    "style=solid, color=gray50, fontcolor=gray50, arrowhead=empty",
                ),
            };
            out.push_str(&format!(
                "  n{} -> n{} [label={}, {style}];\n",
                e.source().index(),
                e.target().index(),
                dot_str(&label)
            ));
        }
        out.push_str("}\n");
        out
    }

    /// `E-CYCLE` for every strongly connected component that is a cycle, listing every
    /// edge of one cycle through it with its provenance.
    pub fn cycle_diagnostics(&self) -> Vec<Diagnostic> {
        let g = &self.graph;
        let mut out = Vec::new();
        for scc in petgraph::algo::tarjan_scc(g) {
            let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let mut members = scc.clone();
            members.sort();
            let cycle = find_cycle(g, &members);
            let start = cycle[0];
            let host = &g[start].host;
            let names: Vec<&str> = cycle
                .iter()
                .map(|&n| g[n].id.as_str())
                .chain([g[start].id.as_str()])
                .collect();
            let mut d = Diagnostic::new(
                Code::Cycle,
                format!("dependency cycle on host `{host}`: {}", names.join(" → ")),
            )
            .at_opt(
                g[start].span.clone(),
                format!("`{}` is part of a cycle", g[start].id),
            );
            for (i, &from) in cycle.iter().enumerate() {
                let to = cycle[(i + 1) % cycle.len()];
                let Some(e) = g.find_edge(from, to) else {
                    continue;
                };
                let edge = &g[e];
                let label = format!(
                    "`{}` → `{}` ({})",
                    g[from].id,
                    g[to].id,
                    edge.provenance(&g[from], &g[to])
                );
                if let Some(span) = edge.span.clone() {
                    d = d.also(span, label);
                }
            }
            out.push(d);
        }
        out
    }

    /// The resources of `host` in the order apply runs them: each after everything it
    /// depends on (notifications aside), ties in declaration order (Kahn's algorithm with
    /// the lowest node first, O((n + e) log n)). The members of a cycle, which only a graph
    /// with `E-CYCLE` has, come last in declaration order.
    pub fn host_order(&self, host: &str) -> Vec<NodeIndex> {
        let g = &self.graph;
        let ordering = |e: &petgraph::graph::EdgeReference<'_, Edge>| {
            e.weight().kind != EdgeKind::Notify && g[e.source()].host == g[e.target()].host
        };
        let nodes: Vec<NodeIndex> = g.node_indices().filter(|&n| g[n].host == host).collect();
        let mut waiting: HashMap<NodeIndex, usize> = HashMap::with_capacity(nodes.len());
        let mut ready = BinaryHeap::new();
        for &n in &nodes {
            let deps = g
                .edges_directed(n, petgraph::Direction::Incoming)
                .filter(ordering)
                .count();
            if deps == 0 {
                ready.push(Reverse(n));
            } else {
                waiting.insert(n, deps);
            }
        }
        let mut out = Vec::with_capacity(nodes.len());
        while let Some(Reverse(n)) = ready.pop() {
            out.push(n);
            for e in g.edges(n).filter(ordering) {
                if let Some(left) = waiting.get_mut(&e.target()) {
                    *left -= 1;
                    if *left == 0 {
                        waiting.remove(&e.target());
                        ready.push(Reverse(e.target()));
                    }
                }
            }
        }
        if !waiting.is_empty() {
            out.extend(nodes.iter().filter(|n| waiting.contains_key(n)));
        }
        out
    }
}

/// A cycle through the lowest-numbered member, following edges inside the component.
fn find_cycle(g: &DiGraph<Resource, Edge>, members: &[NodeIndex]) -> Vec<NodeIndex> {
    let start = members[0];
    let inside = |n: NodeIndex| members.binary_search(&n).is_ok();
    // Breadth-first from start back to start gives the shortest cycle.
    let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut succs: Vec<NodeIndex> = g.neighbors(n).filter(|&m| inside(m)).collect();
        succs.sort();
        for m in succs {
            if m == start {
                let mut path = vec![n];
                let mut cur = n;
                while cur != start {
                    cur = prev[&cur];
                    path.push(cur);
                }
                path.reverse();
                path.dedup();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    vec![start]
}

fn dot_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
