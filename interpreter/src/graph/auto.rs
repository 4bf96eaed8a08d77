//! Automatic edges (spec §3, "Automatic edges"): the orderings every playbook needs and
//! nobody should have to write with `require()`. On each host and within each play, a
//! path goes after the nearest *managed* directory above it, anything with `owner` or
//! `group` after the managed user and group of that name, a user after its managed
//! groups, `authorized_keys` after its user; when the prerequisite is `absent` the edge is
//! reversed (the file is removed before its directory, the user before its group).
//!
//! The user's edges win. An automatic edge that would close a cycle with explicit,
//! implicit or notify edges is dropped, so a playbook that orders things the other way on
//! purpose gets what it wrote and never an `E-CYCLE` it did not cause.
//!
//! Cost, for n resources, e user edges and a automatic candidates (a ≤ a few per
//! resource): indexing and lookups are O(n · d) with d the path depth (directories are
//! indexed by normalised path and users and groups by name, per host and play; each path
//! walks its own ancestors, never the other resources); the cycle filter is one Tarjan
//! SCC pass, O(n + e + a). Only an automatic edge whose two ends share a strongly
//! connected component of user + automatic edges can close a cycle; those (none in a
//! playbook without conflicting `require()`s) are decided one by one, in creation order,
//! by a reachability search inside their component: O(k · (s + e_s)) for k such edges in
//! a component of s resources and e_s edges.
//!
//! Without user edges, automatic edges alone never form a cycle: every rule points from
//! a group to a user or a path, from a user to a path or keys, or from a directory to a
//! deeper path, and a reversed edge always ends at an `absent` prerequisite, so ordering
//! present prerequisites first (groups, users, then directories by depth) and absent ones
//! last (in the opposite order) is consistent with every edge.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde_json::Value as Json;

use super::{Edge, EdgeKind, Graph, Resource};
use crate::diag::kwarg_span;

const DIRECTORY: &str = "linux.file::directory";
const USER: &str = "linux.user::user";
const GROUP: &str = "linux.user::group";

/// What a field of a resource names, and so what it waits for.
#[derive(Debug, Clone, Copy)]
enum Names {
    /// A path: the nearest managed directory strictly above it.
    Inside,
    /// A directory to work in: that directory when managed, else the nearest above it.
    At,
    /// A user, by name.
    User,
    /// A group, by name (or a list of them).
    Group,
}

const PATH_OWNER_GROUP: &[(&str, Names)] = &[
    ("path", Names::Inside),
    ("owner", Names::User),
    ("group", Names::Group),
];
const DEST_OWNER_GROUP: &[(&str, Names)] = &[
    ("dest", Names::Inside),
    ("owner", Names::User),
    ("group", Names::Group),
];

/// The fields that add automatic edges, per resource type.
fn rules(rtype: &str) -> &'static [(&'static str, Names)] {
    match rtype {
        "linux.file::file"
        | "linux.file::directory"
        | "linux.file::symlink"
        | "linux.file::line"
        | "linux.file::block" => PATH_OWNER_GROUP,
        "linux.net::download" | "linux.archive::extract" => DEST_OWNER_GROUP,
        // A command's `creates` path is what it makes: waiting for a managed directory at
        // that very path would skip the command, so only the directories above it count.
        "linux.exec::command" => &[("chdir", Names::At), ("creates", Names::Inside)],
        USER => &[("group", Names::Group), ("groups", Names::Group)],
        "linux.user::authorized_keys" => &[("user", Names::User)],
        _ => &[],
    }
}

/// The managed prerequisites of one host and play, by what names them.
#[derive(Default)]
struct Scope<'g> {
    dirs: HashMap<Cow<'g, str>, NodeIndex>,
    users: HashMap<&'g str, NodeIndex>,
    groups: HashMap<&'g str, NodeIndex>,
}

