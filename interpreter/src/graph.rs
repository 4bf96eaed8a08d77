//! The resource graph: validated resources per host and the edges between them
//! (explicit `require()`, implicit handle references, `notify()`), with the checks that
//! need the whole graph (cycles) and its JSON and DOT renderings.

use std::collections::HashMap;

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
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Explicit => "explicit",
            EdgeKind::Implicit => "implicit",
            EdgeKind::Notify => "notify",
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
    /// The config field of an implicit edge, `on=...` of a notify edge.
    pub detail: String,
    pub span: Option<FileSpan>,
}

impl Edge {
    fn provenance(&self) -> String {
        let at = self
            .span
            .as_ref()
            .map(|s| format!(" at {}", span_line(s)))
            .unwrap_or_default();
        match self.kind {
            EdgeKind::Explicit => format!("explicit: require(){at}"),
            EdgeKind::Implicit => format!("implicit: handle in `{}`{at}", self.detail),
            EdgeKind::Notify => format!("notify ({}){at}", self.detail),
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
            let style = match e.weight().kind {
                EdgeKind::Explicit => "solid",
                EdgeKind::Implicit => "dotted",
                EdgeKind::Notify => "dashed",
            };
            out.push_str(&format!(
                "  n{} -> n{} [label={}, style={style}];\n",
                e.source().index(),
                e.target().index(),
                dot_str(e.weight().kind.as_str())
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
                let label = format!("`{}` → `{}` ({})", g[from].id, g[to].id, edge.provenance());
                if let Some(span) = edge.span.clone() {
                    d = d.also(span, label);
                }
            }
            out.push(d);
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
