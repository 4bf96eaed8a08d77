//! Target selectors (spec §5): `role=web,env in (prod,stage),!canary,name~web-*`.
//!
//! Shared by `select()`, `play(hosts=...)`, `targets()` and `--on`. A term matches labels;
//! the target's name is also visible as the label `name`.

use std::collections::BTreeMap;
use std::fmt;

/// One `,`-separated term.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Has(String),
    Lacks(String),
    /// `name~glob` (or any label with `~`).
    Glob(String, String),
}

/// A conjunction of terms; empty or `*` selects every target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    pub terms: Vec<Term>,
}

impl Selector {
    pub fn parse(expr: &str) -> Result<Selector, String> {
        let expr = expr.trim();
        if expr.is_empty() || expr == "*" {
            return Ok(Selector::default());
        }
        let mut terms = Vec::new();
        for raw in split_terms(expr)? {
            let t = raw.trim();
            if t.is_empty() {
                return Err(format!("empty term in selector `{expr}`"));
            }
            terms.push(parse_term(t).map_err(|e| format!("{e} in selector `{expr}`"))?);
        }
        Ok(Selector { terms })
    }

    /// `select(role="web", env=["prod", "stage"])`.
    pub fn from_labels(labels: Vec<(String, Vec<String>)>) -> Selector {
        let terms = labels
            .into_iter()
            .map(|(k, mut vs)| {
                if vs.len() == 1 {
                    Term::Eq(k, vs.remove(0))
                } else {
                    Term::In(k, vs)
                }
            })
            .collect();
        Selector { terms }
    }

    pub fn and(mut self, other: Selector) -> Selector {
        self.terms.extend(other.terms);
        self
    }

    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let get = |k: &str| {
            if k == "name" {
                Some(name)
            } else {
                labels.get(k).map(String::as_str)
            }
        };
        self.terms.iter().all(|t| match t {
            Term::Eq(k, v) => get(k) == Some(v.as_str()),
            Term::Ne(k, v) => get(k) != Some(v.as_str()),
            Term::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Term::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            // A bare word is also a target name, so `--on web-01` does what it says.
            Term::Has(k) => get(k).is_some() || k == name,
            Term::Lacks(k) => get(k).is_none(),
            Term::Glob(k, g) => get(k).is_some_and(|x| glob(g, x)),
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("*");
        }
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| match t {
                Term::Eq(k, v) => format!("{k}={v}"),
                Term::Ne(k, v) => format!("{k}!={v}"),
                Term::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Term::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Term::Has(k) => k.clone(),
                Term::Lacks(k) => format!("!{k}"),
                Term::Glob(k, g) => format!("{k}~{g}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn split_terms(expr: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in expr.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced `)` in selector `{expr}`"));
                }
            }
            ',' if depth == 0 => {
                out.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced `(` in selector `{expr}`"));
    }
    out.push(&expr[start..]);
    Ok(out)
}

fn valid_key(k: &str) -> Result<String, String> {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
    {
        Ok(k.to_owned())
    } else {
        Err(format!("invalid label key `{k}`"))
    }
}

fn parse_list(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected `(a,b,...)` after `in`, got `{rest}`"))?;
    Ok(inner
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

fn parse_term(t: &str) -> Result<Term, String> {
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Term::Lacks(valid_key(k.trim())?));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Term::Ne(valid_key(k.trim())?, v.trim().to_owned()));
    }
    if let Some((k, v)) = t.split_once('=') {
        return Ok(Term::Eq(valid_key(k.trim())?, v.trim().to_owned()));
    }
    if let Some((k, v)) = t.split_once('~') {
        return Ok(Term::Glob(valid_key(k.trim())?, v.trim().to_owned()));
    }
    if let Some((k, rest)) = t.split_once(" notin ") {
        return Ok(Term::NotIn(valid_key(k.trim())?, parse_list(rest)?));
    }
    if let Some((k, rest)) = t.split_once(" in ") {
        return Ok(Term::In(valid_key(k.trim())?, parse_list(rest)?));
    }
    Ok(Term::Has(valid_key(t)?))
}

/// `*` matches any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_grammar() {
        let web = labels(&[("role", "web"), ("env", "prod")]);
        let canary = labels(&[("role", "web"), ("env", "stage"), ("canary", "yes")]);
        let check = |expr: &str, name: &str, l: &BTreeMap<String, String>| {
            Selector::parse(expr).unwrap().matches(name, l)
        };
        assert!(check(
            "role=web,env in (prod,stage),!canary",
            "web-01",
            &web
        ));
        assert!(!check(
            "role=web,env in (prod,stage),!canary",
            "web-02",
            &canary
        ));
        assert!(check("env notin (prod)", "web-02", &canary));
        assert!(check("name~web-*", "web-01", &web));
        assert!(!check("name~t?", "web-01", &web));
        assert!(check("canary", "x", &canary));
        assert!(check("web-01", "web-01", &web));
        assert!(!check("web-02", "web-01", &web));
        assert!(check("role!=db", "x", &web));
        assert!(check("", "x", &web));
        assert!(check("name=local", "local", &BTreeMap::new()));
        assert_eq!(
            Selector::parse("env in (a,b),!x").unwrap().to_string(),
            "env in (a,b),!x"
        );
        assert!(Selector::parse("env in (a,b").is_err());
        assert!(Selector::parse("a,,b").is_err());
        assert!(Selector::parse("bad key=1").is_err());
    }
}
