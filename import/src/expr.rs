//! Jinja2 expressions (Ansible's `when:`, `{{ … }}` in task arguments, loop sources)
//! translated into Starlark source, on minijinja's parser (its `unstable_machinery` AST).
//!
//! Variables become `v["name"]` (the role's merged variables), loop variables and other
//! locals stay names, Ansible facts become `host.facts…` with their literals normalised
//! (`ansible_os_family == 'Debian'` → `host.facts.os.basic.family == "debian"`), and the
//! filters and tests with a Starlark meaning are rewritten (`| bool` → `ansible_bool()`,
//! Ansible's meaning; `| default(x)` → `.get(…, x)`; `is defined` → `in`). Anything else is
//! an [`Unsupported`] with the reason, which the converter turns into an `E-IMPORT`
//! placeholder: an expression is never guessed.

use minijinja::machinery::ast::{self, BinOpKind, CallArg, CompareOpKind, Expr, UnaryOpKind};
use minijinja::machinery::{WhitespaceConfig, parse, parse_expr};

/// Why an expression could not be translated (shown in the `E-IMPORT` placeholder).
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported(pub String);

type R<T> = Result<T, Unsupported>;

fn unsupported<T>(why: impl Into<String>) -> R<T> {
    Err(Unsupported(why.into()))
}

/// What names mean where an expression is translated.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Jinja2 name → Starlark local (`item`, a `loop_var`, a `with_dict` key/value pair).
    pub locals: Vec<(String, String)>,
    /// `register:` names → the Starlark variable holding the task's handle (or list).
    pub registered: Vec<(String, String)>,
    /// The name of the dict holding the role's variables (`v`).
    pub vars: String,
}

impl Scope {
    pub fn new() -> Self {
        Scope {
            vars: "v".into(),
            ..Default::default()
        }
    }

