//! A static check for `E-DEFERRED`: comparisons and truth tests of values that are only
//! known at apply time (`h.changed`, `changed(...)`).
//!
//! Starlark compiles `x == "const"` to the constant's own equality, and `if x:` to an
//! infallible truth test, so a deferred value cannot always object at run time; reading
//! the AST catches these at their exact span, even in code that did not run.

use starlark::codemap::Span;
use starlark::syntax::AstModule;
use starlark::syntax::ast::{AstExpr, AstStmt, BinOp, Expr, Stmt};

use crate::diag::{Code, Diagnostic};

/// An expression whose value is deferred: `<anything>.changed` or `changed(...)`.
fn is_deferred(e: &AstExpr) -> bool {
    match &e.node {
        Expr::Dot(_, attr) => attr.node == "changed",
        Expr::Call(f, _) => matches!(&f.node, Expr::Identifier(id) if id.node.ident == "changed"),
        _ => false,
    }
}

struct Finder<'a> {
    ast: &'a AstModule,
    out: Vec<Diagnostic>,
}

impl Finder<'_> {
    fn report(&mut self, span: Span, what: &str) {
        let file_span = self.ast.file_span(span);
        let text = file_span.source_span().to_owned();
        self.out.push(
            Diagnostic::new(Code::Deferred, format!("`{text}` is only known at apply time and cannot be {what} during evaluation"))
                .at(file_span, "deferred value")
                .help("pass it as `when=` (e.g. `when = changed(cfg)`) to decide at apply time; `if`, `==`, `and`, `or` and `not` need a value now"),
        );
    }

    fn condition(&mut self, e: &AstExpr, what: &str) {
        if is_deferred(e) {
            self.report(e.span, what);
        }
    }

    fn expr(&mut self, e: &AstExpr) {
        match &e.node {
            Expr::Op(l, op, r) => match op {
                BinOp::Equal
                | BinOp::NotEqual
                | BinOp::Less
                | BinOp::Greater
                | BinOp::LessOrEqual
                | BinOp::GreaterOrEqual => {
                    self.condition(l, "compared");
                    self.condition(r, "compared");
                }
                BinOp::And | BinOp::Or => {
                    self.condition(l, "tested");
                    self.condition(r, "tested");
                }
                _ => {}
            },
            Expr::Not(x) => self.condition(x, "tested"),
            Expr::Call(f, args) if matches!(&f.node, Expr::Identifier(id) if id.node.ident == "str") => {
                for a in &args.args {
                    if let starlark::syntax::ast::ArgumentP::Positional(x) = &a.node {
                        self.condition(x, "converted to text");
                    }
                }
            }
            Expr::If(b) => self.condition(&b.0, "tested"),
            _ => {}
        }
        e.visit_expr(|c| self.expr(c));
    }

    fn stmt(&mut self, s: &AstStmt) {
        match &s.node {
            Stmt::If(c, _) | Stmt::IfElse(c, _) => self.condition(c, "tested"),
            _ => {}
        }
        s.visit_stmt(|c| self.stmt(c));
    }
}

/// Every place in `ast` where a deferred value is compared or truth-tested.
pub fn check(ast: &AstModule) -> Vec<Diagnostic> {
    let mut f = Finder {
        ast,
        out: Vec::new(),
    };
    f.stmt(ast.statement());
    ast.statement().visit_expr(|e| f.expr(e));
    f.out
}
