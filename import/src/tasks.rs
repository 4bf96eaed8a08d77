//! Ansible task lists → Starlark statements: keywords (`when`, loops, `register`,
//! `notify`, `become`, `tags`, `no_log`, `block`), includes (static ones inlined, names
//! built from a fact turned into `if`/`elif` on `host.facts`), and the module through
//! [`crate::modules`]. A task that does not convert becomes an `unconverted()`
//! placeholder (collected by the unit and written at the module's top level, so
//! `froyo check` reports every one, whatever branch it sits in) and a comment where the
//! task was.

use std::path::{Path, PathBuf};

use crate::code::{Call, Writer, ident, lit};
use crate::expr::{self, Condition, Scope, Unsupported, is_template, str_lit};
use crate::kv::parse_kv;
use crate::modules::{self, Args, Ctx, Mapped};
use crate::report::Item;
use crate::yaml::{Node, Value};

const WIDTH: usize = 100;

/// Task keywords: everything else in a task mapping is the module.
const TASK_KEYWORDS: &[&str] = &[
    "name",
    "when",
    "loop",
    "loop_control",
    "register",
    "notify",
    "tags",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "vars",
    "environment",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "no_log",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "check_mode",
    "diff",
    "until",
    "retries",
    "delay",
    "args",
    "block",
    "rescue",
    "always",
    "listen",
    "async",
    "poll",
    "throttle",
    "any_errors_fatal",
    "connection",
    "timeout",
    "module_defaults",
    "collections",
    "debugger",
    "local_action",
    "action",
    "remote_user",
    "port",
    "tags",
    "vars_files",
];

/// Keywords whose meaning froyo cannot carry: the task becomes a placeholder.
const BLOCKING: &[(&str, &str)] = &[
    ("delegate_to", "runs the task on another host"),
    ("run_once", "runs the task on one host of the play only"),
    (
        "until",
        "retries until a condition on the task's result holds",
    ),
    ("async", "runs the task in the background"),
    ("failed_when", "decides failure from the task's result"),
    ("throttle", "limits how many hosts run the task at once"),
    ("local_action", "runs the task on the controller"),
    ("connection", "changes how the host is reached"),
    ("module_defaults", "sets module defaults"),
];

/// FQCN collections whose modules are known by their short name.
const COLLECTIONS: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// Inherited from enclosing blocks.
#[derive(Debug, Clone, Default)]
pub struct Inherit {
    pub become_: Option<String>,
    pub tags: Vec<String>,
}

/// The handlers a unit's tasks can notify: Ansible name or `listen` topic → variables.
#[derive(Debug, Clone, Default)]
pub struct Handlers {
    pub by_name: Vec<(String, String)>,
}

impl Handlers {
    fn lookup(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (n, var) in &self.by_name {
            if n == name && !out.contains(var) {
                out.push(var.clone());
            }
        }
        out
    }
}

/// What the unit (a role or a playbook) needs from the project while its tasks convert.
pub trait Project {
    /// The Starlark name of role `name`'s function (converting it if needed), or why not.
    fn role_function(&mut self, name: &str, from: &Path) -> Result<String, String>;
}

/// Converts the task lists of one unit.
pub struct Tasks<'p> {
    pub w: Writer,
    /// The unit's directory (the role, or the playbook's directory): file names are shown
    /// relative to it.
    pub root: PathBuf,
    /// Where relative task files are found (`tasks/` of a role, the playbook's directory).
    pub tasks_dir: PathBuf,
    /// `vars/` of a role (for `include_vars`).
    pub vars_dir: PathBuf,
    /// Shown before file names (`roles/users/`).
    pub display_prefix: String,
    pub handlers: Handlers,
    pub placeholders: Vec<String>,
    pub items: Vec<Item>,
    pub notes: Vec<Item>,
    pub total: usize,
    pub converted: usize,
    pub allow_unconverted: bool,
    pub assets: Vec<String>,
    pub project: &'p mut dyn Project,
    depth: usize,
    names: Vec<String>,
    /// `register:` names seen so far (registered results are global in Ansible).
    registered: Vec<(String, String)>,
    /// Whether the `handlers = {}` memo of this unit was written.
    pub handlers_dict: bool,
}

/// The module of a task, its name as written and its arguments node.
fn module_of(t: &Node) -> Option<(String, &Node)> {
    let map = t.as_map()?;
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        if !TASK_KEYWORDS.contains(&key) && !key.starts_with("with_") {
            return Some((key.to_owned(), v));
        }
    }
    if let Some(a) = t.get("action") {
        return Some(("action".into(), a));
    }
    None
}

