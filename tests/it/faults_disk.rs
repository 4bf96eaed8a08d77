//! Disk faults (issue 22): a full filesystem on the target, a full filesystem under the
//! state, and a damaged state file. Real `tmpfs` mounts of a fixed size (the tests run as
//! root, like the network-namespace ones) and real SQLite files; each test asserts what a
//! user relies on: a clear diagnostic, nothing half written, and a next run that converges.

use std::path::{Path, PathBuf};
use std::process::Command;

use froyo::state::Store;

use crate::engine::Proj;
use crate::fault_log::Recorded;

/// A `tmpfs` of `size` mounted on `dir` (created), unmounted on drop, also when the test
/// fails.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs on {} (needs root)", dir.display());
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Fills the filesystem to the last byte with `filler`; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        // dd stops with "No space left on device" (exit 1): that is the point.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        // A few bytes may still fit in the last block: fill those too.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=1", "oflag=append", "conv=notrunc"])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A file that does not fit on the target's filesystem fails alone (`E-PROVIDER`, with
/// the system's reason), leaves no partial or temp file behind, the old content stays, the
/// other resources are applied, and once there is room the next apply converges.
#[test]
fn a_full_target_filesystem_fails_that_file_alone_and_leaves_the_old_content() {
    let p = Proj::new("");
    let small = Tmpfs::mount(&p.out.join("small"), "64k");
    let playbook = |kib: usize| {
        format!(
            "load(\"@stdlib//linux.star\", \"file\")\n\
             file(\"{out}/other.conf\", content = \"x = {kib}\\n\")\n\
             file(\"{out}/small/big.bin\", content = \"{}\")\n",
            "a".repeat(kib * 1024),
            out = p.out.display()
        )
    };
    // A first apply that fits: its records are what the fault must not lose.
    std::fs::write(p.root.join("site.star"), playbook(16)).unwrap();
    let fits = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(fits.code, 0, "{}\n{}", fits.stdout, fits.stderr);
    let old = std::fs::read(small.dir.join("big.bin")).unwrap();
    std::fs::write(p.root.join("site.star"), playbook(200)).unwrap();
    let before = Recorded::of(&p.store());
    let full = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(full.code, 1, "{}\n{}", full.stdout, full.stderr);
    let all = format!("{}{}", full.stdout, full.stderr);
    assert!(
        all.contains("No space left on device") || all.contains("os error 28"),
        "the system's reason is shown: {all}"
    );
    assert_eq!(
        std::fs::read_to_string(p.out.join("other.conf")).unwrap(),
        "x = 200\n",
        "the other resource is applied"
    );
    assert_eq!(
        std::fs::read(small.dir.join("big.bin")).unwrap(),
        old,
        "the old content is intact"
    );
    let left: Vec<_> = std::fs::read_dir(&small.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["big.bin"], "no temp file is left behind");
    assert_eq!(p.store().integrity_check().unwrap(), "ok");
    before.survived(
        &p.store(),
        "faults_disk::a_full_target_filesystem_…",
        "the target's filesystem full during a write (64 KiB tmpfs)",
        "E-PROVIDER for that file, old content intact, no temp file, a rerun converged",
    );

    // Room again (a smaller file): the next apply converges, then nothing is left to do.
    std::fs::write(p.root.join("site.star"), playbook(24)).unwrap();
    let again = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(
        std::fs::metadata(small.dir.join("big.bin")).unwrap().len(),
        24 * 1024
    );
    let plan = p.run(&["plan", "--detailed-exitcode", "site.star"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
}

/// The state's filesystem is full: the run stops with `E-STATE` before it changes
/// anything, the earlier runs stay in the state, and once there is room the apply goes on.
#[test]
fn a_full_state_filesystem_is_e_state_changes_nothing_and_loses_nothing() {
    let p = Proj::new(
        "load(\"@stdlib//linux.star\", \"file\")\nfile(\"OUT/one.conf\", content = \"1\\n\")\n",
    );
    std::fs::create_dir_all(&p.out).unwrap();
    let state = Tmpfs::mount(&p.root.join(".froyo"), "2m");
    let first = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let runs_before = p.store().runs(100).unwrap().len();
    let before = Recorded::of(&p.store());

    std::fs::write(
        p.root.join("site.star"),
        format!(
            "load(\"@stdlib//linux.star\", \"file\")\nfile(\"{0}/one.conf\", content = \"1\\n\")\nfile(\"{0}/two.conf\", content = \"2\\n\")\n",
            p.out.display()
        ),
    )
    .unwrap();
    let filler = state.fill();
    let full = p.run(&["apply", "--yes", "site.star"]);
    assert_ne!(full.code, 0, "{}\n{}", full.stdout, full.stderr);
    assert!(
        full.stderr.contains("E-STATE") && full.stderr.contains("no space left on the"),
        "{}",
        full.stderr
    );
    assert!(
        !p.out.join("two.conf").exists(),
        "nothing changes while the run cannot be recorded"
    );

    std::fs::remove_file(filler).unwrap();
    let store = p.store();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert!(
        store.runs(100).unwrap().len() >= runs_before,
        "no run is lost"
    );
    before.survived(
        &store,
        "faults_disk::a_full_state_filesystem_…",
        "the state's filesystem full (2 MiB tmpfs)",
        "E-STATE before anything changed, a rerun converged once there was room",
    );
    drop(store);
    let again = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(
        std::fs::read_to_string(p.out.join("two.conf")).unwrap(),
        "2\n"
    );
}

/// A damaged `state.db` is `E-STATE` naming the file, with the way out in its help;
/// `froyo restore` brings the backup back although the state does not open, keeps the
/// damaged file aside, and the plan afterwards sees the restored resources as unchanged.
#[test]
fn a_damaged_state_is_e_state_and_restore_brings_the_backup_back() {
    let p = Proj::new(
        "load(\"@stdlib//linux.star\", \"file\")\nfile(\"OUT/one.conf\", content = \"1\\n\")\n",
    );
    std::fs::create_dir_all(&p.out).unwrap();
    let first = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let backup = p.root.join("state-backup.db");
    let before = Recorded::of(&p.store());
    let b = p.run(&["backup", backup.to_str().unwrap()]);
    assert_eq!(b.code, 0, "{}", b.stderr);

    // Garbage over the header: SQLite no longer recognises the file.
    let db = p.root.join(".froyo/state.db");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..100].fill(0xA5);
    std::fs::write(&db, &bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    let plan = p.run(&["plan", "site.star"]);
    assert_ne!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stderr.contains("E-STATE")
            && plan.stderr.contains("state.db")
            && plan.stderr.contains("froyo restore"),
        "{}",
        plan.stderr
    );

    // A bad backup is refused before anything moves.
    let junk = p.root.join("junk.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let refused = p.run(&["restore", junk.to_str().unwrap()]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the damaged file is untouched"
    );

    let r = p.run(&["restore", backup.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("damaged-"), "{}", r.stderr);
    let kept: Vec<_> = std::fs::read_dir(p.root.join(".froyo"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("damaged-"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(kept.contains(&bytes), "the damaged state is kept aside");
    assert_eq!(p.store().integrity_check().unwrap(), "ok");
    assert_eq!(p.store().runs(100).unwrap().len(), 1);
    // Lost counts what the backup held: what came after it was in the damaged file only.
    before.survived(
        &p.store(),
        "faults_disk::a_damaged_state_…",
        "state.db damaged (its header overwritten)",
        "E-STATE naming the file, froyo restore brought the backup back, the damaged file kept aside",
    );
    let after = p.run(&["plan", "--detailed-exitcode", "site.star"]);
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
}
