//! Automatic edges (spec §3): the golden graph of a playbook written in Ansible order, its
//! apply to the local machine from scratch ten times over (and its removal), and the
//! user's edges winning over automatic ones.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::{Run, fixtures, froyo};

fn graph(args: &[&str]) -> Value {
    let mut all = vec!["graph", "--format", "json"];
    all.extend(args);
    let run = froyo(&fixtures().join("auto"), &all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("graph JSON")
}

#[test]
fn ansible_order_golden_graph() {
    let g = graph(&["ansible_order.star"]);
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] == "auto"),
        "the playbook writes no edge itself"
    );
    insta::assert_json_snapshot!("ansible_order_edges", g["edges"]);
    let dot = froyo(
        &fixtures().join("auto"),
        &["graph", "--format", "dot", "ansible_order.star"],
    );
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    insta::assert_snapshot!("ansible_order_dot", dot.stdout);
    // Same graph byte for byte, run after run.
    let again = froyo(
        &fixtures().join("auto"),
        &["graph", "--format", "dot", "ansible_order.star"],
    );
    assert_eq!(dot.stdout, again.stdout);
}

#[test]
fn ansible_order_absent_golden_graph_runs_removals_backwards() {
    let g = graph(&["ansible_order.star", "--var", "state=absent"]);
    insta::assert_json_snapshot!("ansible_order_absent_edges", g["edges"]);
}

/// A user, a group and a tree under `/tmp`, all named after the test and the PID,
/// removed when created and again when dropped (also when the test fails).
struct Scratch {
    root: String,
    user: String,
    group: String,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let pid = std::process::id();
        let s = Scratch {
            root: format!("/tmp/froyo-{tag}-{pid}"),
            user: format!("froyo-{tag}u-{pid}"),
            group: format!("froyo-{tag}g-{pid}"),
        };
        s.clean();
        s
    }

    fn clean(&self) {
        let _ = Command::new("userdel").args(["-r", &self.user]).output();
        let _ = Command::new("groupdel").arg(&self.group).output();
        let _ = Command::new("groupdel").arg(&self.user).output();
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(format!("/home/{}", self.user));
    }

    fn vars(&self) -> Vec<String> {
        vec![
            "--var".into(),
            format!("root={}", self.root),
            "--var".into(),
            format!("user={}", self.user),
            "--var".into(),
            format!("group={}", self.group),
        ]
    }

    fn exists(db: &str, name: &str) -> bool {
        Command::new("getent")
            .args([db, name])
            .output()
            .unwrap()
            .status
            .success()
    }

    fn uid(&self) -> u32 {
        let out = Command::new("id")
            .args(["-u", &self.user])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.clean();
    }
}

/// A project in a temporary directory with `fixture` as `site.star`.
fn project(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("froyo.toml"),
        "[project]\nname = \"auto\"\n",
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("auto").join(fixture),
        dir.path().join("site.star"),
    )
    .unwrap();
    dir
}

fn run(dir: &Path, args: &[&str], extra: &[String]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(extra.iter().map(String::as_str));
    froyo(dir, &all)
}

/// Line number of the plan line of `id` in `out`.
fn line_of(out: &str, id: &str) -> usize {
    out.lines()
        .position(|l| l.contains(&format!(" {id} ")))
        .unwrap_or_else(|| panic!("no plan line for {id}:\n{out}"))
}

