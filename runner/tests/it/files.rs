//! `file.*`, `dir.ensure` and `symlink.ensure` on real files in a scratch directory.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::{Value, json};

use crate::harness::{Runner, Scratch, sha256_hex};

#[test]
fn write_stat_read_remove_round_trip() {
    let dir = Scratch::new("roundtrip");
    let path = dir.p("hello.txt");
    let mut runner = Runner::start();

    let w = runner.ok(
        1,
        "file.write",
        json!({"path": path, "content": "hello\n", "mode": "0640"}),
    );
    assert_eq!(
        w,
        json!({"changed": true, "sha256": sha256_hex(b"hello\n"), "previous_sha256": null})
    );

    let s = runner.ok(2, "file.stat", json!({"paths": [path]}));
    let e = &s["stats"][0];
    assert_eq!(e["exists"], true);
    assert_eq!(e["kind"], "file");
    assert_eq!(e["size"], 6);
    assert_eq!(e["mode"], "0640");
    assert_eq!(e["sha256"], sha256_hex(b"hello\n"));
    let md = fs::metadata(&path).expect("written");
    assert_eq!(e["uid"], md.uid());
    assert_eq!(e["mtime"], md.mtime());
    assert!(e["owner"].is_string(), "owner name resolved: {e}");
    assert_eq!(e["error"], json!(null));
    assert_eq!(e["link_target"], json!(null));

    let r = runner.ok(3, "file.read", json!({"path": path}));
    assert_eq!(
        r,
        json!({"content": "hello\n", "content_b64": null, "size": 6, "sha256": sha256_hex(b"hello\n")})
    );

    let w = runner.ok(4, "file.write", json!({"path": path, "content": "bye\n"}));
    assert_eq!(w["changed"], true);
    assert_eq!(w["previous_sha256"], sha256_hex(b"hello\n"));
    assert_eq!(
        fs::metadata(&path).map(|m| m.mode() & 0o7777).ok(),
        Some(0o640),
        "mode kept when not given"
    );

    assert_eq!(
        runner.ok(5, "file.remove", json!({"path": path})),
        json!({"changed": true})
    );
    assert_eq!(
        runner.ok(6, "file.remove", json!({"path": path})),
        json!({"changed": false})
    );
    let s = runner.ok(7, "file.stat", json!({"paths": [path]}));
    assert_eq!(s["stats"][0]["exists"], false);
    assert_eq!(s["stats"][0]["kind"], json!(null));
}

#[test]
fn unchanged_write_reports_changed_false_and_keeps_the_inode() {
    let dir = Scratch::new("unchanged");
    let path = dir.p("f");
    let mut runner = Runner::start();
    runner.ok(
        1,
        "file.write",
        json!({"path": path, "content": "same", "mode": "0600"}),
    );
    let inode = fs::metadata(&path).map(|m| m.ino()).ok();
    let w = runner.ok(
        2,
        "file.write",
        json!({"path": path, "content": "same", "mode": "0600"}),
    );
    assert_eq!(w["changed"], false);
    assert_eq!(w["previous_sha256"], w["sha256"]);
    assert_eq!(fs::metadata(&path).map(|m| m.ino()).ok(), inode);
    // Same content, other mode: fixed in place.
    let w = runner.ok(
        3,
        "file.write",
        json!({"path": path, "content": "same", "mode": "0644"}),
    );
    assert_eq!(w["changed"], true);
    assert_eq!(
        fs::metadata(&path)
            .map(|m| (m.ino(), m.mode() & 0o7777))
            .ok(),
        inode.map(|i| (i, 0o644))
    );
}