/// Adds the automatic edges of `graph` after its other edges, in a deterministic order
/// (by the resource whose field causes them, then by rule). Returns how many candidates
/// were dropped because they would have closed a cycle with the user's edges.
pub fn add(graph: &mut Graph) -> usize {
    let g = &mut graph.graph;
    let candidates = candidates(g);
    if candidates.is_empty() {
        return 0;
    }
    let first = g.edge_count();
    for (from, to, edge) in candidates {
        g.add_edge(from, to, edge);
    }
    let dropped = closing_cycles(g, first);
    if dropped.is_empty() {
        return 0;
    }
    for &i in &dropped {
        let e = petgraph::graph::EdgeIndex::new(i);
        if let Some((from, to)) = g.edge_endpoints(e) {
            tracing::debug!(
                from = %g[from].id,
                to = %g[to].id,
                field = %g[e].detail,
                "automatic edge dropped: it would close a cycle with the playbook's own edges"
            );
        }
    }
    // Rebuild rather than remove edge by edge: removal reorders petgraph's edges (the
    // graph must stay the same byte for byte) and costs the degree of the ends each time.
    let (nodes, edges) = std::mem::take(g).into_nodes_edges();
    let drop: HashSet<usize> = dropped.iter().copied().collect();
    let mut rebuilt = DiGraph::with_capacity(nodes.len(), edges.len() - drop.len());
    for n in nodes {
        rebuilt.add_node(n.weight);
    }
    for (i, e) in edges.into_iter().enumerate() {
        if !drop.contains(&i) {
            rebuilt.add_edge(e.source(), e.target(), e.weight);
        }
    }
    *g = rebuilt;
    dropped.len()
}

/// Every automatic edge the rules give, without those a user edge already makes.
fn candidates(g: &DiGraph<Resource, Edge>) -> Vec<(NodeIndex, NodeIndex, Edge)> {
    let mut scopes: HashMap<(&str, &str), Scope> = HashMap::new();
    for n in g.node_indices() {
        let r = &g[n];
        // A handler runs only when notified, after its play: nothing can wait for it.
        if r.handler || !matches!(r.rtype.as_str(), DIRECTORY | USER | GROUP) {
            continue;
        }
        let scope = scopes.entry((&r.host, &r.play)).or_default();
        // The first declaration of a path or name wins, so the result does not depend on
        // hashing.
        match r.rtype.as_str() {
            DIRECTORY => {
                if let Some(p) = r
                    .config
                    .get("path")
                    .and_then(Json::as_str)
                    .and_then(normalize)
                {
                    scope.dirs.entry(p).or_insert(n);
                }
            }
            USER => {
                if let Some(name) = r.config.get("name").and_then(Json::as_str) {
                    scope.users.entry(name).or_insert(n);
                }
            }
            _ => {
                if let Some(name) = r.config.get("name").and_then(Json::as_str) {
                    scope.groups.entry(name).or_insert(n);
                }
            }
        }
    }
    if scopes.is_empty() {
        return Vec::new();
    }
    let mut existing: HashSet<(NodeIndex, NodeIndex)> = g
        .edge_references()
        .filter(|e| e.weight().kind != EdgeKind::Notify)
        .map(|e| (e.source(), e.target()))
        .collect();
    let mut out = Vec::new();
    for n in g.node_indices() {
        let r = &g[n];
        let rules = rules(&r.rtype);
        if rules.is_empty() {
            continue;
        }
        let Some(scope) = scopes.get(&(r.host.as_str(), r.play.as_str())) else {
            continue;
        };
        for &(field, names) in rules {
            let values: Vec<&str> = match r.config.get(field) {
                Some(Json::String(s)) => vec![s.as_str()],
                Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).collect(),
                // Absent, or a deferred value (`$ref`/`$secret` marker): nothing to name.
                _ => continue,
            };
            for v in values {
                let prerequisite = match names {
                    Names::Inside | Names::At => normalize(v)
                        .and_then(|p| nearest(&scope.dirs, &p, matches!(names, Names::At))),
                    Names::User => scope.users.get(v).copied(),
                    Names::Group => scope.groups.get(v).copied(),
                };
                let Some(p) = prerequisite.filter(|&p| p != n) else {
                    continue;
                };
                let reversed = is_absent(&g[p]);
                let (from, to) = if reversed { (n, p) } else { (p, n) };
                if !existing.insert((from, to)) {
                    continue;
                }
                let span = r
                    .span
                    .as_ref()
                    .and_then(|s| kwarg_span(s, field))
                    .or_else(|| r.span.clone());
                out.push((
                    from,
                    to,
                    Edge {
                        kind: EdgeKind::Auto,
                        detail: field.to_owned(),
                        span,
                        reversed,
                    },
                ));
            }
        }
    }
    out
}

fn is_absent(r: &Resource) -> bool {
    r.config.get("state").and_then(Json::as_str) == Some("absent")
}

