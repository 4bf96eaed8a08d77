//! What `froyo import ansible` reads: YAML as Ansible reads it, and the Jinja2
//! expressions in it translated to Starlark.

use froyo_import::expr::{Scope, is_template, template_value};
use froyo_import::yaml::{Node, parse};

/// Parses `data` as a playbook file and translates every templated scalar.
pub fn ansible_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(node) = parse(text, "site.yml") else {
        return;
    };
    let _ = node.to_json();
    let scope = Scope::new();
    let mut budget = 256;
    walk(&node, &mut |s| {
        if budget > 0 && is_template(s) {
            budget -= 1;
            let _ = template_value(s, &scope);
        }
    });
}

fn walk(node: &Node, f: &mut impl FnMut(&str)) {
    if let Some(s) = node.as_str() {
        f(s);
    } else if let Some(map) = node.as_map() {
        for (k, v) in map {
            walk(k, f);
            walk(v, f);
        }
    } else if let Some(seq) = node.as_seq() {
        for v in seq {
            walk(v, f);
        }
    }
}
