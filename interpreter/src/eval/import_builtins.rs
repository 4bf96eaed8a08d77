//! `unconverted()`: the placeholder `froyo import ansible` writes for a task it could not
//! convert. Calling it records `E-IMPORT` at the call (naming the Ansible source line, the
//! module and why), so `froyo check` fails until a person rewrites the task; with
//! `allow = True` (`--allow-unconverted`) it is the warning `W-IMPORT` and declares
//! nothing, so the rest of the conversion can be planned and applied.

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;

use super::builder::EvalContext;
use crate::diag::{Code, Diagnostic};

#[starlark_module]
pub fn import_builtins(builder: &mut GlobalsBuilder) {
    /// A task `froyo import ansible` did not convert: `module` (such as
    /// "ansible.builtin.lineinfile"), `at` its source `file.yml:LINE`, `reason` why.
    /// Fails `froyo check` with E-IMPORT, or warns with W-IMPORT when `allow = True`.
    fn unconverted<'v>(
        #[starlark(require = pos)] module: &str,
        #[starlark(require = named)] at: &str,
        #[starlark(require = named)] reason: &str,
        #[starlark(require = named)] task: Option<&str>,
        #[starlark(require = named, default = false)] allow: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = EvalContext::get(eval)?;
        let (span, notes) = EvalContext::call_site(eval);
        let task = task.map(|t| format!(" ({t})")).unwrap_or_default();
        let code = if allow {
            Code::ImportAllowed
        } else {
            Code::Import
        };
        let mut d = Diagnostic::new(
            code,
            format!("not converted from Ansible: {at}: {module}{task}: {reason}"),
        )
        .at_opt(span, "placeholder for the Ansible task");
        for (s, label) in notes {
            d = d.note(s, label);
        }
        ctx.report(d);
        Ok(NoneType)
    }
}