#[test]
fn write_is_atomic_old_handle_keeps_old_content_and_no_temp_is_left() {
    let dir = Scratch::new("atomic");
    let path = dir.join("config");
    fs::write(&path, "old content\n").expect("seed");
    let mut old = fs::File::open(&path).expect("open old");
    let old_inode = fs::metadata(&path).map(|m| m.ino()).ok();
    let mut runner = Runner::start();
    runner.ok(
        1,
        "file.write",
        json!({"path": path, "content": "new content\n"}),
    );
    let mut seen = String::new();
    old.read_to_string(&mut seen).expect("read old handle");
    assert_eq!(
        seen, "old content\n",
        "the old file was replaced, not rewritten in place"
    );
    assert_ne!(fs::metadata(&path).map(|m| m.ino()).ok(), old_inode);
    assert_eq!(
        fs::read_to_string(&path).ok().as_deref(),
        Some("new content\n")
    );
    let names: Vec<String> = fs::read_dir(&dir.path)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, ["config"]);
}

#[test]
fn concurrent_readers_never_see_a_partial_file() {
    let dir = Scratch::new("readers");
    let path = dir.join("big");
    let size = 512 * 1024;
    fs::write(&path, vec![b'a'; size]).expect("seed");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop) = (path.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let bytes = fs::read(&path).expect("the path always exists");
                assert_eq!(bytes.len(), size, "partial file seen");
                assert!(bytes.iter().all(|b| *b == bytes[0]), "mixed file seen");
                reads += 1;
            }
            reads
        })
    };
    let mut runner = Runner::start();
    for i in 0..20u64 {
        let fill = if i % 2 == 0 { "b" } else { "a" };
        runner.ok(
            i + 1,
            "file.write",
            json!({"path": path, "content": fill.repeat(size)}),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader saw only whole files");
    assert!(reads > 0);
}

#[test]
fn expect_sha256_protects_against_concurrent_edits() {
    let dir = Scratch::new("expect");
    let path = dir.p("f");
    let mut runner = Runner::start();
    // "" means "must not exist yet".
    let w = runner.ok(
        1,
        "file.write",
        json!({"path": path, "content": "v1", "expect_sha256": ""}),
    );
    assert_eq!(w["changed"], true);
    let (class, message) = runner.err(
        2,
        "file.write",
        json!({"path": path, "content": "v2", "expect_sha256": ""}),
    );
    assert_eq!(class, "conflict");
    assert!(message.contains(&sha256_hex(b"v1")), "{message}");
    // Somebody else edits the file behind our back.
    fs::write(&path, "edited elsewhere").expect("edit");
    let (class, _) = runner.err(
        3,
        "file.write",
        json!({"path": path, "content": "v2", "expect_sha256": sha256_hex(b"v1")}),
    );
    assert_eq!(class, "conflict");
    assert_eq!(
        fs::read_to_string(&path).ok().as_deref(),
        Some("edited elsewhere"),
        "not overwritten"
    );
    let w = runner.ok(4, "file.write", json!({"path": path, "content": "v2", "expect_sha256": sha256_hex(b"edited elsewhere").to_uppercase()}));
    assert_eq!(w["changed"], true);
    let (class, _) = runner.err(
        5,
        "file.write",
        json!({"path": path, "content": "v3", "expect_sha256": "xyz"}),
    );
    assert_eq!(class, "permanent");
}

#[test]
fn binary_content_goes_through_base64() {
    let dir = Scratch::new("binary");
    let path = dir.p("bin");
    let bytes: Vec<u8> = (0..=255u8).collect();
    let b64 = froyo_runner::encoding::base64_encode(&bytes);
    let mut runner = Runner::start();
    let w = runner.ok(1, "file.write", json!({"path": path, "content_b64": b64}));
    assert_eq!(w["sha256"], sha256_hex(&bytes));
    assert_eq!(fs::read(&path).ok(), Some(bytes.clone()));
    let r = runner.ok(2, "file.read", json!({"path": path}));
    assert_eq!(r["content"], json!(null));
    assert_eq!(r["content_b64"], b64);
    assert_eq!(r["size"], 256);
    let (class, message) = runner.err(
        3,
        "file.write",
        json!({"path": path, "content_b64": "not base64!"}),
    );
    assert_eq!(class, "permanent");
    assert!(message.starts_with("invalid `content_b64`"), "{message}");
    let (_, message) = runner.err(
        4,
        "file.write",
        json!({"path": path, "content": "a", "content_b64": "YQ=="}),
    );
    assert_eq!(message, "give exactly one of `content` and `content_b64`");
}

#[test]
fn read_refuses_large_files_directories_and_missing_files() {
    let dir = Scratch::new("read");
    fs::write(dir.join("big"), vec![b'x'; 100]).expect("seed");
    let mut runner = Runner::start();
    let (class, message) = runner.err(
        1,
        "file.read",
        json!({"path": dir.p("big"), "max_bytes": 99}),
    );
    assert_eq!(class, "permanent");
    assert!(message.contains("larger than `max_bytes`"), "{message}");
    assert_eq!(
        runner.ok(
            2,
            "file.read",
            json!({"path": dir.p("big"), "max_bytes": 100})
        )["size"],
        100
    );
    let (_, message) = runner.err(3, "file.read", json!({"path": dir.p("")}));
    assert!(message.contains("not a regular file"), "{message}");
    let (class, message) = runner.err(4, "file.read", json!({"path": dir.p("missing")}));
    assert_eq!(class, "permanent");
    assert!(message.contains("No such file"), "{message}");
    let (class, message) = runner.err(
        6,
        "file.write",
        json!({"path": dir.p("no/such/dir/f"), "content": "x"}),
    );
    assert_eq!(class, "permanent");
    assert_eq!(
        message,
        format!("the directory `{}` does not exist", dir.p("no/such/dir"))
    );
    let (_, message) = runner.err(5, "file.read", json!({"path": "relative/path"}));
    assert_eq!(
        message,
        "`path` must be an absolute path, got `relative/path`"
    );
}

#[test]
fn write_owner_group_by_name_and_id() {
    let dir = Scratch::new("owner");
    let path = dir.p("owned");
    let mut runner = Runner::start();
    let me = fs::metadata(&dir.path)
        .map(|m| (m.uid(), m.gid()))
        .expect("scratch metadata");
    runner.ok(
        1,
        "file.write",
        json!({"path": path, "content": "x", "owner": me.0.to_string(), "group": me.1.to_string()}),
    );
    let w = runner.ok(
        2,
        "file.write",
        json!({"path": path, "content": "x", "owner": me.0.to_string()}),
    );
    assert_eq!(w["changed"], false);
    let (class, message) = runner.err(
        3,
        "file.write",
        json!({"path": path, "content": "x", "owner": "no-such-user-froyo"}),
    );
    assert_eq!(
        (class.as_str(), message.as_str()),
        ("permanent", "unknown user `no-such-user-froyo`")
    );
    if me.0 == 0 {
        let w = runner.ok(
            4,
            "file.write",
            json!({"path": path, "content": "y", "owner": "4321", "group": "4322", "mode": "0604"}),
        );
        assert_eq!(w["changed"], true);
        let md = fs::metadata(&path).expect("stat");
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (4321, 4322, 0o604)
        );
        // Content changes keep the owner that is there.
        runner.ok(5, "file.write", json!({"path": path, "content": "z"}));
        let md = fs::metadata(&path).expect("stat");
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (4321, 4322, 0o604)
        );
    }
}