/// The issue's first impression: without automatic edges 2 of the 20 files failed on a
/// first apply ("the directory does not exist"), a different 2 each run, and the user
/// failed on its group. Ten times from scratch, with more parallelism than the default to
/// make a wrong order show, nothing fails; the `absent` form then removes everything,
/// files before directories and the user before its group.
#[test]
fn ansible_order_converges_from_scratch_ten_times_and_absent_removes_it() {
    let s = Scratch::new("ae");
    let dir = project("ansible_order.star");
    let mut vars = s.vars();
    vars.extend(["--parallelism", "16", "--per-host", "16"].map(String::from));
    let dir_id = format!("linux.file::directory[{}/conf]", s.root);
    let file_id = format!("linux.file::file[{}/conf/file01.txt]", s.root);
    let user_id = format!("linux.user::user[{}]", s.user);
    let group_id = format!("linux.user::group[{}]", s.group);
    for round in 1..=10 {
        s.clean();
        let up = run(dir.path(), &["apply", "--yes", "site.star"], &vars);
        assert_eq!(up.code, 0, "round {round}:\n{}\n{}", up.stdout, up.stderr);
        assert!(
            up.stdout.contains("0 failed, 0 skipped") || up.stderr.contains("0 failed, 0 skipped"),
            "round {round}:\n{}\n{}",
            up.stdout,
            up.stderr
        );
        // The plan is printed in the order apply runs it.
        assert!(line_of(&up.stdout, &dir_id) < line_of(&up.stdout, &file_id));
        assert!(line_of(&up.stdout, &group_id) < line_of(&up.stdout, &user_id));
        for i in 1..=20 {
            let f = format!("{}/conf/file{i:02}.txt", s.root);
            assert_eq!(
                std::fs::read_to_string(&f).unwrap(),
                format!("file {i:02}\n"),
                "round {round}: {f}"
            );
        }
        let uid = s.uid();
        let secret = std::fs::metadata(format!("{}/data/private/secret.txt", s.root)).unwrap();
        assert_eq!(secret.uid(), uid, "round {round}");
        let private = std::fs::metadata(format!("{}/data/private", s.root)).unwrap();
        assert_eq!(private.mode() & 0o7777, 0o750, "round {round}");
        assert_eq!(
            std::fs::metadata(format!("{}/data/owned.txt", s.root))
                .unwrap()
                .uid(),
            uid
        );
        let keys =
            std::fs::read_to_string(format!("/home/{}/.ssh/authorized_keys", s.user)).unwrap();
        assert!(keys.contains("auto@froyo"), "round {round}: {keys}");

        let down = run(
            dir.path(),
            &["apply", "--yes", "site.star", "--var", "state=absent"],
            &vars,
        );
        assert_eq!(
            down.code, 0,
            "round {round}:\n{}\n{}",
            down.stdout, down.stderr
        );
        assert!(
            !Path::new(&s.root).exists(),
            "round {round}: the tree is left"
        );
        assert!(
            !Scratch::exists("passwd", &s.user),
            "round {round}: the user is left"
        );
        assert!(
            !Scratch::exists("group", &s.group),
            "round {round}: the group is left"
        );
        assert!(line_of(&down.stdout, &file_id) < line_of(&down.stdout, &dir_id));
        assert!(line_of(&down.stdout, &user_id) < line_of(&down.stdout, &group_id));
    }
}

/// Edges the playbook writes against the automatic ones win: no `E-CYCLE`, the automatic
/// edges that would close a cycle are gone, and the plan follows the playbook's order.
#[test]
fn an_explicit_edge_the_other_way_wins_without_a_cycle() {
    let s = Scratch::new("ao");
    let checked = froyo(
        &fixtures().join("auto"),
        &[
            "check",
            "opposite.star",
            "--var",
            &format!("root={}", s.root),
        ],
    );
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert!(!checked.stderr.contains("E-CYCLE"), "{}", checked.stderr);
    let g = graph(&["opposite.star"]);
    let edges: Vec<String> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} -> {} ({})",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            "linux.file::file[/tmp/froyo-opposite/f.txt] -> linux.file::directory[/tmp/froyo-opposite] (explicit)",
            "linux.user::user[froyo-opposite] -> linux.user::group[froyo-opposite-g] (explicit)",
            // Not part of any cycle: kept.
            "linux.file::directory[/tmp/froyo-opposite] -> linux.file::file[/tmp/froyo-opposite/sub/g.txt] (auto)",
        ]
    );

    // The plan (read-only) runs the file before its directory, as written.
    let dir = project("opposite.star");
    let out = dir.path().join("plan.json");
    let plan = run(
        dir.path(),
        &["plan", "site.star", "--out", out.to_str().unwrap()],
        &s.vars(),
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let ids: Vec<&str> = plan["hosts"][0]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    let at = |id: String| ids.iter().position(|i| *i == id).unwrap();
    assert!(
        at(format!("linux.file::file[{}/f.txt]", s.root))
            < at(format!("linux.file::directory[{}]", s.root)),
        "{ids:?}"
    );
    assert!(
        at(format!("linux.user::user[{}]", s.user)) < at(format!("linux.user::group[{}]", s.group)),
        "{ids:?}"
    );
}

/// froyo only orders what an automatic edge links: a directory skipped by `--tags` does
/// not skip the files in it, while a directory that fails does.
#[test]
fn an_automatic_prerequisite_skipped_by_tags_does_not_skip_but_a_failed_one_does() {
    let s = Scratch::new("at");
    std::fs::create_dir_all(format!("{}/tagged", s.root)).unwrap();
    let dir = project("skips.star");
    let vars = ["--var".to_owned(), format!("root={}", s.root)];
    let applied = run(
        dir.path(),
        &["apply", "--yes", "site.star", "--tags", "files"],
        &vars,
    );
    assert_eq!(applied.code, 1, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(
        std::fs::read_to_string(format!("{}/tagged/f.txt", s.root)).unwrap(),
        "tagged\n",
        "{}\n{}",
        applied.stdout,
        applied.stderr
    );
    let all = format!("{}\n{}", applied.stdout, applied.stderr);
    assert!(
        all.contains(&format!(
            "skipped: linux.file::directory[{}/broken] did not succeed",
            s.root
        )),
        "{all}"
    );
    assert!(!Path::new(&format!("{}/broken/f.txt", s.root)).exists());
}