    fn local(&self, name: &str) -> Option<&str> {
        self.locals
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn registered(&self, name: &str) -> Option<&str> {
        self.registered
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A Starlark expression and its precedence (higher binds tighter).
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub text: String,
    prec: u8,
}

const P_IF: u8 = 0;
const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_NOT: u8 = 3;
const P_CMP: u8 = 4;
const P_ADD: u8 = 8;
const P_MUL: u8 = 9;
const P_UNARY: u8 = 10;
const P_ATOM: u8 = 11;

impl Code {
    fn new(text: impl Into<String>, prec: u8) -> Self {
        Code {
            text: text.into(),
            prec,
        }
    }

    fn atom(text: impl Into<String>) -> Self {
        Code::new(text, P_ATOM)
    }

    /// The text, parenthesised unless it binds at least as tightly as `min`.
    fn at(&self, min: u8) -> String {
        if self.prec >= min {
            self.text.clone()
        } else {
            format!("({})", self.text)
        }
    }
}

/// A Starlark string literal.
pub fn str_lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How a fact's literals are normalised to froyo's values.
#[derive(Clone, Copy, PartialEq)]
enum Norm {
    None,
    Family,
    Distro,
}

/// Ansible fact (without `ansible_`) → froyo fact expression and literal normaliser.
fn fact(name: &str) -> Option<(String, Norm)> {
    let basic = "host.facts.os.basic";
    Some(match name {
        "os_family" => (format!("{basic}.family"), Norm::Family),
        "distribution" => (format!("{basic}.distro"), Norm::Distro),
        "distribution_version" => (format!("{basic}.version"), Norm::None),
        "distribution_major_version" => (format!("{basic}.version.split(\".\")[0]"), Norm::None),
        "distribution_release" | "lsb.codename" => (format!("{basic}.codename"), Norm::None),
        "architecture" | "machine" => (format!("{basic}.arch"), Norm::None),
        "kernel" => (format!("{basic}.kernel"), Norm::None),
        "hostname" | "nodename" => (format!("{basic}.hostname"), Norm::None),
        "service_mgr" => (format!("{basic}.init"), Norm::None),
        "processor_vcpus" | "processor_count" | "processor_nproc" => {
            ("host.facts.hw.cpu.count".into(), Norm::None)
        }
        _ => return None,
    })
}

/// Ansible's value of a fact → froyo's (`RedHat` → `rhel`).
fn normalise(norm: Norm, s: &str) -> String {
    match norm {
        Norm::None => s.to_owned(),
        Norm::Family => match s {
            "RedHat" => "rhel".into(),
            "Archlinux" => "arch".into(),
            other => other.to_lowercase(),
        },
        Norm::Distro => match s {
            "RedHat" => "rhel".into(),
            "OracleLinux" => "ol".into(),
            "Amazon" => "amzn".into(),
            "Archlinux" => "arch".into(),
            "Linux Mint" => "linuxmint".into(),
            "openSUSE Leap" => "opensuse-leap".into(),
            "openSUSE Tumbleweed" => "opensuse-tumbleweed".into(),
            other => other.to_lowercase(),
        },
    }
}

/// A `when:` condition, split into what is known at plan time and what only at apply
/// time (`r is changed` of a registered task → `changed(r)`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    /// Plan-time conjuncts (an `if`), already Starlark.
    pub plan: Vec<String>,
    /// Handles (Starlark expressions) whose change the task waits for: `when = changed(…)`.
    pub changed: Vec<String>,
}

impl Condition {
    /// The plan-time part as one Starlark expression (`None` when there is none).
    pub fn plan_expr(&self) -> Option<String> {
        match self.plan.len() {
            0 => None,
            1 => Some(self.plan[0].clone()),
            _ => Some(
                self.plan
                    .iter()
                    .map(|c| {
                        // Each part was rendered alone; an `or` or a conditional needs parentheses.
                        if needs_parens_in_and(c) {
                            format!("({c})")
                        } else {
                            c.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" and "),
            ),
        }
    }
}

fn needs_parens_in_and(c: &str) -> bool {
    // Conservative: parenthesise anything with a top-level ` or ` or ` if `.
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let bytes: Vec<char> = c.chars().collect();
    for (i, &ch) in bytes.iter().enumerate() {
        match (quote, ch) {
            (Some(q), x) if x == q && (i == 0 || bytes[i - 1] != '\\') => quote = None,
            (Some(_), _) => {}
            (None, '"') => quote = Some('"'),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ' ') if depth == 0 => {
                let rest: String = bytes[i..].iter().collect();
                if rest.starts_with(" or ") || rest.starts_with(" if ") {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The translator for one scope.
pub struct Translator<'a> {
    pub scope: &'a Scope,
}

/// Translates an Ansible `when:` (one string; a list is the `and` of its items).
pub fn condition(items: &[&str], scope: &Scope) -> R<Condition> {
    let mut out = Condition::default();
    for raw in items {
        let src = strip_braces(raw);
        let e = parse_expr(src).map_err(|e| Unsupported(format!("`{src}` does not parse: {e}")))?;
        let t = Translator { scope };
        t.split_condition(&e, &mut out)?;
    }
    Ok(out)
}

/// `"{{ x }}"` used as a bare condition (deprecated in Ansible, still common).
fn strip_braces(s: &str) -> &str {
    let t = s.trim();
    match t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("{{") => inner.trim(),
        _ => t,
    }
}

/// Translates a standalone expression (a loop source, an `assert` clause).
pub fn expression(src: &str, scope: &Scope) -> R<String> {
    let src = strip_braces(src);
    let e = parse_expr(src).map_err(|e| Unsupported(format!("`{src}` does not parse: {e}")))?;
    Ok(Translator { scope }.expr(&e)?.text)
}

/// Whether a YAML string is templated at all.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Translates a string value of a task argument: a literal, one `{{ expr }}` (keeping the
/// expression's type, as Ansible does), or text with expressions (a `%` format).
pub fn template_value(s: &str, scope: &Scope) -> R<String> {
    if !is_template(s) {
        return Ok(str_lit(s));
    }
    let stmt = parse(
        s,
        "<value>",
        Default::default(),
        WhitespaceConfig::default(),
    )
    .map_err(|e| Unsupported(format!("`{s}` does not parse as a Jinja2 template: {e}")))?;
    let ast::Stmt::Template(t) = stmt else {
        return unsupported(format!("`{s}` is not a template"));
    };
    let tr = Translator { scope };
    let mut raw_parts: Vec<String> = Vec::new();
    let mut args: Vec<Code> = Vec::new();
    let mut fmt = String::new();
    for child in &t.children {
        match child {
            ast::Stmt::EmitRaw(r) => {
                fmt.push_str(&r.raw.replace('%', "%%"));
                raw_parts.push(r.raw.to_owned());
            }
            ast::Stmt::EmitExpr(e) => {
                fmt.push_str("%s");
                args.push(tr.expr(&e.expr)?);
            }
            _ => {
                return unsupported(format!(
                    "`{s}` uses Jinja2 statements ({{% … %}}) in a task argument"
                ));
            }
        }
    }
    if args.len() == 1 && raw_parts.iter().all(|r| r.is_empty()) {
        return Ok(args.remove(0).text);
    }
    // `"/home/" + x` reads better than a format for one prefix or suffix.
    if args.len() == 1 {
        let a = &args[0];
        let (pre, post) = match t.children.first() {
            Some(ast::Stmt::EmitRaw(r)) => (
                r.raw.to_owned(),
                match t.children.get(2) {
                    Some(ast::Stmt::EmitRaw(r2)) => r2.raw.to_owned(),
                    _ => String::new(),
                },
            ),
            _ => (
                String::new(),
                match t.children.get(1) {
                    Some(ast::Stmt::EmitRaw(r2)) => r2.raw.to_owned(),
                    _ => String::new(),
                },
            ),
        };
        let mut parts = Vec::new();
        if !pre.is_empty() {
            parts.push(str_lit(&pre));
        }
        parts.push(format!("str({})", a.text));
        if !post.is_empty() {
            parts.push(str_lit(&post));
        }
        return Ok(parts.join(" + "));
    }
    let list = args.iter().map(|a| a.at(P_IF + 1)).collect::<Vec<_>>();
    Ok(format!("{} % ({})", str_lit(&fmt), list.join(", ")))
}

/// A file name built from one fact: `setup-{{ ansible_os_family }}.yml`.
pub struct FactName {
    pub prefix: String,
    pub suffix: String,
    /// The fact as Starlark (`host.facts.os.basic.family`).
    pub code: String,
    norm: Norm,
}

impl FactName {
    /// The fact's froyo value for the part of a file name (`Debian` → `debian`).
    pub fn literal(&self, part: &str) -> String {
        normalise(self.norm, part)
    }
}

/// `name` as prefix + one fact + suffix, if it is that.
pub fn fact_in_name(name: &str) -> Option<FactName> {
    let stmt = parse(
        name,
        "<name>",
        Default::default(),
        WhitespaceConfig::default(),
    )
    .ok()?;
    let ast::Stmt::Template(t) = stmt else {
        return None;
    };
    let scope = Scope::new();
    let tr = Translator { scope: &scope };
    let (mut prefix, mut suffix, mut fact) = (String::new(), String::new(), None);
    for child in &t.children {
        match child {
            ast::Stmt::EmitRaw(r) if fact.is_none() => prefix.push_str(r.raw),
            ast::Stmt::EmitRaw(r) => suffix.push_str(r.raw),
            ast::Stmt::EmitExpr(e) if fact.is_none() => fact = Some(tr.fact_of(&e.expr)?),
            _ => return None,
        }
    }
    let (code, norm) = fact?;
    Some(FactName {
        prefix,
        suffix,
        code,
        norm,
    })
}

impl Translator<'_> {
    fn split_condition(&self, e: &Expr, out: &mut Condition) -> R<()> {
        if let Expr::BinOp(b) = e
            && matches!(b.op, BinOpKind::ScAnd)
        {
            self.split_condition(&b.left, out)?;
            return self.split_condition(&b.right, out);
        }
        if let Some(handles) = self.changed_handles(e) {
            out.changed.extend(handles);
            return Ok(());
        }
        out.plan.push(self.expr(e)?.text);
        Ok(())
    }

    /// `r is changed`, `r.changed`, `r is changed or s is changed` → the handles.
    fn changed_handles(&self, e: &Expr) -> Option<Vec<String>> {
        match e {
            Expr::Test(t) if matches!(t.name, "changed" | "change") => match &t.expr {
                Expr::Var(v) => self.scope.registered(v.id).map(|h| vec![h.to_owned()]),
                _ => None,
            },
            Expr::GetAttr(a) if a.name == "changed" => match &a.expr {
                Expr::Var(v) => self.scope.registered(v.id).map(|h| vec![h.to_owned()]),
                _ => None,
            },
            Expr::BinOp(b) if matches!(b.op, BinOpKind::ScOr) => {
                let mut l = self.changed_handles(&b.left)?;
                l.extend(self.changed_handles(&b.right)?);
                Some(l)
            }
            _ => None,
        }
    }

    /// The fact an expression names (`ansible_os_family`, `ansible_facts.os_family`,
    /// `ansible_facts['os_family']`), if it is one.
    fn fact_of(&self, e: &Expr) -> Option<(String, Norm)> {
        match e {
            Expr::Var(v) if self.scope.local(v.id).is_none() => {
                v.id.strip_prefix("ansible_").and_then(fact)
            }
            Expr::GetAttr(a) => match &a.expr {
                Expr::Var(v) if v.id == "ansible_facts" => fact(a.name),
                _ => None,
            },
            Expr::GetItem(g) => match (&g.expr, &g.subscript_expr) {
                (Expr::Var(v), Expr::Const(c)) if v.id == "ansible_facts" => {
                    c.value.as_str().and_then(fact)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// `e` with fact literals normalised when `norm` applies (string or list of strings).
    fn expr_norm(&self, e: &Expr, norm: Norm) -> R<Code> {
        if norm != Norm::None {
            match e {
                Expr::Const(c) if c.value.as_str().is_some() => {
                    let s = c.value.as_str().unwrap_or_default();
                    return Ok(Code::atom(str_lit(&normalise(norm, s))));
                }
                Expr::List(l) if l.items.iter().all(|i| matches!(i, Expr::Const(_))) => {
                    let items = l
                        .items
                        .iter()
                        .map(|i| self.expr_norm(i, norm).map(|c| c.text))
                        .collect::<R<Vec<_>>>()?;
                    return Ok(Code::atom(format!("[{}]", items.join(", "))));
                }
                _ => {}
            }
        }
        self.expr(e)
    }

    /// Translates one expression.
    pub fn expr(&self, e: &Expr) -> R<Code> {
        if let Some((path, _)) = self.fact_of(e) {
            return Ok(Code::atom(path));
        }
        match e {
            Expr::Var(v) => self.var(v.id),
            Expr::Const(c) => Ok(Code::atom(const_lit(&c.value)?)),
            Expr::List(l) => {
                let items = l
                    .items
                    .iter()
                    .map(|i| self.expr(i).map(|c| c.at(P_IF)))
                    .collect::<R<Vec<_>>>()?;
                Ok(Code::atom(format!("[{}]", items.join(", "))))
            }
            Expr::Map(m) => {
                let mut items = Vec::new();
                for (k, val) in m.keys.iter().zip(&m.values) {
                    items.push(format!(
                        "{}: {}",
                        self.expr(k)?.at(P_IF),
                        self.expr(val)?.at(P_IF)
                    ));
                }
                Ok(Code::atom(format!("{{{}}}", items.join(", "))))
            }
            Expr::UnaryOp(u) => {
                // `x is not defined` reads best as `"x" not in v`.
                if let (UnaryOpKind::Not, Expr::Test(t)) = (&u.op, &u.expr)
                    && t.name == "defined"
                    && let Some(c) = self.not_defined_simple(&t.expr)?
                {
                    return Ok(c);
                }
                // `a not in b` is `not (a in b)` in the AST.
                if let (UnaryOpKind::Not, Expr::BinOp(b)) = (&u.op, &u.expr)
                    && matches!(b.op, BinOpKind::In)
                {
                    return self.cmp(&b.left, &b.right, "not in");
                }
                let inner = self.expr(&u.expr)?;
                Ok(match u.op {
                    UnaryOpKind::Not => Code::new(format!("not {}", inner.at(P_NOT)), P_NOT),
                    UnaryOpKind::Neg => Code::new(format!("-{}", inner.at(P_UNARY)), P_UNARY),
                })
            }
            Expr::BinOp(b) => self.binop(b),
            Expr::Compare(c) => self.compare(c),
            Expr::IfExpr(i) => {
                let test = self.expr(&i.test_expr)?;
                let yes = self.expr(&i.true_expr)?;
                let no = match &i.false_expr {
                    Some(f) => self.expr(f)?,
                    None => Code::atom("\"\""),
                };
                Ok(Code::new(
                    format!("{} if {} else {}", yes.at(P_OR), test.at(P_OR), no.at(P_IF)),
                    P_IF,
                ))
            }
            Expr::GetAttr(a) => {
                if let Expr::Var(v) = &a.expr
                    && let Some(_) = self.scope.registered(v.id)
                {
                    return unsupported(format!(
                        "reads `{}.{}` of a registered result, which froyo has no equivalent for (only `is changed` converts)",
                        v.id, a.name
                    ));
                }
                if let Expr::Var(v) = &a.expr
                    && v.id == "ansible_facts"
                {
                    return unsupported(format!(
                        "the fact `ansible_facts.{}` has no froyo equivalent",
                        a.name
                    ));
                }
                let base = self.expr(&a.expr)?;
                if a.name.chars().all(|c| c.is_ascii_digit()) {
                    return Ok(Code::atom(format!("{}[{}]", base.at(P_ATOM), a.name)));
                }
                Ok(Code::atom(format!(
                    "{}[{}]",
                    base.at(P_ATOM),
                    str_lit(a.name)
                )))
            }
            Expr::GetItem(g) => {
                if let Expr::Var(v) = &g.expr
                    && self.scope.registered(v.id).is_some()
                {
                    return unsupported(format!(
                        "reads a field of the registered result `{}`, which froyo has no equivalent for",
                        v.id
                    ));
                }
                let base = self.expr(&g.expr)?;
                let sub = self.expr(&g.subscript_expr)?;
                Ok(Code::atom(format!("{}[{}]", base.at(P_ATOM), sub.at(P_IF))))
            }
            Expr::Slice(s) => {
                let base = self.expr(&s.expr)?;
                let part = |x: &Option<Expr>| -> R<String> {
                    Ok(match x {
                        Some(e) => self.expr(e)?.at(P_IF),
                        None => String::new(),
                    })
                };
                let mut text =
                    format!("{}[{}:{}", base.at(P_ATOM), part(&s.start)?, part(&s.stop)?);
                if s.step.is_some() {
                    text.push(':');
                    text.push_str(&part(&s.step)?);
                }
                text.push(']');
                Ok(Code::atom(text))
            }
            Expr::Filter(f) => self.filter(f),
            Expr::Test(t) => self.test(t),
            Expr::Call(c) => self.call(c),
        }
    }

    fn var(&self, id: &str) -> R<Code> {
        if let Some(local) = self.scope.local(id) {
            return Ok(Code::atom(local));
        }
        if self.scope.registered(id).is_some() {
            return unsupported(format!(
                "uses the registered result `{id}` as a value, which froyo has no equivalent for"
            ));
        }
        match id {
            "omit" => Ok(Code::atom("None")),
            "inventory_hostname" | "inventory_hostname_short" => Ok(Code::atom("host.name")),
            "ansible_facts" | "hostvars" | "groups" | "group_names" | "play_hosts"
            | "ansible_play_hosts" | "ansible_play_batch" => unsupported(format!(
                "`{id}` (data about the inventory or all facts) has no froyo equivalent"
            )),
            x if x.starts_with("ansible_") && !x.starts_with("ansible_managed") => unsupported(
                format!("the fact or magic variable `{x}` has no froyo equivalent"),
            ),
            _ => Ok(Code::atom(format!("{}[{}]", self.scope.vars, str_lit(id)))),
        }
    }

    fn binop(&self, b: &ast::BinOp) -> R<Code> {
        let (op, prec) = match b.op {
            BinOpKind::ScAnd => ("and", P_AND),
            BinOpKind::ScOr => ("or", P_OR),
            BinOpKind::Add => ("+", P_ADD),
            BinOpKind::Sub => ("-", P_ADD),
            BinOpKind::Mul => ("*", P_MUL),
            BinOpKind::Div => ("/", P_MUL),
            BinOpKind::FloorDiv => ("//", P_MUL),
            BinOpKind::Rem => ("%", P_MUL),
            BinOpKind::Concat => {
                let l = self.stringish(&b.left)?;
                let r = self.stringish(&b.right)?;
                return Ok(Code::new(
                    format!("{} + {}", l.at(P_ADD), r.at(P_ADD + 1)),
                    P_ADD,
                ));
            }
            BinOpKind::Pow => return unsupported("`**` has no Starlark equivalent"),
            BinOpKind::Eq => ("==", P_CMP),
            BinOpKind::Ne => ("!=", P_CMP),
            BinOpKind::Lt => ("<", P_CMP),
            BinOpKind::Lte => ("<=", P_CMP),
            BinOpKind::Gt => (">", P_CMP),
            BinOpKind::Gte => (">=", P_CMP),
            BinOpKind::In => ("in", P_CMP),
        };
        if prec == P_CMP {
            return self.cmp(&b.left, &b.right, op);
        }
        let l = self.expr(&b.left)?;
        // `"%s-%s" % (a, b)`: Jinja's tuple is a list in the AST; Starlark's `%` needs a tuple.
        if let (BinOpKind::Rem, Expr::List(items)) = (b.op, &b.right) {
            let items = items
                .items
                .iter()
                .map(|i| self.expr(i).map(|c| c.at(P_IF)))
                .collect::<R<Vec<_>>>()?;
            let tuple = if items.len() == 1 {
                format!("({},)", items[0])
            } else {
                format!("({})", items.join(", "))
            };
            return Ok(Code::new(format!("{} % {tuple}", l.at(prec)), prec));
        }
        let r = self.expr(&b.right)?;
        // Left-associative: the right operand needs parentheses at equal precedence.
        Ok(Code::new(
            format!("{} {op} {}", l.at(prec), r.at(prec + 1)),
            prec,
        ))
    }

    /// `left OP right` for a comparison; a fact compared with literals gets the literals in
    /// froyo's spelling (`'RedHat'` → `"rhel"`).
    fn cmp(&self, left: &Expr, right: &Expr, op: &str) -> R<Code> {
        let lf = self.fact_of(left).map(|f| f.1).unwrap_or(Norm::None);
        let rf = self.fact_of(right).map(|f| f.1).unwrap_or(Norm::None);
        let l = self.expr_norm(left, rf)?;
        let r = self.expr_norm(right, lf)?;
        Ok(Code::new(
            format!("{} {op} {}", l.at(P_CMP + 1), r.at(P_CMP + 1)),
            P_CMP,
        ))
    }

    /// An operand of `~`: string literals as they are, anything else through `str()`.
    fn stringish(&self, e: &Expr) -> R<Code> {
        match e {
            Expr::Const(c) if c.value.as_str().is_some() => self.expr(e),
            Expr::BinOp(b) if matches!(b.op, BinOpKind::Concat) => self.expr(e),
            _ => Ok(Code::atom(format!("str({})", self.expr(e)?.text))),
        }
    }

    fn compare(&self, c: &ast::Compare) -> R<Code> {
        let mut parts = Vec::new();
        let mut left = &c.expr;
        for op in &c.ops {
            let sym = match op.op {
                CompareOpKind::Eq => "==",
                CompareOpKind::Ne => "!=",
                CompareOpKind::Lt => "<",
                CompareOpKind::Lte => "<=",
                CompareOpKind::Gt => ">",
                CompareOpKind::Gte => ">=",
                CompareOpKind::In => "in",
                CompareOpKind::NotIn => "not in",
            };
            let lf = self.fact_of(left).map(|f| f.1).unwrap_or(Norm::None);
            let rf = self.fact_of(&op.expr).map(|f| f.1).unwrap_or(Norm::None);
            let l = self.expr_norm(left, rf)?;
            let r = self.expr_norm(&op.expr, lf)?;
            parts.push(format!("{} {sym} {}", l.at(P_CMP + 1), r.at(P_CMP + 1)));
            left = &op.expr;
        }
        Ok(if parts.len() == 1 {
            Code::new(parts.remove(0), P_CMP)
        } else {
            Code::new(parts.join(" and "), P_AND)
        })
    }

    /// `x | default(d)`: a lookup with a fallback.
    fn default_of(&self, base: &Expr, fallback: Code, boolean: bool) -> R<Code> {
        let fb = if fallback.text == "None" {
            String::new()
        } else {
            format!(", {}", fallback.at(P_IF))
        };
        if boolean {
            let got = self.default_of(base, Code::atom("None"), false)?;
            return Ok(Code::new(
                format!("{} or {}", got.at(P_OR), fallback.at(P_AND)),
                P_OR,
            ));
        }
        // A fact is always defined.
        if let Some((path, _)) = self.fact_of(base) {
            return Ok(Code::atom(path));
        }
        match base {
            Expr::Var(v)
                if self.scope.local(v.id).is_none() && self.scope.registered(v.id).is_none() =>
            {
                if v.id.starts_with("ansible_") {
                    return unsupported(format!(
                        "the fact or magic variable `{}` has no froyo equivalent",
                        v.id
                    ));
                }
                Ok(Code::atom(format!(
                    "{}.get({}{fb})",
                    self.scope.vars,
                    str_lit(v.id)
                )))
            }
            Expr::GetAttr(a) if !a.name.chars().all(|c| c.is_ascii_digit()) => {
                let obj = self.expr(&a.expr)?;
                Ok(Code::atom(format!(
                    "{}.get({}{fb})",
                    obj.at(P_ATOM),
                    str_lit(a.name)
                )))
            }
            Expr::GetItem(g) => {
                let obj = self.expr(&g.expr)?;
                let key = self.expr(&g.subscript_expr)?;
                Ok(Code::atom(format!(
                    "{}.get({}{fb})",
                    obj.at(P_ATOM),
                    key.at(P_IF)
                )))
            }
            // A local (`item`) is always defined: `default` does nothing.
            Expr::Var(_) => self.expr(base),
            // `a | default(b) | default(c)`: a, else b, else c.
            Expr::Filter(inner)
                if matches!(inner.name, "default" | "d" | "ansible.builtin.default")
                    && inner.args.len() == 1 =>
            {
                let (Some(a), Some(CallArg::Pos(b))) = (&inner.expr, inner.args.first()) else {
                    return unsupported("`default()` with keyword arguments");
                };
                let fb2 = match b {
                    Expr::Var(_) | Expr::GetAttr(_) | Expr::GetItem(_) => {
                        self.default_of(b, fallback, false)?
                    }
                    other => self.expr(other)?,
                };
                self.default_of(a, fb2, false)
            }
            _ => {
                unsupported("`default()` on a computed value (only on variables and their fields)")
            }
        }
    }

    fn args(&self, args: &[CallArg]) -> R<Vec<Code>> {
        args.iter()
            .map(|a| match a {
                CallArg::Pos(e) => self.expr(e),
                CallArg::Kwarg(k, e) => Ok(Code::atom(format!("{k} = {}", self.expr(e)?.at(P_IF)))),
                _ => unsupported("`*args`/`**kwargs` in a call"),
            })
            .collect()
    }

    fn filter(&self, f: &ast::Filter) -> R<Code> {
        let name = f.name.strip_prefix("ansible.builtin.").unwrap_or(f.name);
        let Some(base) = &f.expr else {
            return unsupported(format!("the filter block `{name}`"));
        };
        let pos = |i: usize| -> Option<&Expr> {
            match f.args.get(i) {
                Some(CallArg::Pos(e)) => Some(e),
                _ => None,
            }
        };
        match name {
            "default" | "d" => {
                let fallback = match pos(0) {
                    Some(e) => self.expr(e)?,
                    None => Code::atom("\"\""),
                };
                let boolean = match pos(1) {
                    Some(Expr::Const(c)) => c.value.is_true(),
                    Some(_) => return unsupported("`default(x, y)` with a computed second argument"),
                    None => f.args.iter().any(|a| matches!(a, CallArg::Kwarg("boolean", Expr::Const(c)) if c.value.is_true())),
                };
                return self.default_of(base, fallback, boolean);
            }
            _ => {}
        }
        let x = self.expr(base)?;
        let args = self.args(&f.args)?;
        let none = |what: &str| -> R<()> {
            if args.is_empty() {
                Ok(())
            } else {
                unsupported(format!("`{what}` with arguments"))
            }
        };
        Ok(match name {
            "bool" => {
                none("bool")?;
                Code::atom(format!("ansible_bool({})", x.text))
            }
            "length" | "count" => {
                none(name)?;
                Code::atom(format!("len({})", x.text))
            }
            "int" => {
                none("int")?;
                Code::atom(format!("int({})", x.text))
            }
            "float" => {
                none("float")?;
                Code::atom(format!("float({})", x.text))
            }
            "string" => {
                none("string")?;
                Code::atom(format!("str({})", x.text))
            }
            "list" => {
                none("list")?;
                Code::atom(format!("list({})", x.text))
            }
            "lower" | "upper" => {
                none(name)?;
                Code::atom(format!("{}.{name}()", x.at(P_ATOM)))
            }
            "trim" => {
                none("trim")?;
                Code::atom(format!("{}.strip()", x.at(P_ATOM)))
            }
            "join" => {
                let sep = match args.first() {
                    Some(s) => s.at(P_ATOM),
                    None => "\"\"".into(),
                };
                Code::atom(format!("{sep}.join({})", x.text))
            }
            "first" => {
                none("first")?;
                Code::atom(format!("{}[0]", x.at(P_ATOM)))
            }
            "last" => {
                none("last")?;
                Code::atom(format!("{}[-1]", x.at(P_ATOM)))
            }
            "replace" => {
                if args.len() != 2 {
                    return unsupported("`replace` needs two arguments here");
                }
                Code::atom(format!(
                    "{}.replace({}, {})",
                    x.at(P_ATOM),
                    args[0].at(P_IF),
                    args[1].at(P_IF)
                ))
            }
            "ternary" => {
                if args.len() != 2 {
                    return unsupported("`ternary` with a third (none) argument");
                }
                Code::new(
                    format!(
                        "{} if {} else {}",
                        args[0].at(P_OR),
                        x.at(P_OR),
                        args[1].at(P_IF)
                    ),
                    P_IF,
                )
            }
            "dict2items" => {
                none("dict2items")?;
                Code::atom(format!(
                    "[{{\"key\": k, \"value\": val}} for k, val in {}.items()]",
                    x.at(P_ATOM)
                ))
            }
            "items" => {
                none("items")?;
                Code::atom(format!("{}.items()", x.at(P_ATOM)))
            }
            "basename" => {
                none("basename")?;
                Code::atom(format!("{}.rsplit(\"/\", 1)[-1]", x.at(P_ATOM)))
            }
            other => {
                return unsupported(format!("the filter `{other}` has no Starlark translation"));
            }
        })
    }

    fn test(&self, t: &ast::Test) -> R<Code> {
        let name = t.name.strip_prefix("ansible.builtin.").unwrap_or(t.name);
        match name {
            "defined" => return self.defined(&t.expr),
            "undefined" => {
                let d = self.defined(&t.expr)?;
                return Ok(Code::new(format!("not {}", d.at(P_NOT)), P_NOT));
            }
            "changed" | "change" | "succeeded" | "success" | "failed" | "failure" | "skipped"
            | "skip" => {
                return unsupported(format!(
                    "the test `is {name}` on a task result (only a plain `when: r is changed` converts)"
                ));
            }
            _ => {}
        }
        let x = self.expr(&t.expr)?;
        let args = self.args(&t.args)?;
        Ok(match name {
            "none" => Code::new(format!("{} == None", x.at(P_CMP + 1)), P_CMP),
            "string" => Code::new(format!("type({}) == \"string\"", x.text), P_CMP),
            "number" => Code::new(format!("type({}) in (\"int\", \"float\")", x.text), P_CMP),
            "mapping" => Code::new(format!("type({}) == \"dict\"", x.text), P_CMP),
            "sequence" | "iterable" => Code::new(
                format!("type({}) in (\"list\", \"tuple\", \"string\")", x.text),
                P_CMP,
            ),
            "boolean" => Code::new(format!("type({}) == \"bool\"", x.text), P_CMP),
            "true" => Code::new(format!("{} == True", x.at(P_CMP + 1)), P_CMP),
            "false" => Code::new(format!("{} == False", x.at(P_CMP + 1)), P_CMP),
            "eq" | "equalto" | "sameas" if args.len() == 1 => Code::new(
                format!("{} == {}", x.at(P_CMP + 1), args[0].at(P_CMP + 1)),
                P_CMP,
            ),
            "in" if args.len() == 1 => Code::new(
                format!("{} in {}", x.at(P_CMP + 1), args[0].at(P_CMP + 1)),
                P_CMP,
            ),
            "version" | "version_compare" => {
                if args.is_empty() || args.len() > 2 {
                    return unsupported("`is version` needs a version and an operator");
                }
                let op = args.get(1).map_or("\"==\"".to_owned(), |a| a.text.clone());
                Code::atom(format!(
                    "version_compare({}, {}, {op})",
                    x.text, args[0].text
                ))
            }
            other => {
                return unsupported(format!("the test `is {other}` has no Starlark translation"));
            }
        })
    }

    /// `x is not defined` as one `not in`, when `x` is a variable or a field of a local.
    fn not_defined_simple(&self, e: &Expr) -> R<Option<Code>> {
        Ok(match e {
            Expr::Var(v)
                if self.scope.local(v.id).is_none()
                    && self.scope.registered(v.id).is_none()
                    && !v.id.starts_with("ansible_") =>
            {
                Some(Code::new(
                    format!("{} not in {}", str_lit(v.id), self.scope.vars),
                    P_CMP,
                ))
            }
            Expr::GetAttr(a) if self.defined(&a.expr)?.text == "True" => {
                let obj = self.expr(&a.expr)?;
                Some(Code::new(
                    format!("{} not in {}", str_lit(a.name), obj.at(P_CMP + 1)),
                    P_CMP,
                ))
            }
            _ => None,
        })
    }

    /// `x is defined`, on variables and their fields.
    fn defined(&self, e: &Expr) -> R<Code> {
        match e {
            Expr::Var(v) => {
                if self.scope.local(v.id).is_some() || self.scope.registered(v.id).is_some() {
                    return Ok(Code::atom("True"));
                }
                if v.id.starts_with("ansible_") {
                    return unsupported(format!(
                        "`{} is defined` on a fact or magic variable",
                        v.id
                    ));
                }
                Ok(Code::new(
                    format!("{} in {}", str_lit(v.id), self.scope.vars),
                    P_CMP,
                ))
            }
            Expr::GetAttr(a) => {
                if let Expr::Var(v) = &a.expr
                    && self.scope.registered(v.id).is_some()
                {
                    return unsupported(format!(
                        "`{}.{} is defined` on a registered result",
                        v.id, a.name
                    ));
                }
                let outer = self.defined(&a.expr)?;
                let obj = self.expr(&a.expr)?;
                let here = format!("{} in {}", str_lit(a.name), obj.at(P_CMP + 1));
                Ok(if outer.text == "True" {
                    Code::new(here, P_CMP)
                } else {
                    Code::new(format!("{} and {here}", outer.at(P_AND)), P_AND)
                })
            }
            Expr::GetItem(g) => {
                let outer = self.defined(&g.expr)?;
                let obj = self.expr(&g.expr)?;
                let key = self.expr(&g.subscript_expr)?;
                let here = format!("{} in {}", key.at(P_CMP + 1), obj.at(P_CMP + 1));
                Ok(if outer.text == "True" {
                    Code::new(here, P_CMP)
                } else {
                    Code::new(format!("{} and {here}", outer.at(P_AND)), P_AND)
                })
            }
            _ => unsupported("`is defined` on a computed value"),
        }
    }

    fn call(&self, c: &ast::Call) -> R<Code> {
        match &c.expr {
            Expr::GetAttr(a) => {
                const METHODS: &[&str] = &[
                    "split",
                    "rsplit",
                    "startswith",
                    "endswith",
                    "strip",
                    "lstrip",
                    "rstrip",
                    "lower",
                    "upper",
                    "replace",
                    "items",
                    "keys",
                    "values",
                    "get",
                    "join",
                    "count",
                    "find",
                    "index",
                    "splitlines",
                    "title",
                    "capitalize",
                ];
                if !METHODS.contains(&a.name) {
                    return unsupported(format!(
                        "the method `.{}()` has no Starlark translation",
                        a.name
                    ));
                }
                let obj = self.expr(&a.expr)?;
                let args = self.args(&c.args)?;
                Ok(Code::atom(format!(
                    "{}.{}({})",
                    obj.at(P_ATOM),
                    a.name,
                    args.iter()
                        .map(|a| a.at(P_IF))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Expr::Var(v) if v.id == "range" => {
                let args = self.args(&c.args)?;
                Ok(Code::atom(format!(
                    "range({})",
                    args.iter()
                        .map(|a| a.at(P_IF))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Expr::Var(v) if matches!(v.id, "lookup" | "query" | "q") => {
                let what = match c.args.first() {
                    Some(CallArg::Pos(Expr::Const(k))) => {
                        k.value.as_str().unwrap_or("?").to_owned()
                    }
                    _ => "?".into(),
                };
                unsupported(format!(
                    "`{}('{what}', …)` reads data on the controller at run time",
                    v.id
                ))
            }
            Expr::Var(v) => unsupported(format!(
                "the function `{}()` has no Starlark translation",
                v.id
            )),
            _ => unsupported("a call of a computed value"),
        }
    }
}

fn const_lit(v: &minijinja::Value) -> R<String> {
    use minijinja::value::ValueKind;
    Ok(match v.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => {
            let s = v.to_string();
            if let Ok(f) = s.parse::<f64>()
                && s.contains('.')
            {
                crate::yaml::python_float(f)
            } else {
                s
            }
        }
        ValueKind::String => str_lit(v.as_str().unwrap_or_default()),
        _ => return unsupported(format!("the constant `{v}`")),
    })
}

#[cfg(test)]
mod tests;