/// `ansible.builtin.copy` → `copy`.
fn short_name(m: &str) -> &str {
    for c in COLLECTIONS {
        if let Some(s) = m.strip_prefix(c) {
            return s;
        }
    }
    m
}

fn scalar_list(n: Option<&Node>) -> Vec<String> {
    match n.map(|n| &n.value) {
        None => Vec::new(),
        Some(Value::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
        Some(_) => n.and_then(Node::scalar_text).into_iter().collect(),
    }
}

impl<'p> Tasks<'p> {
    pub fn new(
        root: PathBuf,
        tasks_dir: PathBuf,
        vars_dir: PathBuf,
        display_prefix: String,
        allow: bool,
        project: &'p mut dyn Project,
    ) -> Self {
        Tasks {
            w: Writer::default(),
            root,
            tasks_dir,
            vars_dir,
            display_prefix,
            handlers: Handlers::default(),
            placeholders: Vec::new(),
            items: Vec::new(),
            notes: Vec::new(),
            total: 0,
            converted: 0,
            allow_unconverted: allow,
            assets: Vec::new(),
            project,
            depth: 0,
            names: Vec::new(),
            registered: Vec::new(),
            handlers_dict: false,
        }
    }

    /// A fresh Starlark variable name based on `want`.
    pub fn fresh(&mut self, want: &str) -> String {
        let base = ident(want);
        const TAKEN: &[&str] = &[
            "v",
            "tv",
            "host",
            "item",
            "package",
            "packages",
            "line",
            "block",
            "file",
            "directory",
            "symlink",
            "service",
            "restart",
            "reload",
            "command",
            "user",
            "group",
            "authorized_keys",
            "download",
            "unarchive",
            "ansible_bool",
            "version_compare",
            "service_state",
            "file_mode",
            "comma_list",
            "role",
            "main",
            "resource",
            "handler",
            "notify",
            "require",
            "template",
            "asset",
            "secret",
            "changed",
            "fail",
            "play",
            "handlers",
        ];
        let mut name = base.clone();
        let mut n = 2;
        while TAKEN.contains(&name.as_str()) || self.names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.names.push(name.clone());
        name
    }

    fn at(&self, file: &str, line: usize) -> String {
        format!("{}{file}:{line}", self.display_prefix)
    }

    /// Records a task that did not convert and leaves a comment where it was.
    pub fn placeholder(
        &mut self,
        module: &str,
        file: &str,
        line: usize,
        task: Option<&str>,
        reason: &str,
    ) {
        let at = self.at(file, line);
        let mut call = Call::new("unconverted").arg(lit(module));
        call.kw("at", lit(&at));
        if let Some(t) = task {
            call.kw("task", lit(t));
        }
        call.kw("reason", lit(reason));
        if self.allow_unconverted {
            call.kw("allow", "True");
        }
        self.placeholders.push(call.render(0, WIDTH));
        self.w
            .comment(&format!("NOT CONVERTED ({at}): {module}: {reason}"));
        self.items.push(Item {
            at,
            module: module.to_owned(),
            task: task.map(str::to_owned),
            reason: reason.to_owned(),
        });
    }

    fn note(&mut self, file: &str, line: usize, module: &str, text: String) {
        let at = self.at(file, line);
        self.notes.push(Item {
            at,
            module: module.to_owned(),
            task: None,
            reason: text,
        });
    }

    /// Converts a list of tasks from `file` (shown relative to the unit).
    pub fn list(&mut self, tasks: &Node, file: &str, scope: &Scope, inherit: &Inherit) {
        let Some(items) = tasks.as_seq() else {
            if !tasks.is_null() {
                self.total += 1;
                self.placeholder(
                    "tasks",
                    file,
                    tasks.line,
                    None,
                    "a task list that is not a YAML list",
                );
            }
            return;
        };
        for t in items {
            self.task(t, file, scope, inherit);
        }
    }

    fn task(&mut self, t: &Node, file: &str, scope: &Scope, inherit: &Inherit) {
        let name = t.get("name").and_then(Node::scalar_text);
        let line = t.line;
        if t.as_map().is_none() {
            self.total += 1;
            self.placeholder("task", file, line, None, "a task that is not a mapping");
            return;
        }
        if let Some(block) = t.get("block") {
            self.block(t, block, file, scope, inherit, name.as_deref());
            return;
        }
        self.total += 1;
        let Some((key, margs)) = module_of(t) else {
            self.placeholder(
                "task",
                file,
                line,
                name.as_deref(),
                "no module in this task",
            );
            return;
        };
        let (written, margs) = if key == "action" {
            // `action: module k=v`
            let text = margs.scalar_text().unwrap_or_default();
            let (m, rest) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
            let node = Node {
                value: Value::Str(rest.to_owned()),
                line: margs.line,
                col: margs.col,
            };
            (m.to_owned(), node)
        } else {
            (key, margs.clone())
        };
        let module = short_name(&written).to_owned();
        let fqcn = if written.contains('.') {
            written.clone()
        } else {
            format!("ansible.builtin.{written}")
        };
        let mut scope = scope.clone();
        scope.registered.extend(self.registered.iter().cloned());
        match self.task_inner(t, &module, &margs, file, &scope, inherit, name.as_deref()) {
            Ok(()) => self.converted += 1,
            Err(Unsupported(why)) => self.placeholder(&fqcn, file, line, name.as_deref(), &why),
        }
    }

    fn block(
        &mut self,
        t: &Node,
        block: &Node,
        file: &str,
        scope: &Scope,
        inherit: &Inherit,
        name: Option<&str>,
    ) {
        let mut inner = inherit.clone();
        if let Some(b) = t.get("become") {
            inner.become_ = Some(
                b.scalar_text()
                    .map(|s| {
                        if matches!(s.as_str(), "True" | "yes" | "true") {
                            "True".into()
                        } else {
                            "False".into()
                        }
                    })
                    .unwrap_or_default(),
            );
        }
        inner.tags.extend(scalar_list(t.get("tags")));
        let cond = match self.when(t, scope) {
            Ok(c) => c,
            Err(Unsupported(why)) => {
                self.total += 1;
                self.placeholder("block", file, t.line, name, &format!("its `when:` {why}"));
                return;
            }
        };
        self.w.comment(&format!(
            "{}{}",
            self.at(file, t.line),
            name.map(|n| format!(": {n}")).unwrap_or_default()
        ));
        let opened = self.open_if(&cond);
        let at = self.w.lines.len();
        self.list(block, file, scope, &inner);
        self.close_n(opened, at);
        for section in ["rescue", "always"] {
            if let Some(s) = t.get(section) {
                for child in s.as_seq().unwrap_or_default() {
                    self.total += 1;
                    let n = child.get("name").and_then(Node::scalar_text);
                    let module = module_of(child)
                        .map(|m| m.0)
                        .unwrap_or_else(|| "task".into());
                    self.placeholder(
                        &module,
                        file,
                        child.line,
                        n.as_deref(),
                        &format!("in a `{section}:` section (Starlark has no exceptions; froyo skips the dependents of a failure)"),
                    );
                }
            }
        }
    }

    fn when(&self, t: &Node, scope: &Scope) -> Result<Condition, Unsupported> {
        let Some(w) = t.get("when") else {
            return Ok(Condition::default());
        };
        let items: Vec<String> = match &w.value {
            Value::Seq(s) => s
                .iter()
                .map(|n| n.scalar_text().unwrap_or_default())
                .collect(),
            Value::Bool(b) => vec![if *b { "true".into() } else { "false".into() }],
            _ => vec![w.scalar_text().unwrap_or_default()],
        };
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        expr::condition(&refs, scope).map_err(|Unsupported(e)| Unsupported(format!("when: {e}")))
    }

    /// Closes `n` blocks opened last; the innermost gets `pass` if nothing was written
    /// since line `at`.
    fn close_n(&mut self, n: usize, at: usize) {
        if n > 0 {
            self.w.close_block(at);
            for _ in 1..n {
                self.w.close();
            }
        }
    }

    /// Opens `if` for the plan-time part of `cond` (the apply-time part is the caller's
    /// `when = changed(...)`); returns how many blocks were opened.
    fn open_if(&mut self, cond: &Condition) -> usize {
        match cond.plan_expr() {
            Some(e) if e != "True" => {
                self.w.open(format!("if {e}:"));
                1
            }
            _ => 0,
        }
    }

    /// The loop of a task: `for` header, the scope inside it, and whether it loops.
    fn loop_of(&self, t: &Node, scope: &Scope) -> Result<Option<(String, Scope)>, Unsupported> {
        let var = t
            .get("loop_control")
            .and_then(|lc| lc.get("loop_var"))
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| "item".into());
        let index = t
            .get("loop_control")
            .and_then(|lc| lc.get("index_var"))
            .and_then(Node::scalar_text);
        if let Some(lc) = t.get("loop_control") {
            for (k, _) in lc.as_map().unwrap_or_default() {
                let k = k.scalar_text().unwrap_or_default();
                if !matches!(
                    k.as_str(),
                    "loop_var" | "index_var" | "label" | "pause" | "extended"
                ) {
                    return Err(Unsupported(format!("`loop_control: {k}`")));
                }
            }
        }
        let ctx_scope = scope.clone();
        let source = |n: &Node| -> Result<String, Unsupported> {
            match &n.value {
                Value::Str(s) => expr::expression(s, &ctx_scope),
                Value::Seq(_) | Value::Map(_) => {
                    let c = Ctx::new(&ctx_scope);
                    c.val(n)
                }
                _ => Err(Unsupported("a loop over a value that is not a list".into())),
            }
        };
        let mut header = None;
        for (k, v) in t.as_map().unwrap_or_default() {
            let key = k.scalar_text().unwrap_or_default();
            let src = match key.as_str() {
                "loop" | "with_items" | "with_list" => source(v)?,
                "with_dict" => format!(
                    "[{{\"key\": k, \"value\": val}} for k, val in {}.items()]",
                    paren(&source(v)?)
                ),
                "with_subelements" => {
                    let parts = v.as_seq().unwrap_or_default();
                    if parts.len() < 2 {
                        return Err(Unsupported(
                            "`with_subelements` needs a list and a field".into(),
                        ));
                    }
                    let outer = source(&parts[0])?;
                    let field = parts[1].scalar_text().unwrap_or_default();
                    let skip = parts
                        .get(2)
                        .and_then(|f| f.get("skip_missing"))
                        .is_some_and(|n| {
                            matches!(n.value, Value::Bool(true))
                                || n.scalar_text().is_some_and(|s| s == "yes" || s == "True")
                        });
                    let inner = if skip {
                        format!("x.get({}, [])", str_lit(&field))
                    } else {
                        format!("x[{}]", str_lit(&field))
                    };
                    // One authorized_keys resource per user (its identity): the keys of
                    // one element joined, where Ansible adds them one task run each.
                    let per_key = t
                        .get("authorized_key")
                        .or_else(|| t.get("ansible.builtin.authorized_key"))
                        .or_else(|| t.get("ansible.posix.authorized_key"))
                        .and_then(|m| m.get("key"))
                        .and_then(Node::scalar_text)
                        .is_some_and(|k| k.replace(' ', "") == "{{item.1}}");
                    if per_key {
                        format!("[(x, \"\\n\".join({inner})) for x in {outer} if {inner}]")
                    } else {
                        format!("[(x, y) for x in {outer} for y in {inner}]")
                    }
                }
                k if k.starts_with("with_") => {
                    return Err(Unsupported(format!(
                        "the loop `{k}` has no Starlark translation yet"
                    )));
                }
                _ => continue,
            };
            header = Some(src);
        }
        let Some(src) = header else {
            return Ok(None);
        };
        let mut inner = scope.clone();
        let local = ident(&var);
        inner.locals.push((var.clone(), local.clone()));
        let head = match index {
            Some(i) => {
                let il = ident(&i);
                inner.locals.push((i.clone(), il.clone()));
                format!("for {il}, {local} in enumerate({src}):")
            }
            None => format!("for {local} in {src}:"),
        };
        Ok(Some((head, inner)))
    }

    #[allow(clippy::too_many_arguments)]
    fn task_inner(
        &mut self,
        t: &Node,
        module: &str,
        margs: &Node,
        file: &str,
        scope: &Scope,
        inherit: &Inherit,
        name: Option<&str>,
    ) -> Result<(), Unsupported> {
        for (k, why) in BLOCKING {
            if t.get(k).is_some() {
                return Err(Unsupported(format!("`{k}` {why}")));
            }
        }
        match module {
            "include_tasks" | "import_tasks" | "include" => {
                return self.include(t, margs, file, scope, inherit);
            }
            "include_vars" => return self.include_vars(t, margs, file, scope),
            "include_role" | "import_role" => return self.include_role(t, margs, file, scope),
            _ => {}
        }
        let lp = self.loop_of(t, scope)?;
        let inner_scope = lp
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| scope.clone());
        let cond = self.when(t, &inner_scope)?;
        // Task `vars:` are visible to this task only: a copy of the variables.
        let mut task_scope = inner_scope.clone();
        let mut task_vars = None;
        if let Some(tv) = t.get("vars") {
            let c = Ctx::new(&inner_scope);
            task_vars = Some(c.val(tv)?);
            task_scope.vars = "tv".into();
        }
        let args = self.args(module, margs, t)?;
        let mut ctx = Ctx::new(&task_scope);
        ctx.name = name.map(str::to_owned);
        ctx.in_loop = lp.is_some();
        ctx.dir = Some(self.root.clone());
        let mapped = modules::map(module, &args, &ctx)?;
        // Meta keywords.
        let mut meta: Vec<(String, String)> = Vec::new();
        if !cond.changed.is_empty() {
            meta.push((
                "when".into(),
                format!("changed({})", cond.changed.join(", ")),
            ));
        }
        let mut tags = inherit.tags.clone();
        tags.extend(scalar_list(t.get("tags")));
        tags.dedup();
        if !tags.is_empty() {
            meta.push((
                "tags".into(),
                format!(
                    "[{}]",
                    tags.iter().map(|s| lit(s)).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let become_ = match (t.get("become_user"), t.get("become")) {
            (Some(u), _) => Some(ctx.val(u)?),
            (None, Some(b)) => Some(match &b.value {
                Value::Bool(true) => "True".into(),
                Value::Bool(false) => "False".into(),
                _ => format!("ansible_bool({})", ctx.val(b)?),
            }),
            (None, None) => inherit.become_.clone(),
        };
        if let Some(b) = become_.filter(|b| b != "False") {
            meta.push(("become".into(), b));
        }
        if let Some(nl) = t.get("no_log")
            && matches!(nl.value, Value::Bool(true))
        {
            meta.push(("sensitive".into(), "True".into()));
        }
        if let Some(n) = name {
            meta.push(("desc".into(), lit(n)));
        }
        let env = match t.get("environment") {
            Some(e) if module == "command" || module == "shell" => Some(ctx.val(e)?),
            Some(_) => {
                return Err(Unsupported(format!(
                    "`environment` on `{module}` (only commands take one)"
                )));
            }
            None => None,
        };
        let notified: Vec<String> = {
            let mut out = Vec::new();
            for n in scalar_list(t.get("notify")) {
                let vars = self.handlers.lookup(&n);
                if vars.is_empty() {
                    return Err(Unsupported(format!(
                        "notifies `{n}`, which is not a handler here (a handler of another role, or one that did not convert)"
                    )));
                }
                out.extend(vars.into_iter().map(|v| format!("{v}()")));
            }
            out.dedup();
            out
        };
        if let Some(cw) = t.get("changed_when") {
            let literal_false = matches!(cw.value, Value::Bool(false))
                || cw
                    .scalar_text()
                    .is_some_and(|s| s == "false" || s == "False");
            if !literal_false || !notified.is_empty() {
                return Err(Unsupported(
                    "`changed_when` on a task result (froyo counts a run of a command as a change)"
                        .into(),
                ));
            }
            self.note(
                file,
                t.line,
                module,
                "`changed_when: false` dropped: a command without a guard runs on every apply"
                    .into(),
            );
        }
        if t.get("ignore_errors")
            .is_some_and(|n| !matches!(n.value, Value::Bool(false)))
        {
            self.note(file, t.line, module, "`ignore_errors` dropped: in froyo a failure skips what depends on it and the run goes on".into());
        }
        if t.get("check_mode").is_some() || t.get("diff").is_some() {
            self.note(
                file,
                t.line,
                module,
                "`check_mode`/`diff` dropped: `froyo plan` shows changes without making them"
                    .into(),
            );
        }
        let register = t.get("register").and_then(Node::scalar_text);
        for n in ctx.notes.borrow().iter() {
            self.note(file, t.line, module, n.clone());
        }
        self.assets.extend(ctx.assets.borrow().iter().cloned());

        // Emit.
        self.w.comment(&format!(
            "{}{}",
            self.at(file, t.line),
            name.map(|n| format!(": {n}")).unwrap_or_default()
        ));
        let reg_var = register.as_ref().map(|r| self.fresh(r));
        if let (Some(rv), Some(_)) = (&reg_var, &lp) {
            self.w.line(format!("{rv} = []"));
        }
        let mut opened = 0;
        if let Some((head, _)) = &lp {
            self.w.open(head);
            opened += 1;
        }
        if let Some(tv) = &task_vars {
            self.w.line(format!("tv = dict({})", inner_scope.vars));
            self.w.line(format!("tv.update({tv})"));
        }
        opened += self.open_if(&cond);
        match mapped {
            Mapped::Stmts(stmts) => {
                if !cond.changed.is_empty() || register.is_some() || !notified.is_empty() {
                    return Err(Unsupported(format!(
                        "`{module}` with `register`, `notify` or a condition on a task result"
                    )));
                }
                for s in stmts {
                    self.w.line(s);
                }
            }
            Mapped::Resource(mut call) => {
                if let Some(e) = env {
                    call.kw("env", e);
                }
                for (k, v) in meta {
                    call.kw(&k, v);
                }
                let indent = self.w.depth();
                let mut text = call.render(indent, WIDTH);
                if !notified.is_empty() {
                    text = if text.contains('\n') {
                        format!(
                            "notify(\n    {},\n    {},\n)",
                            text.replace('\n', "\n    "),
                            notified.join(", ")
                        )
                    } else {
                        let mut c = Call::new("notify").arg(text);
                        c.args.extend(notified.iter().cloned());
                        c.render(indent, WIDTH)
                    };
                }
                match (&reg_var, &lp) {
                    (Some(rv), Some(_)) => {
                        let body = text.replace('\n', "\n    ");
                        self.w.line(format!("{rv}.append({body})"));
                    }
                    (Some(rv), None) => self.w.line(format!("{rv} = {text}")),
                    (None, _) => self.w.line(text),
                }
            }
        }
        for _ in 0..opened {
            self.w.close();
        }
        if let (Some(r), Some(rv)) = (register, reg_var) {
            // Later tasks read it (only `is changed` converts).
            self.registered.push((r, rv));
        }
        Ok(())
    }
}

impl Tasks<'_> {
    fn args(&self, module: &str, margs: &Node, t: &Node) -> Result<Args, Unsupported> {
        args_of(module, margs, t)
    }
    /// The path of a task or vars file: the first of `dirs` that has it.
    fn find(&self, name: &str, dirs: &[PathBuf]) -> Option<(PathBuf, String)> {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map(|p| {
                let shown = p
                    .strip_prefix(&self.root)
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|_| p.display().to_string());
                (p, shown)
            })
    }

    /// The directory of `file` (shown relative to the unit), then `more`.
    fn dirs(&self, file: &str, first: Option<&Path>, more: &Path) -> Vec<PathBuf> {
        let here = self.root.join(file);
        let here = here.parent().map(Path::to_path_buf).unwrap_or_default();
        match first {
            Some(f) => vec![f.to_path_buf(), here, more.to_path_buf()],
            None => vec![here, more.to_path_buf()],
        }
    }

    fn read_yaml(&self, path: &Path, shown: &str) -> Result<Node, Unsupported> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Unsupported(format!("cannot read {shown}: {e}")))?;
        crate::yaml::parse(&text, shown).map_err(|e| Unsupported(e.to_string()))
    }

    /// `name` (maybe built from one fact) → the files it can be, each with the
    /// plan-time condition that picks it (`None` for a static name). Looks in `dirs` in
    /// order; a name built from a fact matches in the first directory that has any match.
    fn choices(
        &self,
        name: &str,
        dirs: &[PathBuf],
    ) -> Result<Vec<(Option<String>, PathBuf, String)>, Unsupported> {
        if !is_template(name) {
            let Some((p, shown)) = self.find(name, dirs) else {
                return Err(Unsupported(format!("`{name}` was not found")));
            };
            return Ok(vec![(None, p, shown)]);
        }
        let Some(f) = expr::fact_in_name(name) else {
            return Err(Unsupported(format!(
                "the file name `{name}` is built from data other than one fact"
            )));
        };
        let dir_part = Path::new(&f.prefix)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let base_prefix = if f.prefix.ends_with('/') {
            String::new()
        } else {
            Path::new(&f.prefix)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(d.join(&dir_part)) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let mut out = Vec::new();
            for n in names {
                let Some(mid) = n
                    .strip_prefix(&base_prefix)
                    .and_then(|r| r.strip_suffix(&f.suffix))
                else {
                    continue;
                };
                if mid.is_empty() || mid.contains('.') {
                    continue;
                }
                let p = d.join(&dir_part).join(&n);
                let shown = p
                    .strip_prefix(&self.root)
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|_| p.display().to_string());
                out.push((
                    Some(format!("{} == {}", f.code, str_lit(&f.literal(mid)))),
                    p,
                    shown,
                ));
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
        Err(Unsupported(format!("no file matches `{name}`")))
    }

    /// Emits each choice under its `if`/`elif`.
    fn each_choice(
        &mut self,
        choices: Vec<(Option<String>, PathBuf, String)>,
        mut body: impl FnMut(&mut Self, &Path, &str) -> Result<(), Unsupported>,
    ) -> Result<(), Unsupported> {
        let mut first = true;
        for (cond, path, shown) in choices {
            match cond {
                None => body(self, &path, &shown)?,
                Some(c) => {
                    self.w
                        .open(format!("{} {c}:", if first { "if" } else { "elif" }));
                    let at = self.w.lines.len();
                    body(self, &path, &shown)?;
                    self.w.close_block(at);
                    first = false;
                }
            }
        }
        Ok(())
    }

    fn include(
        &mut self,
        t: &Node,
        margs: &Node,
        file: &str,
        scope: &Scope,
        inherit: &Inherit,
    ) -> Result<(), Unsupported> {
        let name = match &margs.value {
            Value::Map(_) => {
                if margs.get("apply").is_some() {
                    return Err(Unsupported("`apply:` on an include".into()));
                }
                margs.get("file").and_then(Node::scalar_text)
            }
            _ => margs.scalar_text(),
        }
        .ok_or_else(|| Unsupported("an include without a file name".into()))?;
        if self.depth > 20 {
            return Err(Unsupported("includes nested more than 20 deep".into()));
        }
        let dirs = self.dirs(file, None, &self.tasks_dir.clone());
        let choices = self.choices(&name, &dirs)?;
        let lp = self.loop_of(t, scope)?;
        let inner = lp
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| scope.clone());
        let cond = self.when(t, &inner)?;
        if !cond.changed.is_empty() {
            return Err(Unsupported(
                "an include that waits for a task result".into(),
            ));
        }
        let mut inh = inherit.clone();
        inh.tags.extend(scalar_list(t.get("tags")));
        self.w
            .comment(&format!("{}: include {name}", self.at(file, t.line)));
        let mut opened = 0;
        if let Some((head, _)) = &lp {
            self.w.open(head);
            opened += 1;
        }
        opened += self.open_if(&cond);
        let at = self.w.lines.len();
        self.depth += 1;
        let result = self.each_choice(choices, |me, path, shown| {
            let doc = me.read_yaml(path, shown)?;
            me.list(&doc, shown, &inner, &inh);
            Ok(())
        });
        self.depth -= 1;
        self.close_n(opened, at);
        result
    }

    fn include_vars(
        &mut self,
        t: &Node,
        margs: &Node,
        file: &str,
        scope: &Scope,
    ) -> Result<(), Unsupported> {
        let name = match &margs.value {
            Value::Map(_) => {
                for k in [
                    "name",
                    "dir",
                    "depth",
                    "files_matching",
                    "ignore_files",
                    "extensions",
                ] {
                    if margs.get(k).is_some() {
                        return Err(Unsupported(format!("`include_vars: {k}`")));
                    }
                }
                margs.get("file").and_then(Node::scalar_text)
            }
            _ => margs.scalar_text(),
        }
        .ok_or_else(|| Unsupported("`include_vars` without a file".into()))?;
        let vars_dir = self.vars_dir.clone();
        let dirs = self.dirs(file, Some(&vars_dir), &self.root.clone());
        let choices = self.choices(&name, &dirs)?;
        let cond = self.when(t, scope)?;
        self.w
            .comment(&format!("{}: include_vars {name}", self.at(file, t.line)));
        let opened = self.open_if(&cond);
        let at = self.w.lines.len();
        let vars = scope.vars.clone();
        let result = self.each_choice(choices, |me, path, shown| {
            let doc = me.read_yaml(path, shown)?;
            let c = Ctx::new(scope);
            let Some(pairs) = doc.as_map() else {
                if doc.is_null() {
                    return Ok(());
                }
                return Err(Unsupported(format!(
                    "{shown} is not a mapping of variables"
                )));
            };
            me.w.comment(shown);
            me.w.open(format!("{vars}.update({{"));
            for (k, val) in pairs {
                me.w.line(format!(
                    "{}: {},",
                    str_lit(&k.scalar_text().unwrap_or_default()),
                    c.val(val)?
                ));
            }
            me.w.close();
            me.w.line("})");
            Ok(())
        });
        self.close_n(opened, at);
        result
    }

    fn include_role(
        &mut self,
        t: &Node,
        margs: &Node,
        file: &str,
        scope: &Scope,
    ) -> Result<(), Unsupported> {
        let name = match &margs.value {
            Value::Map(_) => {
                for k in [
                    "tasks_from",
                    "vars_from",
                    "defaults_from",
                    "handlers_from",
                    "apply",
                ] {
                    if margs.get(k).is_some_and(|n| {
                        n.scalar_text()
                            .is_none_or(|s| s != "main" && s != "main.yml")
                    }) {
                        return Err(Unsupported(format!("`{k}` on an included role")));
                    }
                }
                margs.get("name").and_then(Node::scalar_text)
            }
            _ => margs.scalar_text(),
        }
        .ok_or_else(|| Unsupported("a role include without a name".into()))?;
        if is_template(&name) {
            return Err(Unsupported("a role name built from variables".into()));
        }
        let root = self.root.clone();
        let func = self
            .project
            .role_function(&name, &root)
            .map_err(Unsupported)?;
        let cond = self.when(t, scope)?;
        let c = Ctx::new(scope);
        let mut call = Call::new(func).arg("host").arg(scope.vars.clone());
        if let Some(vars) = t.get("vars") {
            for (k, val) in vars.as_map().unwrap_or_default() {
                let key = k.scalar_text().unwrap_or_default();
                call.kw(&key, c.val(val)?);
            }
        }
        self.w
            .comment(&format!("{}: role {name}", self.at(file, t.line)));
        let opened = self.open_if(&cond);
        let text = call.render(self.w.depth(), WIDTH);
        self.w.line(text);
        for _ in 0..opened {
            self.w.close();
        }
        Ok(())
    }
}

