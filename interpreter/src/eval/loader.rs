//! `load()`: `@stdlib//NAME.star` (embedded), `//path` (project root) and `./path` or
//! `../path` (relative to the loading file), each module evaluated once per evaluation,
//! with cycles reported as `E-LOAD`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use dupe::Dupe;
use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::AstModule;

use super::builder::EvalContext;
use super::errors::CodedError;
use super::{PrintCollector, dialect, lint};
use crate::diag::Code;

/// Where a load path points.
enum Source {
    Stdlib(&'static str),
    File(PathBuf),
}

pub struct Loader<'a> {
    pub ctx: &'a EvalContext,
    pub globals: &'a Globals,
    pub prints: &'a PrintCollector,
    cache: RefCell<HashMap<String, FrozenModule>>,
    /// Display names of the modules being evaluated, outermost first.
    pub loading: RefCell<Vec<String>>,
}

impl<'a> Loader<'a> {
    pub fn new(ctx: &'a EvalContext, globals: &'a Globals, prints: &'a PrintCollector) -> Self {
        Loader {
            ctx,
            globals,
            prints,
            cache: RefCell::default(),
            loading: RefCell::new(vec![ctx.main_file.clone()]),
        }
    }

    fn resolve(&self, path: &str) -> Result<(String, Source), CodedError> {
        if let Some(name) = path.strip_prefix("@stdlib//") {
            return crate::bundled::STDLIB
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, src)| (format!("@stdlib//{n}"), Source::Stdlib(src)))
                .ok_or_else(|| {
                    let names: Vec<&str> = crate::bundled::STDLIB.iter().map(|(n, _)| *n).collect();
                    let hint = match crate::util::did_you_mean(name, names.iter().copied()) {
                        Some(s) => format!("did you mean `@stdlib//{s}`?"),
                        None => format!("the stdlib has: {}", names.join(", ")),
                    };
                    CodedError::new(Code::Load, format!("no stdlib module `{path}`")).help(hint)
                });
        }
        if !path.ends_with(".star") {
            return Err(CodedError::new(
                Code::Load,
                format!("cannot load `{path}`: modules are `.star` files"),
            ));
        }
        let project = &self.ctx.project;
        let (base, rel) = if let Some(rel) = path.strip_prefix("//") {
            (project.root.clone(), rel)
        } else if path.starts_with("./") || path.starts_with("../") {
            let current = self.loading.borrow().last().cloned().unwrap_or_default();
            if current.starts_with("@stdlib//") {
                return Err(CodedError::new(
                    Code::Load,
                    format!("stdlib modules cannot load `{path}`"),
                ));
            }
            let dir = self
                .ctx
                .files
                .borrow()
                .get(&current)
                .and_then(|p| p.parent().map(PathBuf::from));
            (dir.unwrap_or_else(|| project.root.clone()), path)
        } else {
            return Err(CodedError::new(Code::Load, format!("cannot load `{path}`")));
        };
        let real = project
            .resolve_inside(&base, rel)
            .map_err(|e| CodedError::new(Code::Load, format!("cannot load {e}")))?;
        Ok((project.display_name(&real), Source::File(real)))
    }
}

impl FileLoader for Loader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        let (display, source) = self.resolve(path).map_err(starlark::Error::new_native)?;
        if let Some(m) = self.cache.borrow().get(&display) {
            return Ok(m.dupe());
        }
        if self.loading.borrow().contains(&display) {
            let mut chain = self.loading.borrow().clone();
            let start = chain.iter().position(|p| *p == display).unwrap_or(0);
            chain.drain(..start);
            chain.push(display.clone());
            return Err(starlark::Error::new_native(
                CodedError::new(Code::Load, format!("load cycle: {}", chain.join(" → ")))
                    .help("move the shared definitions into a third module that both load"),
            ));
        }
        let text = match &source {
            Source::Stdlib(src) => (*src).to_owned(),
            Source::File(p) => std::fs::read_to_string(p).map_err(|e| {
                starlark::Error::new_native(CodedError::new(
                    Code::Load,
                    format!("cannot read `{display}`: {e}"),
                ))
            })?,
        };
        if let Source::File(p) = &source {
            self.ctx
                .files
                .borrow_mut()
                .insert(display.clone(), p.clone());
        }
        let ast = AstModule::parse(&display, text, &dialect())?;
        if matches!(source, Source::File(_)) {
            for d in lint(&ast, self.globals) {
                self.ctx.report(d);
            }
        }
        self.loading.borrow_mut().push(display.clone());
        self.ctx.load_depth.set(self.ctx.load_depth.get() + 1);
        let result = Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
            {
                let mut eval = Evaluator::new(&module);
                super::set_limits(&mut eval, &self.ctx.project);
                eval.set_loader(self);
                eval.set_print_handler(self.prints);
                eval.extra = Some(self.ctx);
                eval.eval_module(ast, self.globals)?;
            }
            Ok(module.freeze()?)
        });
        self.ctx.load_depth.set(self.ctx.load_depth.get() - 1);
        self.loading.borrow_mut().pop();
        let frozen = result?;
        self.cache.borrow_mut().insert(display, frozen.dupe());
        Ok(frozen)
    }
}
