//! What `froyo` itself reads: frames from a target, a saved plan, `froyo.toml`,
//! `inventory.toml`, `.star` and `.cue` playbooks, templates and the policy input.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use froyo::diag::{Diagnostic, render};
use froyo::eval::{EvalRequest, evaluate_source};
use froyo::inventory::Inventory;
use froyo::plan::Plan;
use froyo::policy::Policies;
use froyo::project::{Project, Settings};
use froyo::schema::Registry;
use froyo::selector::Selector;
use froyo::transport::{FrameLine, Routed, read_frame, route};
use froyo_runner::protocol::{ErrorClass, ErrorFrame, RunnerFrame};
use serde_json::{Map, Value as Json, json};

/// The frame limit used here: small, so fuzz inputs cross it (the controller's is 64 MiB).
pub const MAX_FRAME: usize = 4096;

/// Polls a future that never waits (the reader is a byte slice) to its end.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Reads `data` as the controller reads a runner's stdout (the first byte sets the
/// read buffer's size, so lines straddle buffer refills) and routes every frame.
pub fn controller_frames(data: &[u8]) {
    let (cap, stream) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => (1, data),
    };
    let mut reader = tokio::io::BufReader::with_capacity(cap, stream);
    block_on(async {
        loop {
            match read_frame(&mut reader, MAX_FRAME).await {
                Ok(Some(FrameLine::Line(line))) => {
                    assert!(line.len() <= MAX_FRAME, "a frame of {} bytes", line.len());
                    assert!(!line.contains(&b'\n'));
                    check_routed(&line);
                }
                // The session ends there.
                Ok(Some(FrameLine::TooLong)) | Ok(None) => break,
                Err(e) => panic!("reading a byte slice failed: {e}"),
            }
        }
    });
}

/// Round trip: the frame a line routes to, encoded again, routes the same way.
fn check_routed(line: &[u8]) {
    let routed = route(line);
    let again = match &routed {
        Routed::Outcome(id, Ok(result)) => RunnerFrame::Done(froyo_runner::protocol::Done {
            id: *id,
            result: result.clone(),
        }),
        Routed::Outcome(id, Err(e)) => {
            assert_ne!(*id, 0, "an outcome for id 0");
            RunnerFrame::Error(ErrorFrame {
                id: *id,
                class: e.class(),
                message: e.to_string(),
            })
        }
        Routed::Rejected(message) => RunnerFrame::Error(ErrorFrame {
            id: 0,
            class: ErrorClass::Permanent,
            message: message.clone(),
        }),
        Routed::Ignored(frame) => frame.clone(),
        Routed::Unreadable(why) => {
            assert!(!why.is_empty());
            return;
        }
    };
    assert_eq!(route(again.to_line().as_bytes()), routed, "round trip");
}

/// `apply --plan FILE`: the saved plan is read and checked, and a plan that is read
/// saves back to a plan that reads the same.
pub fn plan_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Plan::from_saved(Path::new("plan.json"), text) {
        Ok(plan) => {
            let saved = serde_json::to_string(&plan).expect("a plan serializes");
            let back = Plan::from_saved(Path::new("plan.json"), &saved).expect("reads back");
            let again = serde_json::to_string(&back).expect("a plan serializes");
            assert_eq!(saved, again, "round trip");
        }
        Err(e) => show(&e.to_diagnostic()),
    }
}

/// `froyo.toml`, then its `[policy]` table as `check` reads it.
pub fn froyo_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Settings::parse(Path::new("froyo.toml"), text) {
        Ok(settings) => {
            let project = Project {
                root: PathBuf::from("/nonexistent/froyo-fuzz"),
                settings,
            };
            if let Err(e) = froyo::policy::PolicySettings::of(&project) {
                show(&e.to_diagnostic());
            }
        }
        Err(e) => show(&e.to_diagnostic()),
    }
}

/// `inventory.toml`, then a few selections over its targets.
pub fn inventory_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Inventory::parse(Path::new("inventory.toml"), text, &Map::new()) {
        Ok(inv) => {
            assert!(inv.targets.iter().any(|t| t.name == "local"));
            for sel in [
                "*",
                "local",
                "role=web",
                "!local",
                "env in (prod,stage),name~web-*",
            ] {
                if let Ok(sel) = Selector::parse(sel) {
                    let _ = inv.select(&sel);
                }
            }
        }
        Err(e) => show(&e.to_diagnostic()),
    }
}

/// A scratch project: a directory with the playbook files evaluation canonicalizes and a
/// `froyo.toml` setting evaluation limits.
struct Scratch {
    _dir: tempfile::TempDir,
    project: Project,
    inventory: Inventory,
    star: PathBuf,
    cue: PathBuf,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let star = dir.path().join("main.star");
        let cue = dir.path().join("main.cue");
        std::fs::write(&star, "").expect("write main.star");
        std::fs::write(&cue, "").expect("write main.cue");
        // The configured limits evaluation must stay within (well inside -timeout=10 and
        // -rss_limit_mb=512).
        std::fs::write(
            dir.path().join("froyo.toml"),
            "[defaults]\neval_max_ticks = 20000000\neval_max_heap_mb = 256\n",
        )
        .expect("write froyo.toml");
        let project = Project::at(dir.path().to_owned()).expect("the scratch project");
        Scratch {
            project,
            inventory: Inventory::local_only(&Map::new()),
            star,
            cue,
            _dir: dir,
        }
    })
}

fn evaluate(file: &Path, text: &str) {
    let s = scratch();
    let req = EvalRequest {
        project: &s.project,
        inventory: &s.inventory,
        registry: Registry::builtin(),
        file,
        more: &[],
        on: Selector::default(),
        facts: None,
    };
    let out = evaluate_source(&req, Some(text.to_owned()));
    for d in out.diagnostics.iter().take(8) {
        show(d);
    }
}

/// A `.star` playbook, evaluated offline (no facts).
pub fn star_eval(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        evaluate(&scratch().star, text);
    }
}

/// A `.cue` playbook, evaluated by libcue.
pub fn cue_eval(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        evaluate(&scratch().cue, text);
    }
}

/// A template rendered through `template()`'s renderer (strict undefined, fuel).
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = json!({
        "name": "web",
        "port": 8080,
        "ratio": 0.5,
        "enabled": true,
        "users": [{"name": "ada", "groups": ["adm", "sudo"]}, {"name": "bob", "groups": []}],
        "env": {"HOME": "/root", "PATH": "/usr/bin"},
        "nothing": null,
    });
    let _ = froyo::eval::template::render("fuzz.j2", text, &vars);
}

/// The policy input document evaluated by the bundled policies.
pub fn policy_input(data: &[u8]) {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    let policies = POLICIES.get_or_init(|| {
        Policies::for_project(&scratch().project, true).expect("the bundled policies")
    });
    let Ok(input) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    let _ = policies.evaluate(&input);
}

/// Renders a diagnostic as the CLI does (its source spans must hold).
fn show(d: &Diagnostic) {
    let _ = render(d, false, 100);
}
