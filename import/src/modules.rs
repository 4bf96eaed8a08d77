//! Ansible modules → froyo's stdlib calls, one mapper per module family. A mapper reads
//! the task's arguments, converts each value (typed as the module types it: booleans the
//! way Ansible's `boolean()` reads them, `mode: 0644` as the int 420), and returns the
//! call, or [`Unsupported`] naming the argument or value it cannot carry over. Arguments
//! whose loss does not change the result on the target are dropped with a note in the
//! report; any other argument it does not know makes the whole task a placeholder.

use crate::code::{Call, lit};
use crate::expr::{Scope, Unsupported, is_template, str_lit, template_value};
use crate::yaml::{Node, Value};

type R<T> = Result<T, Unsupported>;

fn unsupported<T>(why: impl Into<String>) -> R<T> {
    Err(Unsupported(why.into()))
}

/// The arguments of one task's module, from a mapping or `k=v` text.
pub struct Args {
    pub items: Vec<(String, Node)>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Args {
    pub fn new(items: Vec<(String, Node)>) -> Self {
        Args {
            items,
            used: Default::default(),
        }
    }

    /// The argument `key` (the first of several aliases that is given).
    pub fn get(&self, keys: &[&str]) -> Option<&Node> {
        for k in keys {
            self.used.borrow_mut().push((*k).to_owned());
            if let Some((_, n)) = self.items.iter().rev().find(|(ik, _)| ik == k) {
                return Some(n);
            }
        }
        None
    }

    fn has(&self, key: &str) -> bool {
        self.items.iter().any(|(k, _)| k == key)
    }

    /// Arguments no mapper asked for.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.items
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !used.contains(k))
            .collect()
    }

    /// Marks arguments as dropped on purpose (each gets a note from the caller).
    fn take(&self, key: &str) -> Option<&Node> {
        self.get(&[key])
    }
}

/// What a task becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A resource through a stdlib wrapper (its handle can be registered and notified).
    Resource(Call),
    /// Plain statements (`v["x"] = …`, `fail(…)`, a comment).
    Stmts(Vec<String>),
}

/// Where a module's arguments are converted.
pub struct Ctx<'a> {
    pub scope: &'a Scope,
    /// The role's directory (templates are read from it to see which facts they use).
    pub dir: Option<std::path::PathBuf>,
    /// Task name, for labels.
    pub name: Option<String>,
    pub in_loop: bool,
    pub notes: std::cell::RefCell<Vec<String>>,
    /// Role-relative files a `copy`/`template` reads (`files/x`, `templates/y.j2`), for the
    /// converter to check.
    pub assets: std::cell::RefCell<Vec<String>>,
}

impl<'a> Ctx<'a> {
    pub fn new(scope: &'a Scope) -> Self {
        Ctx {
            scope,
            dir: None,
            name: None,
            in_loop: false,
            notes: Default::default(),
            assets: Default::default(),
        }
    }

    fn note(&self, n: impl Into<String>) {
        self.notes.borrow_mut().push(n.into());
    }

    /// A value as Starlark: literals as they are, strings through the template translator.
    pub fn val(&self, n: &Node) -> R<String> {
        Ok(match &n.value {
            Value::Null => "None".into(),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => crate::yaml::python_float(*f),
            Value::Str(s) => template_value(s, self.scope)?,
            Value::Seq(items) => {
                let items = items.iter().map(|i| self.val(i)).collect::<R<Vec<_>>>()?;
                format!("[{}]", items.join(", "))
            }
            Value::Map(pairs) => {
                let mut items = Vec::new();
                for (k, v) in pairs {
                    let key = match k.scalar_text() {
                        Some(t) => str_lit(&t),
                        None => return unsupported("a mapping with a non-scalar key"),
                    };
                    items.push(format!("{key}: {}", self.val(v)?));
                }
                format!("{{{}}}", items.join(", "))
            }
            Value::Tagged(t, inner) if t == "unsafe" => str_lit(inner.as_str().unwrap_or_default()),
            Value::Tagged(t, _) if t == "vault" => {
                return unsupported(
                    "an Ansible Vault value: store it with `froyo secret set` and use secret()",
                );
            }
            Value::Tagged(t, _) => return unsupported(format!("a value tagged `!{t}`")),
        })
    }

