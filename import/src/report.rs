//! What an import did: per unit (role or playbook) the tasks converted out of the total,
//! every placeholder with its source line, module and reason, and the notes about
//! arguments dropped on purpose. Written as `import-report.json` (for machines, version 1)
//! and `IMPORT.md` (for the person reviewing the conversion).

use serde::Serialize;

/// One placeholder or note, at its source `file.yml:LINE`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Item {
    pub at: String,
    pub module: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub reason: String,
}

/// A role or a playbook.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    /// `role` or `playbook`.
    pub kind: &'static str,
    pub name: String,
    /// The generated file, relative to the output directory.
    pub output: String,
    pub tasks: usize,
    pub converted: usize,
    /// converted / tasks, 1.0 for a unit without tasks.
    pub coverage: f64,
    pub unconverted: Vec<Item>,
    pub notes: Vec<Item>,
}

/// The whole import.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub source: String,
    pub units: Vec<Unit>,
    pub tasks: usize,
    pub converted: usize,
    pub coverage: f64,
    /// Reasons for placeholders, most common first (module: reason → count).
    pub reasons: Vec<(String, usize)>,
}

pub fn coverage(converted: usize, total: usize) -> f64 {
    if total == 0 {
        1.0
    } else {
        (converted as f64 / total as f64 * 1000.0).round() / 1000.0
    }
}

impl Report {
    pub fn new(source: String, units: Vec<Unit>) -> Self {
        let tasks = units.iter().map(|u| u.tasks).sum();
        let converted = units.iter().map(|u| u.converted).sum();
        let mut reasons: Vec<(String, usize)> = Vec::new();
        for u in &units {
            for i in &u.unconverted {
                let key = format!("{}: {}", i.module, i.reason);
                match reasons.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 += 1,
                    None => reasons.push((key, 1)),
                }
            }
        }
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Report {
            version: 1,
            source,
            units,
            tasks,
            converted,
            coverage: coverage(converted, tasks),
            reasons,
        }
    }

    /// `IMPORT.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# Imported from Ansible\n\n");
        s.push_str(&format!(
            "`froyo import ansible {}` converted **{} of {} tasks ({:.1} %)**. Review the \
             generated code before applying it: every line points back to its source \
             `file.yml:LINE`.\n\n",
            self.source,
            self.converted,
            self.tasks,
            self.coverage * 100.0
        ));
        s.push_str(
            "Each task that did not convert is an `unconverted(...)` call at the end of its \
             module: `froyo check` fails with `E-IMPORT` at that call, naming the source line, \
             the module and the reason, until the task is rewritten by hand and the call \
             removed (`froyo import ansible --allow-unconverted` makes them warnings).\n\n",
        );
        s.push_str("| unit | file | tasks | converted | coverage |\n|---|---|---|---|---|\n");
        for u in &self.units {
            s.push_str(&format!(
                "| {} `{}` | `{}` | {} | {} | {:.1} % |\n",
                u.kind,
                u.name,
                u.output,
                u.tasks,
                u.converted,
                u.coverage * 100.0
            ));
        }
        if !self.reasons.is_empty() {
            s.push_str("\n## Most common reasons\n\n");
            for (r, n) in &self.reasons {
                s.push_str(&format!("- {n} × {r}\n"));
            }
        }
        for u in &self.units {
            if u.unconverted.is_empty() && u.notes.is_empty() {
                continue;
            }
            s.push_str(&format!("\n## {} `{}`\n", u.kind, u.name));
            if !u.unconverted.is_empty() {
                s.push_str("\nNot converted:\n\n");
                for i in &u.unconverted {
                    s.push_str(&format!(
                        "- `{}` {}{}: {}\n",
                        i.at,
                        i.module,
                        i.task
                            .as_ref()
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default(),
                        i.reason
                    ));
                }
            }
            if !u.notes.is_empty() {
                s.push_str("\nConverted with a difference:\n\n");
                for i in &u.notes {
                    s.push_str(&format!("- `{}` {}: {}\n", i.at, i.module, i.reason));
                }
            }
        }
        s
    }
}