#[test]
fn stat_of_500_paths_in_one_command() {
    let dir = Scratch::new("stat500");
    let mut paths = Vec::new();
    for i in 0..500 {
        let p = dir.join(&format!("f{i}"));
        if i % 2 == 0 {
            fs::write(&p, format!("file {i}")).expect("seed");
        }
        paths.push(p.to_string_lossy().into_owned());
    }
    let mut runner = Runner::start();
    let r = runner.ok(1, "file.stat", json!({"paths": paths}));
    let stats = r["stats"].as_array().expect("stats");
    assert_eq!(stats.len(), 500);
    for (i, e) in stats.iter().enumerate() {
        assert_eq!(e["path"], Value::String(paths[i].clone()), "order kept");
        assert_eq!(e["exists"], i % 2 == 0);
        if i % 2 == 0 {
            assert_eq!(e["sha256"], sha256_hex(format!("file {i}").as_bytes()));
        }
    }
}

#[test]
fn stat_kinds_symlinks_hash_options_and_per_path_errors() {
    let dir = Scratch::new("statkinds");
    fs::write(dir.join("file"), "abc").expect("seed");
    fs::create_dir(dir.join("dir")).expect("mkdir");
    std::os::unix::fs::symlink("file", dir.join("link")).expect("symlink");
    let locked = dir.join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::write(locked.join("inner"), "x").expect("seed");
    let mut runner = Runner::start();
    let paths = [
        dir.p("file"),
        dir.p("dir"),
        dir.p("link"),
        "/dev/null".to_string(),
    ];
    let r = runner.ok(1, "file.stat", json!({"paths": paths}));
    let kinds: Vec<&Value> = r["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(
        kinds,
        [
            &json!("file"),
            &json!("dir"),
            &json!("symlink"),
            &json!("other")
        ]
    );
    assert_eq!(r["stats"][2]["link_target"], "file");
    assert_eq!(
        r["stats"][2]["sha256"],
        json!(null),
        "symlinks are not followed"
    );
    let r = runner.ok(
        2,
        "file.stat",
        json!({"paths": [dir.p("file")], "sha256": false}),
    );
    assert_eq!(r["stats"][0]["sha256"], json!(null));
    let r = runner.ok(
        3,
        "file.stat",
        json!({"paths": [dir.p("file")], "max_hash_bytes": 2}),
    );
    assert_eq!(r["stats"][0]["sha256"], json!(null));
    assert_eq!(r["stats"][0]["size"], 3);
    let (class, _) = runner.err(
        4,
        "file.stat",
        json!({"paths": [dir.p("file"), "relative"]}),
    );
    assert_eq!(class, "permanent");
    // Permission problems stay in their entry; root is never denied, so only check
    // that as another user.
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    let r = runner.ok(
        5,
        "file.stat",
        json!({"paths": [locked.join("inner"), dir.p("file")]}),
    );
    let root = fs::metadata(&dir.path)
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root {
        assert!(
            r["stats"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("Permission denied")),
            "{r}"
        );
    }
    assert_eq!(r["stats"][1]["exists"], true);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
}