    /// A string argument (numbers given where a string is meant become their text).
    fn str_val(&self, n: &Node) -> R<String> {
        match &n.value {
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                Ok(lit(&n.scalar_text().unwrap_or_default()))
            }
            _ => self.val(n),
        }
    }

    /// A boolean argument as Ansible's module argument typing reads it.
    fn bool_val(&self, n: &Node) -> R<String> {
        match &n.value {
            Value::Bool(b) => Ok(if *b { "True" } else { "False" }.into()),
            Value::Int(0) => Ok("False".into()),
            Value::Int(1) => Ok("True".into()),
            Value::Str(s) if !is_template(s) => match s.to_lowercase().as_str() {
                "y" | "yes" | "on" | "1" | "true" | "t" => Ok("True".into()),
                "n" | "no" | "off" | "0" | "false" | "f" => Ok("False".into()),
                _ => unsupported(format!("`{s}` is not a boolean")),
            },
            Value::Str(s) => {
                let e = template_value(s, self.scope)?;
                Ok(format!("ansible_bool({e})"))
            }
            _ => unsupported("a boolean argument that is not a boolean"),
        }
    }

    /// A file mode: YAML's 0644 is the int 420, which is the mode 0644.
    fn mode_val(&self, n: &Node) -> R<String> {
        match &n.value {
            Value::Int(i) if *i >= 0 => {
                if (0o1000..).contains(i) || (*i < 0o100 && *i != 0) {
                    self.note(format!(
                        "mode {i} (decimal) is the mode {i:04o}, as Ansible reads it; quote modes in YAML"
                    ));
                }
                Ok(lit(&format!("{i:04o}")))
            }
            Value::Str(s) if !is_template(s) => {
                if s.chars().all(|c| c.is_digit(8)) && (3..=4).contains(&s.len()) {
                    Ok(lit(s))
                } else {
                    unsupported(format!("the symbolic mode `{s}` (froyo takes octal modes)"))
                }
            }
            Value::Str(s) => Ok(format!("file_mode({})", template_value(s, self.scope)?)),
            _ => unsupported("a mode that is neither a number nor a string"),
        }
    }

    fn label(&self, fallback: &str) -> String {
        lit(self.name.as_deref().unwrap_or(fallback))
    }
}

/// Sets `kw` from argument `key` (first of its aliases) converted with `f`.
fn opt(
    call: &mut Call,
    args: &Args,
    keys: &[&str],
    kw: &str,
    f: impl Fn(&Node) -> R<String>,
) -> R<()> {
    if let Some(n) = args.get(keys)
        && !n.is_null()
    {
        let v = f(n)?;
        if v != "None" {
            call.kw(kw, v);
        }
    }
    Ok(())
}

/// A required argument.
fn req<'n>(args: &'n Args, keys: &[&str], module: &str) -> R<&'n Node> {
    match args.get(keys) {
        Some(n) if !n.is_null() => Ok(n),
        _ => unsupported(format!("`{module}` without `{}`", keys[0])),
    }
}

/// Whether a literal argument equals one of `values`.
fn literal_is(n: Option<&Node>, values: &[&str]) -> bool {
    n.and_then(|n| n.scalar_text())
        .is_some_and(|s| values.contains(&s.as_str()))
}

/// Drops `keys` with a note each (their loss does not change the target's state).
fn drop_noted(ctx: &Ctx, args: &Args, module: &str, keys: &[(&str, &str)]) {
    for (k, why) in keys {
        if args.take(k).is_some() {
            ctx.note(format!("`{module}`: `{k}` dropped: {why}"));
        }
    }
}

