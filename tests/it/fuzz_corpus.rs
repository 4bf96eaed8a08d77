//! Replays every committed fuzz corpus file (`fuzz/corpus/TARGET/`, seeds and the inputs
//! of fixed crashes) through the same checks the fuzz targets run, on stable: CI guards
//! the corpora without nightly or libFuzzer (docs/reliability.md).

#[path = "../../fuzz/src/agent.rs"]
mod agent;
#[path = "../../fuzz/src/import.rs"]
mod import;
#[path = "../../fuzz/src/interp.rs"]
mod interp;
#[path = "../../fuzz/src/runner.rs"]
mod runner;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no corpus", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs `check` on every file of the target's corpus; fails naming each input that panics.
fn replay(target: &str, check: fn(&[u8])) {
    let failed: Vec<String> = corpus(target)
        .into_iter()
        .filter(|(_, bytes)| std::panic::catch_unwind(|| check(bytes)).is_err())
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: these inputs fail: {failed:?}");
}

#[test]
fn runner_frames() {
    replay("runner_frames", runner::runner_frames);
}

#[test]
fn controller_frames() {
    replay("controller_frames", interp::controller_frames);
}

#[test]
fn plan_file() {
    replay("plan_file", interp::plan_file);
}

#[test]
fn froyo_toml() {
    replay("froyo_toml", interp::froyo_toml);
}

#[test]
fn inventory_toml() {
    replay("inventory_toml", interp::inventory_toml);
}

#[test]
fn star_eval() {
    replay("star_eval", interp::star_eval);
}

#[test]
fn cue_eval() {
    replay("cue_eval", interp::cue_eval);
}

#[test]
fn template() {
    replay("template", interp::template);
}

#[test]
fn policy_input() {
    replay("policy_input", interp::policy_input);
}

#[test]
fn agent_recipe() {
    replay("agent_recipe", agent::agent_recipe);
}

#[test]
fn agent_api() {
    replay("agent_api", agent::agent_api);
}

#[test]
fn agent_document() {
    replay("agent_document", agent::agent_document);
}

#[test]
fn ansible_yaml() {
    replay("ansible_yaml", import::ansible_yaml);
}

/// What `star_eval` guards: before `[defaults] eval_max_ticks` and `eval_max_heap_mb`,
/// nothing bounded an evaluation (`fuzz/corpus/star_eval/regress-endless-loop.star`,
/// `regress-heap.star`). Both now stop with `E-EVAL` naming the limit.
#[test]
fn evaluation_stops_at_the_configured_limits() {
    use froyo::eval::{EvalRequest, evaluate_source};
    for (input, limits, want) in [
        (
            "regress-endless-loop.star",
            "eval_max_ticks = 100000",
            "ticks has been exceeded",
        ),
        (
            "regress-heap.star",
            "eval_max_heap_mb = 64",
            "Heap memory limit",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("froyo.toml"),
            format!("[defaults]\n{limits}\n"),
        )
        .unwrap();
        let file = dir.path().join("main.star");
        std::fs::write(&file, "").unwrap();
        let project = froyo::project::Project::at(dir.path().to_owned()).unwrap();
        let inventory = froyo::inventory::Inventory::local_only(&Default::default());
        let req = EvalRequest {
            project: &project,
            inventory: &inventory,
            registry: froyo::schema::Registry::builtin(),
            file: &file,
            more: &[],
            on: Default::default(),
            facts: None,
        };
        let text = corpus("star_eval")
            .into_iter()
            .find(|(p, _)| p.ends_with(input))
            .map(|(_, b)| String::from_utf8(b).unwrap())
            .unwrap();
        let started = std::time::Instant::now();
        let out = evaluate_source(&req, Some(text));
        let messages: Vec<String> = out.diagnostics.iter().map(|d| d.message.clone()).collect();
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "{input}: {messages:?}"
        );
        assert!(
            started.elapsed().as_secs() < 30,
            "{input} took {:?}",
            started.elapsed()
        );
    }
}