#[test]
fn remove_directories_only_recursively_when_asked() {
    let dir = Scratch::new("remove");
    fs::create_dir_all(dir.join("tree/sub")).expect("mkdir");
    fs::write(dir.join("tree/sub/f"), "x").expect("seed");
    fs::create_dir(dir.join("empty")).expect("mkdir");
    std::os::unix::fs::symlink(dir.join("tree"), dir.join("link")).expect("symlink");
    let mut runner = Runner::start();
    let (class, message) = runner.err(1, "file.remove", json!({"path": dir.p("tree")}));
    assert_eq!(class, "permanent");
    assert!(message.contains("set `recursive`"), "{message}");
    assert_eq!(
        runner.ok(2, "file.remove", json!({"path": dir.p("empty")}))["changed"],
        true
    );
    // A symlink to a directory is removed itself; its target stays.
    assert_eq!(
        runner.ok(
            3,
            "file.remove",
            json!({"path": dir.p("link"), "recursive": true})
        )["changed"],
        true
    );
    assert!(dir.join("tree/sub/f").exists());
    assert_eq!(
        runner.ok(
            4,
            "file.remove",
            json!({"path": dir.p("tree"), "recursive": true})
        )["changed"],
        true
    );
    assert!(!dir.join("tree").exists());
    let (_, message) = runner.err(5, "file.remove", json!({"path": "/", "recursive": true}));
    assert_eq!(message, "refusing to remove `/`");
}

