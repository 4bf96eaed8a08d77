//! Field docs from `schema.cue`: names, CUE types, defaults and `//` comments.
//!
//! libcue does not expose comments, so the house schema style (one field per line, doc
//! comments directly above, see `providers/README.md`) is read here line by line. CUE
//! itself still does all validation; this only feeds `froyo doc`, hints and the LSP.

use serde::Serialize;

/// A CUE definition's docs.
#[derive(Debug, Clone, Serialize)]
pub struct TypeDoc {
    pub definition: String,
    pub doc: String,
    pub fields: Vec<FieldDoc>,
    /// Only fields and comments: no conditionals or other constraints across fields, so
    /// validity is per field and defaults do not depend on other fields.
    pub plain: bool,
}

/// One field of a definition.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDoc {
    pub name: String,
    /// `!` fields must be given (the identity field is filled from the resource name).
    pub required: bool,
    /// `?` fields may be left out and have no default.
    pub optional: bool,
    /// The CUE expression after the colon, e.g. `*"file" | "absent"`.
    pub cue_type: String,
    /// The default as CUE text (the `*`-marked disjunct), if any.
    pub default: Option<String>,
    pub doc: String,
}

/// Extracts every top-level `#Name: {` ... `}` definition with its fields.
pub fn extract(schema: &str) -> Vec<TypeDoc> {
    let mut out = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    let mut current: Option<TypeDoc> = None;
    for line in schema.lines() {
        let trimmed = line.trim();
        if let Some(text) = trimmed.strip_prefix("//") {
            comment.push(text.trim().to_owned());
            continue;
        }
        if current.is_none() {
            if let Some(rest) = trimmed.strip_prefix('#')
                && let Some((name, tail)) = rest.split_once(':')
                && tail.trim() == "{"
            {
                current = Some(TypeDoc {
                    definition: format!("#{name}"),
                    doc: comment.join("\n"),
                    fields: Vec::new(),
                    plain: true,
                });
            }
            comment.clear();
            continue;
        }
        if line.starts_with('}') {
            out.extend(current.take());
            comment.clear();
            continue;
        }
        if let Some(def) = current.as_mut() {
            match parse_field(line, &comment) {
                Some(field) => def.fields.push(field),
                None if !trimmed.is_empty() => def.plain = false,
                None => {}
            }
        }
        comment.clear();
    }
    out
}

fn parse_field(line: &str, comment: &[String]) -> Option<FieldDoc> {
    // Fields are indented exactly once; deeper lines belong to nested structs.
    let body = line
        .strip_prefix('\t')
        .or_else(|| line.strip_prefix("    "))?;
    if body.starts_with(char::is_whitespace) {
        return None;
    }
    let (head, expr) = body.split_once(':')?;
    let (name, required, optional) = match head.strip_suffix('!') {
        Some(n) => (n, true, false),
        None => match head.strip_suffix('?') {
            Some(n) => (n, false, true),
            None => (head, false, false),
        },
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let cue_type = expr.trim().to_owned();
    Some(FieldDoc {
        name: name.to_owned(),
        required,
        optional,
        default: default_of(&cue_type),
        cue_type,
        doc: comment.join("\n"),
    })
}

/// The `*`-marked disjunct of a top-level disjunction, if any.
fn default_of(expr: &str) -> Option<String> {
    split_top_level(expr, '|')
        .into_iter()
        .find_map(|d| d.trim().strip_prefix('*').map(|v| v.trim().to_owned()))
}

/// Splits on `sep` outside brackets, braces, parens and strings.
pub(crate) fn split_top_level(expr: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut in_str, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in expr.char_indices() {
        if in_str {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => in_str = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&expr[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&expr[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_fields_defaults_and_docs() {
        let src = "// A file.\n// Second line.\n#File: {\n\t// Absolute path.\n\tpath!: string & =~\"^/\"\n\t// State.\n\tstate: *\"file\" | \"absent\"\n\tmode?: =~\"^0?[0-7]{3}$\"\n\tenv?: {[string]: string}\n}\n#Mode: =~\"x\"\n";
        let defs = extract(src);
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(d.definition, "#File");
        assert_eq!(d.doc, "A file.\nSecond line.");
        let names: Vec<_> = d.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["path", "state", "mode", "env"]);
        assert!(d.fields[0].required);
        assert_eq!(d.fields[0].doc, "Absolute path.");
        assert_eq!(d.fields[1].default.as_deref(), Some("\"file\""));
        assert!(d.fields[2].optional);
        assert!(d.plain);
        let with_rule = extract("#C: {\n\ta?: int\n\tif a != _|_ {b: 1}\n}\n");
        assert!(!with_rule[0].plain);
        assert_eq!(d.fields[3].cue_type, "{[string]: string}");
    }
}