/// `(x)` unless `x` is already an atom-like expression.
fn paren(x: &str) -> String {
    if x.chars()
        .all(|c| c.is_alphanumeric() || "_[]\".".contains(c))
    {
        x.to_owned()
    } else {
        format!("({x})")
    }
}

/// The module's arguments: a mapping, `k=v` text (free-form for commands), plus `args:`.
pub fn args_of(module: &str, margs: &Node, t: &Node) -> Result<Args, Unsupported> {
    let mut items: Vec<(String, Node)> = Vec::new();
    match &margs.value {
        Value::Map(pairs) => {
            for (k, v) in pairs {
                items.push((k.scalar_text().unwrap_or_default(), v.clone()));
            }
        }
        Value::Str(s) => {
            let raw = matches!(
                module,
                "command" | "shell" | "raw" | "script" | "win_command" | "win_shell"
            );
            for (k, v) in parse_kv(s, raw) {
                items.push((
                    k,
                    Node {
                        value: Value::Str(v),
                        line: margs.line,
                        col: margs.col,
                    },
                ));
            }
        }
        Value::Null => {}
        _ => {
            return Err(Unsupported(format!(
                "`{module}` arguments that are not a mapping or `k=v` text"
            )));
        }
    }
    if let Some(extra) = t.get("args") {
        for (k, v) in extra.as_map().unwrap_or_default() {
            let k = k.scalar_text().unwrap_or_default();
            if !items.iter().any(|(ik, _)| *ik == k) {
                items.push((k, v.clone()));
            }
        }
    }
    Ok(Args::new(items))
}

/// The short module name and the arguments node of a task (`action:` split).
pub fn module_and_args(t: &Node) -> Option<(String, Node)> {
    let (key, margs) = module_of(t)?;
    if key == "action" {
        let text = margs.scalar_text().unwrap_or_default();
        let (m, rest) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        return Some((
            short_name(m).to_owned(),
            Node {
                value: Value::Str(rest.to_owned()),
                line: margs.line,
                col: margs.col,
            },
        ));
    }
    Some((short_name(&key).to_owned(), margs.clone()))
}

/// The module of a task as its fully qualified name (`ansible.builtin.copy`).
pub fn module_name(t: &Node) -> Option<String> {
    let (key, _) = module_of(t)?;
    Some(if key.contains('.') {
        key
    } else {
        format!("ansible.builtin.{key}")
    })
}