#[test]
fn dir_ensure_creates_converges_and_reports() {
    let dir = Scratch::new("dirensure");
    let target = dir.p("a/b/c");
    let mut runner = Runner::start();
    assert_eq!(
        runner.ok(1, "dir.ensure", json!({"path": target, "mode": "0750"}))["changed"],
        true
    );
    assert_eq!(
        fs::metadata(&target).map(|m| m.mode() & 0o7777).ok(),
        Some(0o750)
    );
    assert_eq!(
        runner.ok(2, "dir.ensure", json!({"path": target, "mode": "0750"}))["changed"],
        false
    );
    assert_eq!(
        runner.ok(3, "dir.ensure", json!({"path": target}))["changed"],
        false
    );
    assert_eq!(
        runner.ok(4, "dir.ensure", json!({"path": target, "mode": "0700"}))["changed"],
        true
    );
    let (class, message) = runner.err(
        5,
        "dir.ensure",
        json!({"path": dir.p("x/y"), "parents": false}),
    );
    assert_eq!(class, "permanent");
    assert!(message.contains("`parents` is false"), "{message}");
    fs::write(dir.join("file"), "").expect("seed");
    let (_, message) = runner.err(6, "dir.ensure", json!({"path": dir.p("file")}));
    assert!(
        message.contains("exists and is not a directory"),
        "{message}"
    );
    let (_, message) = runner.err(7, "dir.ensure", json!({"path": target, "mode": "999"}));
    assert!(message.starts_with("invalid mode `999`"), "{message}");
}

#[test]
fn symlink_ensure_creates_retargets_and_refuses_files() {
    let dir = Scratch::new("symlink");
    let link = dir.p("current");
    let mut runner = Runner::start();
    let r = runner.ok(
        1,
        "symlink.ensure",
        json!({"path": link, "target": "releases/1"}),
    );
    assert_eq!(r, json!({"changed": true, "previous_target": null}));
    let r = runner.ok(
        2,
        "symlink.ensure",
        json!({"path": link, "target": "releases/1"}),
    );
    assert_eq!(
        r,
        json!({"changed": false, "previous_target": "releases/1"})
    );
    let r = runner.ok(
        3,
        "symlink.ensure",
        json!({"path": link, "target": "/srv/releases/2"}),
    );
    assert_eq!(r, json!({"changed": true, "previous_target": "releases/1"}));
    assert_eq!(fs::read_link(&link).ok(), Some("/srv/releases/2".into()));

    fs::write(dir.join("plain"), "data").expect("seed");
    let (class, message) = runner.err(
        4,
        "symlink.ensure",
        json!({"path": dir.p("plain"), "target": "x"}),
    );
    assert_eq!(class, "permanent");
    assert!(message.contains("regular file; set `force`"), "{message}");
    assert_eq!(
        fs::read_to_string(dir.join("plain")).ok().as_deref(),
        Some("data")
    );
    let r = runner.ok(
        5,
        "symlink.ensure",
        json!({"path": dir.p("plain"), "target": "x", "force": true}),
    );
    assert_eq!(r["changed"], true);
    assert_eq!(fs::read_link(dir.join("plain")).ok(), Some("x".into()));

    fs::create_dir_all(dir.join("full/sub")).expect("mkdir");
    let (_, message) = runner.err(
        6,
        "symlink.ensure",
        json!({"path": dir.p("full"), "target": "x", "force": true}),
    );
    assert!(message.contains("never replaced"), "{message}");
    fs::create_dir(dir.join("empty")).expect("mkdir");
    assert_eq!(
        runner.ok(
            7,
            "symlink.ensure",
            json!({"path": dir.p("empty"), "target": "x", "force": true})
        )["changed"],
        true
    );
    let leftovers: Vec<String> = fs::read_dir(&dir.path)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(".froyo-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