/// `path` without empty or `.` components and without a trailing `/`; `None` unless
/// absolute. `..` stays a component: `/a/../b` can only be reached through `/a`.
fn normalize(path: &str) -> Option<Cow<'_, str>> {
    if !path.starts_with('/') {
        return None;
    }
    let clean = path == "/"
        || !(path.ends_with('/')
            || path.contains("//")
            || path.contains("/./")
            || path.ends_with("/."));
    if clean {
        return Some(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

/// The managed directory nearest to `path` going up (from `path` itself when `at`).
fn nearest(dirs: &HashMap<Cow<'_, str>, NodeIndex>, path: &str, at: bool) -> Option<NodeIndex> {
    if at && let Some(&n) = dirs.get(path) {
        return Some(n);
    }
    let mut p = path;
    while p.len() > 1 {
        let cut = p.rfind('/')?;
        p = &p[..cut.max(1)];
        if let Some(&n) = dirs.get(p) {
            return Some(n);
        }
    }
    None
}

/// The automatic edges (indices `first..`) to drop: each one, taken in order, that would
/// close a cycle with the user's edges and the automatic edges kept before it.
///
/// Any cycle lies inside one strongly connected component, so an automatic edge between
/// two components is kept at once. Inside a component the user's edges (those with both
/// ends in it) are laid down first, then each automatic edge `u → v` is kept only if `u`
/// is not reachable from `v` yet.
fn closing_cycles(g: &DiGraph<Resource, Edge>, first: usize) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let sccs = petgraph::algo::tarjan_scc(g);
    let mut comp = vec![NONE; g.node_count()];
    for (c, members) in sccs.iter().enumerate() {
        if members.len() > 1 {
            for m in members {
                comp[m.index()] = c;
            }
        }
    }
    let mut contested: HashMap<usize, Vec<usize>> = HashMap::new();
    for e in g.edge_references().filter(|e| e.id().index() >= first) {
        let c = comp[e.source().index()];
        if c != NONE && c == comp[e.target().index()] {
            contested.entry(c).or_default().push(e.id().index());
        }
    }
    let mut dropped = Vec::new();
    let mut local = vec![NONE; g.node_count()];
    for (c, edges) in contested {
        let members = &sccs[c];
        for (i, m) in members.iter().enumerate() {
            local[m.index()] = i;
        }
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
        for (i, &m) in members.iter().enumerate() {
            for e in g.edges(m) {
                if e.id().index() < first && comp[e.target().index()] == c {
                    adj[i].push(local[e.target().index()]);
                }
            }
        }
        // Edge indices grow in creation order: the earlier edge is kept.
        for e in edges {
            let (u, v) = g
                .edge_endpoints(petgraph::graph::EdgeIndex::new(e))
                .map(|(u, v)| (local[u.index()], local[v.index()]))
                .unwrap_or((NONE, NONE));
            if reaches(&adj, v, u) {
                dropped.push(e);
            } else {
                adj[u].push(v);
            }
        }
    }
    dropped.sort_unstable();
    dropped
}

/// Whether `to` can be reached from `from` along `adj` (iterative depth-first search).
fn reaches(adj: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; adj.len()];
    let mut stack = vec![from];
    seen[from] = true;
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        for &m in &adj[n] {
            if !seen[m] {
                seen[m] = true;
                stack.push(m);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(rtype: &str, name: &str, config: Json) -> Resource {
        Resource {
            id: format!("{rtype}[{name}]"),
            rtype: rtype.into(),
            name: name.into(),
            host: "local".into(),
            play: "default".into(),
            handler: false,
            config,
            meta: json!({}),
            sensitive: false,
            span: None,
        }
    }

    fn edge(kind: EdgeKind) -> Edge {
        Edge {
            kind,
            detail: String::new(),
            span: None,
            reversed: false,
        }
    }

    /// `from -> to (kind: detail by cause)` for every edge, in graph order.
    fn edges(graph: &Graph) -> Vec<String> {
        let g = &graph.graph;
        g.edge_references()
            .map(|e| {
                let w = e.weight();
                let by = if w.kind == EdgeKind::Auto {
                    format!(
                        ": {} of {}",
                        w.detail,
                        w.cause(&g[e.source()], &g[e.target()]).name
                    )
                } else {
                    String::new()
                };
                format!(
                    "{} -> {} ({}{by})",
                    g[e.source()].name,
                    g[e.target()].name,
                    w.kind.as_str()
                )
            })
            .collect()
    }

    #[test]
    fn paths_are_normalised_and_walk_up_to_the_nearest_managed_directory() {
        assert_eq!(normalize("/a//b/./c/").as_deref(), Some("/a/b/c"));
        assert_eq!(normalize("/").as_deref(), Some("/"));
        assert_eq!(normalize("//").as_deref(), Some("/"));
        assert_eq!(normalize("/a/../b").as_deref(), Some("/a/../b"));
        assert_eq!(normalize("rel/x"), None);
        let dirs: HashMap<Cow<str>, NodeIndex> = [
            (Cow::Borrowed("/"), NodeIndex::new(0)),
            (Cow::Borrowed("/srv"), NodeIndex::new(1)),
            (Cow::Borrowed("/srv/app"), NodeIndex::new(2)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            nearest(&dirs, "/srv/app/x/y", false),
            Some(NodeIndex::new(2))
        );
        assert_eq!(nearest(&dirs, "/srv/app", false), Some(NodeIndex::new(1)));
        assert_eq!(nearest(&dirs, "/srv/app", true), Some(NodeIndex::new(2)));
        assert_eq!(nearest(&dirs, "/etc", false), Some(NodeIndex::new(0)));
        assert_eq!(nearest(&dirs, "/", false), None);
    }

    #[test]
    fn every_rule_adds_its_edge_in_the_right_direction() {
        let mut graph = Graph::default();
        let g = &mut graph.graph;
        g.add_node(resource(
            DIRECTORY,
            "/srv",
            json!({"path": "/srv", "state": "directory"}),
        ));
        g.add_node(resource(
            "linux.file::file",
            "/srv/app/f",
            json!({"path": "/srv/app/f", "owner": "app", "group": "ops", "state": "file"}),
        ));
        g.add_node(resource(
            DIRECTORY,
            "/srv/app/",
            json!({"path": "/srv/app/", "owner": "app", "state": "directory"}),
        ));
        g.add_node(resource(
            USER,
            "app",
            json!({"name": "app", "group": "app", "groups": ["ops", "nope"], "state": "present"}),
        ));
        g.add_node(resource(
            GROUP,
            "app",
            json!({"name": "app", "state": "present"}),
        ));
        g.add_node(resource(
            GROUP,
            "ops",
            json!({"name": "ops", "state": "present"}),
        ));
        g.add_node(resource(
            "linux.user::authorized_keys",
            "app",
            json!({"user": "app"}),
        ));
        g.add_node(resource(
            "linux.exec::command",
            "build",
            json!({"name": "build", "chdir": "/srv/app", "creates": "/srv/app/out"}),
        ));
        g.add_node(resource(
            "linux.net::download",
            "/srv/app/t.tgz",
            json!({"dest": "/srv/app/t.tgz", "owner": "root"}),
        ));
        assert_eq!(add(&mut graph), 0);
        assert_eq!(
            edges(&graph),
            [
                "/srv/app/ -> /srv/app/f (auto: path of /srv/app/f)",
                "app -> /srv/app/f (auto: owner of /srv/app/f)",
                "ops -> /srv/app/f (auto: group of /srv/app/f)",
                "/srv -> /srv/app/ (auto: path of /srv/app/)",
                "app -> /srv/app/ (auto: owner of /srv/app/)",
                "app -> app (auto: group of app)",
                "ops -> app (auto: groups of app)",
                "app -> app (auto: user of app)",
                "/srv/app/ -> build (auto: chdir of build)",
                "/srv/app/ -> /srv/app/t.tgz (auto: dest of /srv/app/t.tgz)",
            ]
        );
        // The command's chdir and creates name the same directory: one edge.
        assert_eq!(graph.graph.edge_count(), 10);
    }

    #[test]
    fn absent_prerequisites_go_last_and_other_scopes_are_not_linked() {
        let mut graph = Graph::default();
        let g = &mut graph.graph;
        g.add_node(resource(
            DIRECTORY,
            "/t",
            json!({"path": "/t", "state": "absent"}),
        ));
        g.add_node(resource(
            "linux.file::file",
            "/t/f",
            json!({"path": "/t/f", "owner": "u", "state": "absent"}),
        ));
        g.add_node(resource(
            USER,
            "u",
            json!({"name": "u", "group": "u", "state": "absent"}),
        ));
        g.add_node(resource(
            GROUP,
            "u",
            json!({"name": "u", "state": "absent"}),
        ));
        // Another host and another play: nothing links them to `/t`.
        let mut other = resource("linux.file::file", "/t/g", json!({"path": "/t/g"}));
        other.host = "web-01".into();
        g.add_node(other);
        let mut later = resource("linux.file::file", "/t/h", json!({"path": "/t/h"}));
        later.play = "later".into();
        g.add_node(later);
        // A handler waits like any resource, but nothing waits for it.
        let mut h = resource(DIRECTORY, "/t/h/x", json!({"path": "/t/h/x"}));
        h.handler = true;
        g.add_node(h);
        g.add_node(resource(
            "linux.file::file",
            "/t/h/x/y",
            json!({"path": "/t/h/x/y"}),
        ));
        add(&mut graph);
        assert_eq!(
            edges(&graph),
            [
                "/t/f -> /t (auto: path of /t/f)",
                "/t/f -> u (auto: owner of /t/f)",
                "u -> u (auto: group of u)",
                "/t/h/x -> /t (auto: path of /t/h/x)",
                "/t/h/x/y -> /t (auto: path of /t/h/x/y)",
            ]
        );
        let order: Vec<&str> = graph
            .host_order("local")
            .into_iter()
            .map(|n| graph.graph[n].name.as_str())
            .collect();
        assert_eq!(
            order,
            ["/t/f", "u", "u", "/t/h", "/t/h/x", "/t/h/x/y", "/t"]
        );
    }

    #[test]
    fn user_edges_win_over_automatic_ones_that_would_close_a_cycle() {
        let mut graph = Graph::default();
        let g = &mut graph.graph;
        let grp = g.add_node(resource(GROUP, "g", json!({"name": "g"})));
        g.add_node(resource(USER, "u", json!({"name": "u", "group": "g"})));
        let dir = g.add_node(resource(
            DIRECTORY,
            "/a",
            json!({"path": "/a", "owner": "u"}),
        ));
        let file = g.add_node(resource(
            "linux.file::file",
            "/a/f",
            json!({"path": "/a/f"}),
        ));
        let other = g.add_node(resource(
            "linux.file::file",
            "/a/o",
            json!({"path": "/a/o"}),
        ));
        // The playbook wants the group after the file: g → u → /a → /a/f → g would be a
        // cycle, and the last automatic edge created in it (/a → /a/f) is the one dropped.
        g.add_edge(file, grp, edge(EdgeKind::Explicit));
        // An implicit edge already orders /a/o after /a: no duplicate.
        g.add_edge(dir, other, edge(EdgeKind::Implicit));
        assert_eq!(add(&mut graph), 1);
        assert_eq!(
            edges(&graph),
            [
                "/a/f -> g (explicit)",
                "/a -> /a/o (implicit)",
                "g -> u (auto: group of u)",
                "u -> /a (auto: owner of /a)",
            ]
        );
        assert!(graph.cycle_diagnostics().is_empty());
    }

    #[test]
    fn a_cycle_the_user_wrote_is_still_reported_with_every_edge() {
        let mut graph = Graph::default();
        let g = &mut graph.graph;
        let a = g.add_node(resource(DIRECTORY, "/a", json!({"path": "/a"})));
        let f = g.add_node(resource(
            "linux.file::file",
            "/a/f",
            json!({"path": "/a/f"}),
        ));
        g.add_edge(a, f, edge(EdgeKind::Explicit));
        g.add_edge(f, a, edge(EdgeKind::Explicit));
        add(&mut graph);
        assert_eq!(
            edges(&graph),
            ["/a -> /a/f (explicit)", "/a/f -> /a (explicit)"]
        );
        assert_eq!(graph.cycle_diagnostics().len(), 1);
    }

    #[test]
    fn an_automatic_edge_in_a_cycle_is_named_with_its_cause() {
        let from = resource(DIRECTORY, "/a", json!({}));
        let to = resource("linux.file::file", "/a/f", json!({}));
        let mut e = edge(EdgeKind::Auto);
        e.detail = "path".into();
        assert_eq!(
            e.provenance(&from, &to),
            "auto: `path` of `linux.file::file[/a/f]`"
        );
        e.reversed = true;
        assert_eq!(
            e.provenance(&to, &from),
            "auto: `path` of `linux.file::file[/a/f]`"
        );
    }
}