/// The froyo call for `module` (short name) with `args`.
pub fn map(module: &str, args: &Args, ctx: &Ctx) -> R<Mapped> {
    let mapped = match module {
        "package" | "apt" | "yum" | "dnf" | "apk" | "zypper" => package(module, args, ctx)?,
        "file" => file(args, ctx)?,
        "copy" => copy(args, ctx)?,
        "lineinfile" => lineinfile(args, ctx)?,
        "blockinfile" => blockinfile(args, ctx)?,
        "template" => template(args, ctx)?,
        "user" => user(args, ctx)?,
        "group" => group(args, ctx)?,
        "authorized_key" => authorized_key(args, ctx)?,
        "service" | "systemd" | "systemd_service" | "sysvinit" => service(module, args, ctx)?,
        "command" | "shell" => command(module, args, ctx)?,
        "get_url" => get_url(args, ctx)?,
        "unarchive" => unarchive(args, ctx)?,
        "debug" => {
            let what = match (args.get(&["msg"]), args.get(&["var"])) {
                (Some(m), _) => m.scalar_text().unwrap_or_else(|| "…".into()),
                (None, Some(v)) => v.scalar_text().unwrap_or_default(),
                _ => String::new(),
            };
            args.get(&["verbosity"]);
            ctx.note("`debug` dropped (it prints only)".to_owned());
            Mapped::Stmts(vec![format!("# debug: {}", what.replace('\n', " "))])
        }
        "set_fact" => {
            let mut out = Vec::new();
            for (k, v) in &args.items {
                if k == "cacheable" {
                    args.get(&["cacheable"]);
                    ctx.note(
                        "`set_fact`: `cacheable` dropped: froyo keeps no fact cache across runs",
                    );
                    continue;
                }
                args.get(&[k.as_str()]);
                out.push(format!(
                    "{}[{}] = {}",
                    ctx.scope.vars,
                    str_lit(k),
                    ctx.val(v)?
                ));
            }
            Mapped::Stmts(out)
        }
        "fail" => {
            let msg = match args.get(&["msg"]) {
                Some(m) => ctx.str_val(m)?,
                None => lit("Failed as requested from task"),
            };
            Mapped::Stmts(vec![format!("fail({msg})")])
        }
        "assert" => {
            let that = req(args, &["that"], "assert")?;
            let items: Vec<String> = match &that.value {
                Value::Seq(s) => s
                    .iter()
                    .map(|n| n.scalar_text().unwrap_or_default())
                    .collect(),
                _ => vec![that.scalar_text().unwrap_or_default()],
            };
            let refs: Vec<&str> = items.iter().map(String::as_str).collect();
            let cond = crate::expr::condition(&refs, ctx.scope)?;
            if !cond.changed.is_empty() {
                return unsupported("an `assert` on a task result");
            }
            let msg = match args.get(&["fail_msg", "msg"]) {
                Some(m) => ctx.str_val(m)?,
                None => lit("Assertion failed"),
            };
            args.get(&["success_msg", "quiet"]);
            let test = cond.plan_expr().unwrap_or_else(|| "True".into());
            Mapped::Stmts(vec![format!("if not ({test}):\n    fail({msg})")])
        }
        "meta" => {
            let what = args
                .get(&["_raw_params"])
                .and_then(|n| n.scalar_text())
                .unwrap_or_default();
            match what.as_str() {
                "noop" => Mapped::Stmts(vec!["# meta: noop".into()]),
                "flush_handlers" => {
                    return unsupported(
                        "`meta: flush_handlers`: froyo runs handlers once, after the play; order later tasks after the handler with require() if they need it",
                    );
                }
                other => return unsupported(format!("`meta: {other}`")),
            }
        }
        other => return unsupported(format!("the module `{other}` has no froyo type yet")),
    };
    let unused = args.unused();
    if !unused.is_empty() {
        return unsupported(format!(
            "`{module}` argument{} {} not converted",
            if unused.len() > 1 { "s" } else { "" },
            unused
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(mapped)
}

fn package(module: &str, args: &Args, ctx: &Ctx) -> R<Mapped> {
    let state = args.get(&["state"]);
    let state_kw = match state.and_then(|n| n.scalar_text()).as_deref() {
        None | Some("present" | "installed") => None,
        Some("latest") => Some("latest"),
        Some("absent" | "removed") => Some("absent"),
        Some(other) => return unsupported(format!("`{module}` state `{other}`")),
    };
    drop_noted(
        ctx,
        args,
        module,
        &[
            (
                "cache_valid_time",
                "froyo refreshes the package index when it needs to",
            ),
            (
                "lock_timeout",
                "froyo runs one package operation at a time per host",
            ),
        ],
    );
    let update = match args.get(&["update_cache", "update-cache"]) {
        Some(n) => Some(ctx.bool_val(n)?),
        None => None,
    };
    let Some(name) = args
        .get(&["name", "pkg", "package"])
        .filter(|n| !n.is_null())
    else {
        if update.is_some() {
            ctx.note(format!(
                "`{module}: update_cache` alone dropped: froyo's package resources refresh the index when they need to"
            ));
            return Ok(Mapped::Stmts(vec![
                "# the package index is refreshed by the package resources that need it".into(),
            ]));
        }
        return unsupported(format!("`{module}` without `name`"));
    };
    let mut call = match &name.value {
        Value::Seq(items) if items.len() == 1 => Call::new("package").arg(ctx.str_val(&items[0])?),
        Value::Seq(items) => {
            let names = items
                .iter()
                .map(|n| ctx.str_val(n))
                .collect::<R<Vec<_>>>()?;
            let label = items
                .iter()
                .map(|n| n.scalar_text().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ");
            let label = if names.iter().any(|n| !n.starts_with('"')) {
                ctx.label(&label)
            } else {
                lit(&label)
            };
            let mut c = Call::new("packages").arg(label);
            c.kw("names", format!("[{}]", names.join(", ")));
            c
        }
        Value::Str(s) if !is_template(s) && s.contains(',') => {
            let names: Vec<String> = s.split(',').map(|p| lit(p.trim())).collect();
            let mut c = Call::new("packages").arg(lit(&s.replace(',', " ")));
            c.kw("names", format!("[{}]", names.join(", ")));
            c
        }
        Value::Str(s) if is_template(s) && !ctx.in_loop => {
            // `name: "{{ pkgs }}"` is a list or one name: comma_list() reads both.
            let mut c = Call::new("packages").arg(ctx.label(s));
            c.kw("names", format!("comma_list({})", ctx.val(name)?));
            c
        }
        _ => Call::new("package").arg(ctx.str_val(name)?),
    };
    if let Some(s) = state_kw {
        call.kw("state", lit(s));
    }
    if let Some(u) = update {
        call.kw("update_cache", u);
    }
    if module != "package" && module != "apt" {
        // froyo picks the manager from the target, as `package` does.
        call.kw("manager", lit(module));
    }
    if module == "apt" {
        call.kw("manager", lit("apt"));
    }
    Ok(Mapped::Resource(call))
}

fn file(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let path = ctx.str_val(req(args, &["path", "dest", "name"], "file")?)?;
    let state = args.get(&["state"]).and_then(|n| n.scalar_text());
    let mut call = match state.as_deref() {
        Some("directory") => {
            let mut c = Call::new("directory").arg(path);
            opt(&mut c, args, &["recurse"], "recurse", |n| ctx.bool_val(n))?;
            c
        }
        Some("link") => {
            let mut c = Call::new("symlink").arg(path);
            c.kw(
                "target",
                ctx.str_val(req(args, &["src"], "file state=link")?)?,
            );
            drop_noted(
                ctx,
                args,
                "file",
                &[("force", "froyo replaces a wrong link")],
            );
            c
        }
        Some("absent") => {
            ctx.note("`file: state=absent` became a file removal; for a directory use directory(state = \"absent\", recurse = True)");
            let mut c = Call::new("file").arg(path);
            c.kw("state", lit("absent"));
            return Ok(Mapped::Resource(c));
        }
        Some("touch") => {
            ctx.note("`file: state=touch` makes sure the file exists; its times are not updated");
            Call::new("file").arg(path)
        }
        None | Some("file") => Call::new("file").arg(path),
        Some(other) => return unsupported(format!("`file` state `{other}`")),
    };
    opt(&mut call, args, &["owner"], "owner", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["group"], "group", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["mode"], "mode", |n| ctx.mode_val(n))?;
    drop_noted(
        ctx,
        args,
        "file",
        &[("follow", "froyo follows links as Ansible's default does")],
    );
    Ok(Mapped::Resource(call))
}

fn common_file_args(call: &mut Call, args: &Args, ctx: &Ctx, module: &str) -> R<()> {
    opt(call, args, &["owner"], "owner", |n| ctx.str_val(n))?;
    opt(call, args, &["group"], "group", |n| ctx.str_val(n))?;
    opt(call, args, &["mode"], "mode", |n| ctx.mode_val(n))?;
    opt(call, args, &["backup"], "backup", |n| ctx.bool_val(n))?;
    if let Some(v) = args.get(&["validate"]) {
        call.kw("validate", ctx.str_val(v)?);
    }
    if let Some(f) = args.get(&["force"])
        && !literal_is(Some(f), &["True", "yes", "true"])
    {
        return unsupported(format!("`{module}: force: no` (write only when missing)"));
    }
    Ok(())
}

fn lineinfile(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let path_node = req(args, &["path", "dest", "destfile", "name"], "lineinfile")?;
    let path = ctx.str_val(path_node)?;
    if args.get(&["search_string"]).is_some() {
        return unsupported("`lineinfile: search_string`");
    }
    let regexp = match args.get(&["regexp", "regex"]) {
        Some(r) => Some(ctx.str_val(r)?),
        None => None,
    };
    let line = match args.get(&["line", "value"]) {
        Some(l) => Some(ctx.str_val(l)?),
        None => None,
    };
    // A label unique per file and line: the path and what identifies the line.
    let what = regexp
        .clone()
        .or_else(|| line.clone())
        .unwrap_or_else(|| lit(""));
    let plain = |code: &str| serde_json::from_str::<String>(code).ok();
    let label = if let (Some(p), Some(w)) = (plain(&path), plain(&what)) {
        lit(&format!("{p}: {w}"))
    } else {
        format!("\"%s: %s\" % ({path}, {what})")
    };
    let mut call = Call::new("line").arg(label);
    call.kw("path", path);
    if let Some(l) = line {
        call.kw("line", l);
    }
    if let Some(r) = regexp {
        call.kw("regexp", r);
    }
    match args
        .get(&["state"])
        .and_then(|n| n.scalar_text())
        .as_deref()
    {
        None | Some("present") => {}
        Some("absent") => call.kw("state", lit("absent")),
        Some(other) => return unsupported(format!("`lineinfile` state `{other}`")),
    }
    opt(&mut call, args, &["insertafter"], "insertafter", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["insertbefore"], "insertbefore", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["create"], "create", |n| ctx.bool_val(n))?;
    opt(&mut call, args, &["backrefs"], "backrefs", |n| {
        ctx.bool_val(n)
    })?;
    opt(&mut call, args, &["firstmatch"], "firstmatch", |n| {
        ctx.bool_val(n)
    })?;
    opt(&mut call, args, &["validate"], "validate", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["owner"], "owner", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["group"], "group", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["mode"], "mode", |n| ctx.mode_val(n))?;
    if let Some(b) = args.get(&["backup"])
        && !literal_is(Some(b), &["False", "no", "false"])
    {
        return unsupported("`lineinfile: backup`");
    }
    Ok(Mapped::Resource(call))
}

fn blockinfile(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let path_node = req(args, &["path", "dest", "destfile", "name"], "blockinfile")?;
    let path = ctx.str_val(path_node)?;
    let marker = match args.get(&["marker"]) {
        Some(m) => Some(ctx.str_val(m)?),
        None => None,
    };
    // A label unique per file and marker.
    let label = match (serde_json::from_str::<String>(&path).ok(), &marker) {
        (Some(p), None) => lit(&format!("{p}: managed block")),
        (_, Some(m)) => format!("\"%s: %s\" % ({path}, {m})"),
        (None, None) => format!("{path} + \": managed block\""),
    };
    let mut call = Call::new("block").arg(label);
    call.kw("path", path);
    opt(&mut call, args, &["block", "content"], "block", |n| {
        ctx.str_val(n)
    })?;
    if let Some(m) = marker {
        call.kw("marker", m);
    }
    opt(&mut call, args, &["marker_begin"], "marker_begin", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["marker_end"], "marker_end", |n| {
        ctx.str_val(n)
    })?;
    match args
        .get(&["state"])
        .and_then(|n| n.scalar_text())
        .as_deref()
    {
        None | Some("present") => {}
        Some("absent") => call.kw("state", lit("absent")),
        Some(other) => return unsupported(format!("`blockinfile` state `{other}`")),
    }
    opt(&mut call, args, &["insertafter"], "insertafter", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["insertbefore"], "insertbefore", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["create"], "create", |n| ctx.bool_val(n))?;
    opt(
        &mut call,
        args,
        &["append_newline"],
        "append_newline",
        |n| ctx.bool_val(n),
    )?;
    opt(
        &mut call,
        args,
        &["prepend_newline"],
        "prepend_newline",
        |n| ctx.bool_val(n),
    )?;
    opt(&mut call, args, &["validate"], "validate", |n| {
        ctx.str_val(n)
    })?;
    opt(&mut call, args, &["owner"], "owner", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["group"], "group", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["mode"], "mode", |n| ctx.mode_val(n))?;
    if let Some(b) = args.get(&["backup"])
        && !literal_is(Some(b), &["False", "no", "false"])
    {
        return unsupported("`blockinfile: backup`");
    }
    Ok(Mapped::Resource(call))
}

fn copy(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let dest = ctx.str_val(req(args, &["dest"], "copy")?)?;
    if literal_is(args.get(&["remote_src"]), &["True", "yes", "true"]) {
        return unsupported("`copy: remote_src` (a copy on the target)");
    }
    let mut call = Call::new("file").arg(dest);
    match (args.get(&["content"]), args.get(&["src"])) {
        (Some(c), _) => call.kw("content", ctx.str_val(c)?),
        (None, Some(src)) => {
            let Some(s) = src.as_str().filter(|s| !is_template(s)) else {
                return unsupported("`copy: src` built from variables");
            };
            if s.ends_with('/') || s.starts_with('/') {
                return unsupported("`copy: src` of a directory or an absolute controller path");
            }
            let rel = format!("files/{s}");
            ctx.assets.borrow_mut().push(rel.clone());
            call.kw("content", format!("asset({})", lit(&rel)));
        }
        (None, None) => return unsupported("`copy` without `src` or `content`"),
    }
    common_file_args(&mut call, args, ctx, "copy")?;
    Ok(Mapped::Resource(call))
}

fn template(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let dest = ctx.str_val(req(args, &["dest"], "template")?)?;
    let src = req(args, &["src"], "template")?;
    let path = match src.as_str() {
        Some(s) if !is_template(s) => {
            if s.starts_with('/') {
                return unsupported("`template: src` with an absolute controller path");
            }
            let rel = format!("templates/{s}");
            ctx.assets.borrow_mut().push(rel.clone());
            lit(&rel)
        }
        Some(s) => format!("\"templates/\" + {}", template_value(s, ctx.scope)?),
        None => return unsupported("`template: src` that is not a string"),
    };
    let source = src
        .as_str()
        .filter(|s| !is_template(s))
        .and_then(|s| ctx.dir.as_ref().map(|d| d.join("templates").join(s)))
        .and_then(|p| std::fs::read_to_string(p).ok());
    let vars = template_vars(ctx, source.as_deref());
    let mut call = Call::new("file").arg(dest);
    call.kw("content", format!("template({path}, vars = {vars})"));
    common_file_args(&mut call, args, ctx, "template")?;
    Ok(Mapped::Resource(call))
}

/// The variables a template sees: the role's, the loop's, `ansible_managed`, and the
/// facts, when the template reads any (they make the template need a live target).
fn template_vars(ctx: &Ctx, source: Option<&str>) -> String {
    let mut extra: Vec<String> = ctx
        .scope
        .locals
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    extra.push("ansible_managed = ANSIBLE_MANAGED".into());
    let uses_facts = source.is_none_or(|s| s.contains("ansible_facts"));
    let legacy = [
        "os_family",
        "distribution",
        "distribution_version",
        "distribution_major_version",
        "distribution_release",
        "kernel",
        "architecture",
        "hostname",
        "nodename",
        "service_mgr",
        "processor_vcpus",
    ];
    let legacy_used: Vec<&str> = legacy
        .iter()
        .copied()
        .filter(|f| source.is_some_and(|s| s.contains(&format!("ansible_{f}"))))
        .collect();
    // A template chosen at run time may read facts too.
    if uses_facts {
        extra.push("ansible_facts = ansible_facts(host)".into());
    }
    for f in legacy_used {
        extra.push(format!("ansible_{f} = ansible_facts(host)[{}]", str_lit(f)));
    }
    format!("dict({}, {})", ctx.scope.vars, extra.join(", "))
}

fn user(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let name = ctx.str_val(req(args, &["name", "user"], "user")?)?;
    let mut call = Call::new("user").arg(name);
    let state = args.get(&["state"]).and_then(|n| n.scalar_text());
    match state.as_deref() {
        None | Some("present") => {}
        Some("absent") => {
            call.kw("state", lit("absent"));
            drop_noted(
                ctx,
                args,
                "user",
                &[
                    ("remove", "froyo keeps the home directory of a removed user"),
                    (
                        "force",
                        "froyo removes the account the way userdel does by default",
                    ),
                ],
            );
        }
        Some(other) => return unsupported(format!("`user` state `{other}`")),
    }
    opt(&mut call, args, &["uid"], "uid", |n| ctx.val(n))?;
    opt(&mut call, args, &["group"], "group", |n| ctx.str_val(n))?;
    if let Some(g) = args.get(&["groups"]) {
        let v = match &g.value {
            Value::Str(s) if !is_template(s) => {
                let items: Vec<String> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(lit)
                    .collect();
                format!("[{}]", items.join(", "))
            }
            Value::Str(_) => format!("comma_list({})", ctx.val(g)?),
            _ => ctx.val(g)?,
        };
        call.kw("groups", v);
        match args.get(&["append"]) {
            Some(a) if literal_is(Some(a), &["True", "yes", "true"]) => {
                return unsupported("`user: append: yes` (froyo sets exactly the groups given)");
            }
            Some(a) if a.scalar_text().is_some_and(|s| is_template(&s)) => ctx.note(
                "`user: append` dropped: froyo sets exactly the groups given (append: yes would keep others)",
            ),
            _ => {}
        }
    }
    opt(&mut call, args, &["shell"], "shell", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["home"], "home", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["system"], "system", |n| ctx.bool_val(n))?;
    opt(&mut call, args, &["password"], "password_hash", |n| {
        ctx.str_val(n)
    })?;
    drop_noted(
        ctx,
        args,
        "user",
        &[
            (
                "comment",
                "froyo's user type does not manage the GECOS comment",
            ),
            (
                "update_password",
                "froyo sets the password hash it is given",
            ),
        ],
    );
    if let Some(c) = args.get(&["createhome", "create_home"]) {
        if literal_is(Some(c), &["False", "no", "false"]) {
            return unsupported("`user: create_home: no` (froyo creates the home of a new user)");
        }
        if c.scalar_text().is_some_and(|s| is_template(&s)) {
            ctx.note("`user: create_home` dropped: froyo creates the home directory of a new user");
        }
    }
    if let Some(g) = args.get(&["generate_ssh_key"]) {
        if literal_is(Some(g), &["True", "yes", "true"]) {
            return unsupported("`user: generate_ssh_key`");
        }
        ctx.note("`user: generate_ssh_key` dropped: froyo does not generate keys for users");
    }
    Ok(Mapped::Resource(call))
}

fn group(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let name = ctx.str_val(req(args, &["name"], "group")?)?;
    let mut call = Call::new("group").arg(name);
    match args
        .get(&["state"])
        .and_then(|n| n.scalar_text())
        .as_deref()
    {
        None | Some("present") => {}
        Some("absent") => call.kw("state", lit("absent")),
        Some(other) => return unsupported(format!("`group` state `{other}`")),
    }
    opt(&mut call, args, &["gid"], "gid", |n| ctx.val(n))?;
    opt(&mut call, args, &["system"], "system", |n| ctx.bool_val(n))?;
    Ok(Mapped::Resource(call))
}

fn authorized_key(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let user = ctx.str_val(req(args, &["user"], "authorized_key")?)?;
    let key = req(args, &["key"], "authorized_key")?;
    if let Some(s) = args.get(&["state"]).and_then(|n| n.scalar_text())
        && s != "present"
    {
        return unsupported(format!("`authorized_key` state `{s}`"));
    }
    let keys = match &key.value {
        Value::Str(s) if !is_template(s) => {
            let items: Vec<String> = s
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(lit)
                .collect();
            format!("[{}]", items.join(", "))
        }
        Value::Str(_) => format!("[k for k in {}.splitlines() if k.strip()]", ctx.val(key)?),
        _ => return unsupported("`authorized_key: key` that is not a string"),
    };
    let mut call = Call::new("authorized_keys").arg(user);
    call.kw("keys", keys);
    match args.get(&["exclusive"]) {
        Some(e) => call.kw("exclusive", ctx.bool_val(e)?),
        // Ansible's default: add the key, keep the others.
        None => call.kw("exclusive", "False"),
    }
    if args.get(&["path"]).is_some() {
        ctx.note("`authorized_key: path` dropped: froyo writes the user's ~/.ssh/authorized_keys");
    }
    drop_noted(
        ctx,
        args,
        "authorized_key",
        &[("manage_dir", "froyo creates ~/.ssh with safe modes")],
    );
    Ok(Mapped::Resource(call))
}

fn service(module: &str, args: &Args, ctx: &Ctx) -> R<Mapped> {
    let name = args
        .get(&["name", "service", "unit"])
        .filter(|n| !n.is_null());
    let daemon_reload = match args.get(&["daemon_reload", "daemon-reload"]) {
        Some(d) => Some(ctx.bool_val(d)?),
        None => None,
    };
    let Some(name) = name else {
        if daemon_reload.as_deref() == Some("True") {
            let mut c = Call::new("command").arg(lit("systemctl daemon-reload"));
            c.kw("argv", "[\"systemctl\", \"daemon-reload\"]");
            return Ok(Mapped::Resource(c));
        }
        return unsupported(format!("`{module}` without `name`"));
    };
    let mut call = Call::new("service").arg(ctx.str_val(name)?);
    if let Some(s) = args.get(&["state"]) {
        match &s.value {
            Value::Str(t) if is_template(t) => call.kw(
                "state",
                format!("service_state({})", template_value(t, ctx.scope)?),
            ),
            _ => match s.scalar_text().as_deref() {
                Some("started") => call.kw("state", lit("running")),
                Some("stopped") => call.kw("state", lit("stopped")),
                Some(a @ ("restarted" | "reloaded")) => {
                    return unsupported(format!(
                        "`{module}: state={a}` as a task (it acts on every run); as a handler it converts"
                    ));
                }
                Some(other) => return unsupported(format!("`{module}` state `{other}`")),
                None => {}
            },
        }
    }
    opt(&mut call, args, &["enabled"], "enabled", |n| {
        ctx.bool_val(n)
    })?;
    if let Some(d) = daemon_reload {
        call.kw("daemon_reload", d);
    }
    if let Some(m) = args.get(&["masked"])
        && !literal_is(Some(m), &["False", "no", "false"])
    {
        return unsupported(format!("`{module}: masked`"));
    }
    if let Some(s) = args.get(&["scope"])
        && !literal_is(Some(s), &["system"])
    {
        return unsupported(format!("`{module}: scope` other than system"));
    }
    args.get(&["no_block", "pattern", "sleep", "use", "arguments", "args"]);
    for k in ["no_block", "pattern", "sleep", "use", "arguments", "args"] {
        if args.has(k) {
            return unsupported(format!("`{module}: {k}`"));
        }
    }
    Ok(Mapped::Resource(call))
}

fn command(module: &str, args: &Args, ctx: &Ctx) -> R<Mapped> {
    let raw = args.get(&["_raw_params", "cmd"]);
    let argv = args.get(&["argv"]);
    let executable = args.get(&["executable"]).and_then(|n| n.scalar_text());
    let (label_src, mut call);
    match (raw, argv) {
        (_, Some(a)) => {
            label_src = a
                .as_seq()
                .map(|s| {
                    s.iter()
                        .map(|n| n.scalar_text().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            call = Call::new("command");
            call.kw("argv", ctx.val(a)?);
        }
        (Some(r), None) => {
            let text = r.scalar_text().unwrap_or_default();
            label_src = text.clone();
            call = Call::new("command");
            if module == "shell" {
                match executable.as_deref() {
                    None | Some("/bin/sh") => call.kw("shell", template_value(&text, ctx.scope)?),
                    Some(exe) => call.kw(
                        "argv",
                        format!(
                            "[{}, \"-c\", {}]",
                            lit(exe),
                            template_value(&text, ctx.scope)?
                        ),
                    ),
                }
            } else {
                let Some(words) = shlex::split(&text) else {
                    return unsupported("a command line with unbalanced quotes");
                };
                let mut items = Vec::new();
                for w in &words {
                    items.push(template_value(w, ctx.scope).map_err(|_| {
                        Unsupported(format!(
                            "the command `{text}` has a template that spans words; use `argv:`"
                        ))
                    })?);
                }
                call.kw("argv", format!("[{}]", items.join(", ")));
            }
        }
        (None, None) => return unsupported(format!("`{module}` without a command")),
    }
    if module == "command" && executable.is_some() {
        return unsupported("`command: executable`");
    }
    let label = if ctx.in_loop {
        template_value(&label_src, ctx.scope).unwrap_or_else(|_| ctx.label(&label_src))
    } else {
        ctx.label(&label_src)
    };
    call.args.insert(0, label);
    opt(&mut call, args, &["creates"], "creates", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["removes"], "removes", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["chdir"], "chdir", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["stdin"], "stdin", |n| ctx.str_val(n))?;
    drop_noted(
        ctx,
        args,
        module,
        &[
            ("warn", "froyo has no command warnings"),
            ("strip_empty_ends", "the output is not read"),
            ("stdin_add_newline", "stdin is written as given"),
        ],
    );
    Ok(Mapped::Resource(call))
}

fn get_url(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let url = ctx.str_val(req(args, &["url"], "get_url")?)?;
    let dest = ctx.str_val(req(args, &["dest"], "get_url")?)?;
    let Some(sum) = args.get(&["checksum"]).and_then(|n| n.scalar_text()) else {
        return unsupported("`get_url` without `checksum: sha256:…` (froyo checks every download)");
    };
    let Some(hex) = sum.strip_prefix("sha256:") else {
        return unsupported("a `get_url` checksum other than sha256");
    };
    let mut call = Call::new("download").arg(dest);
    call.kw("url", url);
    call.kw("sha256", template_value(hex, ctx.scope)?);
    opt(&mut call, args, &["mode"], "mode", |n| ctx.mode_val(n))?;
    opt(&mut call, args, &["owner"], "owner", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["group"], "group", |n| ctx.str_val(n))?;
    drop_noted(
        ctx,
        args,
        "get_url",
        &[
            ("timeout", "froyo's downloads have their own timeout"),
            (
                "force",
                "a file with the right sha256 is never fetched again",
            ),
        ],
    );
    Ok(Mapped::Resource(call))
}

fn unarchive(args: &Args, ctx: &Ctx) -> R<Mapped> {
    let dest = ctx.str_val(req(args, &["dest"], "unarchive")?)?;
    let src = req(args, &["src"], "unarchive")?;
    if !literal_is(args.get(&["remote_src"]), &["True", "yes", "true"]) {
        return unsupported("`unarchive` of a controller file (only `remote_src: yes` converts)");
    }
    let mut call = Call::new("unarchive").arg(dest);
    call.kw("src", ctx.str_val(src)?);
    opt(&mut call, args, &["creates"], "creates", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["owner"], "owner", |n| ctx.str_val(n))?;
    opt(&mut call, args, &["group"], "group", |n| ctx.str_val(n))?;
    if let Some(x) = args.get(&["extra_opts"]) {
        let opts: Vec<String> = x
            .as_seq()
            .map(|s| s.iter().filter_map(Node::scalar_text).collect())
            .unwrap_or_default();
        match opts.as_slice() {
            [o] if o.starts_with("--strip-components=") => call.kw(
                "strip_components",
                o.trim_start_matches("--strip-components=").to_owned(),
            ),
            _ => return unsupported("`unarchive: extra_opts` other than --strip-components"),
        }
    }
    Ok(Mapped::Resource(call))
}

/// The resource type behind a stdlib wrapper, for handlers (`handler(type, name, …)`),
/// and the keyword its first argument fills.
pub fn wrapper_type(func: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match func {
        "package" | "packages" => ("linux.pkg::package", None),
        "file" => ("linux.file::file", None),
        "line" => ("linux.file::line", None),
        "block" => ("linux.file::block", None),
        "directory" => ("linux.file::directory", None),
        "symlink" => ("linux.file::symlink", None),
        "service" => ("linux.service::service", Some("unit")),
        "command" => ("linux.exec::command", None),
        "user" => ("linux.user::user", None),
        "group" => ("linux.user::group", None),
        "authorized_keys" => ("linux.user::authorized_keys", Some("user")),
        "download" => ("linux.net::download", None),
        "unarchive" => ("linux.archive::extract", None),
        _ => return None,
    })
}
