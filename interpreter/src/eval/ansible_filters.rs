//! Ansible's template filters that MiniJinja lacks or means differently, registered in
//! every `template()` environment so templates converted by `froyo import ansible` render
//! as Ansible renders them: `bool` (Ansible's: `"no"` is false, where MiniJinja's is
//! truthiness), `ternary`, `regex_replace`, `regex_search`, `comment`, `combine`,
//! `to_json`, `to_nice_json`, `quote`, `basename`, `dirname`, `flatten`, `mandatory`.
//! Tested against ansible-core's own output (`tests/fixtures/ansible_filters/table.json`).

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Ansible's `bool` (ansible-core 2.19 `to_bool`).
fn bool_filter(v: Value) -> bool {
    let s = match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_lowercase(),
        ValueKind::Bool => (if v.is_true() { "true" } else { "false" }).to_owned(),
        ValueKind::Number => v.to_string().to_lowercase(),
        _ => return false,
    };
    match s.as_str() {
        "yes" | "on" | "true" | "1" => true,
        "no" | "off" | "false" | "0" => false,
        other => other == "1.0",
    }
}

fn ternary(v: Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    if v.is_none()
        && let Some(n) = none
    {
        return n;
    }
    if v.is_true() { yes } else { no }
}

fn regex(pattern: &str, kwargs: &Kwargs) -> Result<regex::Regex, Error> {
    let ignorecase: Option<bool> = kwargs.get("ignorecase")?;
    let multiline: Option<bool> = kwargs.get("multiline")?;
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase.unwrap_or(false))
        .multi_line(multiline.unwrap_or(false))
        .build()
        .map_err(|e| {
            err(format!(
                "`{pattern}` is not a supported regular expression: {e}"
            ))
        })
}

/// Python's replacement template (`\1`, `\g<name>`) as the regex crate's (`${1}`).
fn python_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut it = r.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match it.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    it.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('g') => {
                    it.next();
                    let mut name = String::new();
                    if it.peek() == Some(&'<') {
                        it.next();
                        for ch in it.by_ref() {
                            if ch == '>' {
                                break;
                            }
                            name.push(ch);
                        }
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('\\') => {
                    it.next();
                    out.push('\\');
                }
                Some('n') => {
                    it.next();
                    out.push('\n');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regex_replace(
    v: String,
    pattern: String,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let re = regex(&pattern, &kwargs)?;
    let count: Option<usize> = kwargs.get("count")?;
    kwargs.assert_all_used()?;
    let rep = python_replacement(&replacement.unwrap_or_default());
    Ok(re
        .replacen(&v, count.unwrap_or(0), rep.as_str())
        .into_owned())
}

fn regex_search(v: String, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let re = regex(&pattern, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(re
        .find(&v)
        .map_or(Value::from(()), |m| Value::from(m.as_str())))
}

/// Ansible's `comment` with its styles and `decoration`.
fn comment(text: String, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, deco, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(err(format!("comment: invalid style {other:?}"))),
    };
    let decoration: Option<String> = kwargs.get("decoration")?;
    kwargs.assert_all_used()?;
    let line_deco = decoration.unwrap_or_else(|| deco.to_owned());
    let fix = line_deco.trim_end().to_owned();
    let nl = "\n";
    let mut s = String::new();
    if !beginning.is_empty() {
        s.push_str(beginning);
        s.push_str(nl);
    }
    if !fix.is_empty() {
        s.push_str(&fix);
        s.push_str(nl);
    }
    let body = format!(
        "{line_deco}{}",
        text.replace(nl, &format!("{nl}{line_deco}"))
    )
    .replace(
        &format!("{line_deco}{nl}"),
        &format!("{}{nl}", line_deco.trim_end()),
    );
    s.push_str(&body);
    s.push_str(nl);
    s.push_str(&fix);
    if !end.is_empty() {
        s.push_str(nl);
        s.push_str(end);
    }
    Ok(s)
}

fn to_json_value(v: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|e| err(format!("not JSON: {e}")))
}

fn combine(
    base: Value,
    others: minijinja::value::Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let recursive: Option<bool> = kwargs.get("recursive")?;
    kwargs.assert_all_used()?;
    fn merge(a: &mut serde_json::Value, b: serde_json::Value, recursive: bool) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(existing) if recursive && existing.is_object() && v.is_object() => {
                            merge(existing, v, true)
                        }
                        _ => {
                            a.insert(k, v);
                        }
                    }
                }
            }
            (a, b) => *a = b,
        }
    }
    let mut out = to_json_value(&base)?;
    for o in others.iter() {
        merge(&mut out, to_json_value(o)?, recursive.unwrap_or(false));
    }
    Ok(super::template::to_template_value(&out))
}

/// Python's `json.dumps` spacing: `", "` and `": "`.
fn python_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        serde_json::Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!(
                    "{}: {}",
                    serde_json::Value::String(k.clone()),
                    python_json(x)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn to_json(v: Value) -> Result<String, Error> {
    Ok(python_json(&to_json_value(&v)?))
}

/// Ansible's `to_nice_json`: indent 4, keys sorted.
fn to_nice_json(v: Value) -> Result<String, Error> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut pairs: Vec<_> = m.into_iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(pairs.into_iter().map(|(k, x)| (k, sort(x))).collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let v = sort(to_json_value(&v)?);
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&v, &mut ser).map_err(|e| err(e.to_string()))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Python's `shlex.quote`.
fn quote(v: String) -> String {
    let safe = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        v
    } else {
        format!("'{}'", v.replace('\'', "'\"'\"'"))
    }
}

fn basename(v: String) -> String {
    v.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Python's `os.path.dirname`.
fn dirname(v: String) -> String {
    match v.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &v[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head.to_owned()
            } else {
                trimmed.to_owned()
            }
        }
    }
}

fn flatten(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let levels: Option<i64> = kwargs.get("levels")?;
    kwargs.assert_all_used()?;
    fn go(v: &serde_json::Value, levels: Option<i64>, out: &mut Vec<serde_json::Value>) {
        for item in v.as_array().into_iter().flatten() {
            match item {
                serde_json::Value::Array(_) if levels.is_none_or(|l| l > 0) => {
                    go(item, levels.map(|l| l - 1), out)
                }
                serde_json::Value::Null => {}
                other => out.push(other.clone()),
            }
        }
    }
    let mut out = Vec::new();
    go(&to_json_value(&v)?, levels, &mut out);
    Ok(super::template::to_template_value(
        &serde_json::Value::from(out),
    ))
}

fn mandatory(v: Value, msg: Option<String>) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "Mandatory variable has not been defined".into()),
        ));
    }
    Ok(v)
}

/// Adds the filters to `env`.
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("bool", bool_filter);
    env.add_filter("ternary", ternary);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("comment", comment);
    env.add_filter("combine", combine);
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("quote", quote);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("flatten", flatten);
    env.add_filter("mandatory", mandatory);
}

#[cfg(test)]
mod tests {
    /// Each template of the table renders as ansible-core rendered it
    /// (`tests/fixtures/ansible_filters/table.json`, from `table.py` next to it).
    #[test]
    fn filters_render_as_ansible_renders_them() {
        let table: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/ansible_filters/table.json"
        ))
        .unwrap();
        let vars = &table["vars"];
        let rows = table["rows"].as_array().unwrap();
        assert!(rows.len() >= 25);
        for row in rows {
            let src = row["template"].as_str().unwrap();
            let want = row["output"].as_str().unwrap_or_else(|| panic!("{row}"));
            let got = super::super::template::render("t.j2", src, vars)
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(got, want, "{src}");
        }
    }
}
