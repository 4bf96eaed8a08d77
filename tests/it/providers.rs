//! The WebAssembly provider host against real components: the sandbox limits (undeclared
//! import, infinite loop, memory bomb) with the host still working after each, a declared
//! capability end to end, and `linux.file`'s read → diff → apply → read-again cycle on
//! the real filesystem through the local runner.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use froyo::inventory::Inventory;
use froyo::provider_host::{Limits, ProviderHost, Resource, manifest_capabilities};
use froyo::transport::{Connector, Session};
use serde_json::{Value, json};

fn guest(name: &str) -> (Vec<String>, Vec<u8>) {
    let dir = crate::repo().join("providers/test-guests").join(name);
    let manifest = std::fs::read_to_string(dir.join("manifest.toml")).unwrap();
    let wasm_name = format!("froyo_test_guest_{}.wasm", name.replace('-', "_"));
    let wasm = std::fs::read(PathBuf::from(env!("FROYO_GUEST_DIR")).join(wasm_name)).unwrap();
    (manifest_capabilities(&manifest).unwrap(), wasm)
}

fn host(limits: Limits) -> ProviderHost {
    let mut host = ProviderHost::new(limits, None).unwrap();
    for name in ["echo", "undeclared-import", "spin", "memory-bomb"] {
        let (caps, wasm) = guest(name);
        host.load(name, caps, &wasm).unwrap();
    }
    host
}

fn res(id: &str, ty: &str, config: Value) -> Resource {
    Resource {
        id: id.into(),
        type_name: ty.into(),
        config: config.to_string(),
    }
}

/// A local runner session and the runtime that drives it.
pub(crate) fn local_session() -> (tokio::runtime::Runtime, Arc<Session>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let inv = Inventory::local_only(&Default::default());
    let session = rt
        .block_on(Connector::at_root(Path::new("/tmp")).open(&inv.targets[0], false))
        .unwrap();
    (rt, Arc::new(session))
}

#[test]
fn sandbox_limits_stop_hostile_guests_and_the_host_keeps_working() {
    let (rt, session) = local_session();
    let mut host = host(Limits {
        fuel: 500_000_000,
        memory_bytes: 32 << 20,
    });
    host.runtime = Some(rt.handle().clone());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "hi").unwrap();
    let thing = |p: &Path| {
        vec![res(
            "x",
            "test.echo::thing",
            json!({"name": "x", "path": p.display().to_string()}),
        )]
    };

    let ok = |host: &ProviderHost| {
        let actual = host
            .read("echo", Some(session.clone()), &thing(&file))
            .unwrap();
        let state: Value = serde_json::from_str(&actual[0].state).unwrap();
        assert_eq!(state["size"], 2, "{state}");
    };
    ok(&host);

    let err = host
        .read("undeclared-import", Some(session.clone()), &thing(&file))
        .unwrap_err();
    assert!(
        err.class.is_none() && err.message.contains("without declaring `runner:exec`"),
        "{err}"
    );
    ok(&host);

    let err = host.read("spin", None, &thing(&file)).unwrap_err();
    assert!(err.message.contains("CPU budget"), "{err}");
    ok(&host);

    let err = host.read("memory-bomb", None, &thing(&file)).unwrap_err();
    assert!(err.message.contains("memory"), "{err}");
    ok(&host);
}

#[test]
fn unknown_capabilities_and_broken_components_are_refused() {
    let mut host = ProviderHost::new(Limits::default(), None).unwrap();
    let (_, wasm) = guest("echo");
    let err = host
        .load("x", vec!["net:everything".into()], &wasm)
        .unwrap_err();
    assert!(err.message.contains("unknown capability"), "{err}");
    let err = host.load("y", vec![], b"\0asm not really").unwrap_err();
    assert!(err.message.contains("not a valid component"), "{err}");
}

#[test]
fn linux_file_converges_on_the_real_filesystem() {
    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    assert!(host.providers().any(|p| p == "linux.file"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("conf.d");
    let f = d.join("app.conf");
    let l = dir.path().join("current");
    let resources = vec![
        res(
            "d",
            "linux.file::directory",
            json!({"path": d.display().to_string(), "mode": "0750", "state": "directory", "recurse": false}),
        ),
        res(
            "f",
            "linux.file::file",
            json!({"path": f.display().to_string(), "content": "port = 80\n", "mode": "0640", "state": "file", "backup": false}),
        ),
        res(
            "l",
            "linux.file::symlink",
            json!({"path": l.display().to_string(), "target": f.display().to_string(), "state": "link"}),
        ),
    ];
    let converge = |host: &ProviderHost| -> Vec<String> {
        let actual = host
            .read("linux.file", Some(session.clone()), &resources)
            .unwrap();
        let mut summaries = Vec::new();
        for (r, a) in resources.iter().zip(&actual) {
            for op in host.diff("linux.file", r, a).unwrap() {
                summaries.push(format!("{} {}", op.kind, op.id));
                let out = host
                    .apply("linux.file", Some(session.clone()), &op)
                    .unwrap();
                assert!(out.changed, "{op:?}");
            }
        }
        summaries
    };
    let first = converge(&host);
    assert_eq!(first, ["create d", "create f", "create l"]);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "port = 80\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    assert_eq!(std::fs::read_link(&l).unwrap(), f);
    // Read again: nothing to do.
    assert!(converge(&host).is_empty());
    // A hand edit is found and shown as a unified diff, then fixed.
    std::fs::write(&f, "port = 8080\n").unwrap();
    let actual = host
        .read("linux.file", Some(session.clone()), &resources[1..2])
        .unwrap();
    let ops = host.diff("linux.file", &resources[1], &actual[0]).unwrap();
    assert_eq!(ops.len(), 1);
    let diff = ops[0].diff.clone().unwrap_or_default();
    assert!(
        diff.contains("-port = 8080") && diff.contains("+port = 80"),
        "{diff}"
    );
    assert_eq!(converge(&host), ["update f"]);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "port = 80\n");
}

/// A resource whose config went through the real CUE schema (defaults filled).
pub(crate) fn validated(ty: &str, id: &str, config: Value) -> Resource {
    let reg = froyo::schema::Registry::builtin();
    let t = reg.get(ty).unwrap();
    let mut v = froyo::schema::Validator::new().unwrap();
    let out = v
        .validate(t, std::slice::from_ref(&config))
        .unwrap()
        .remove(0)
        .unwrap_or_else(|e| panic!("{ty} {config}: {e:?}"));
    Resource {
        id: id.into(),
        type_name: ty.into(),
        config: out.to_string(),
    }
}

/// read → diff → apply every op → read again; returns `kind id: summary` of the ops.
pub(crate) fn converge(
    host: &ProviderHost,
    provider: &str,
    session: &Arc<Session>,
    resources: &[Resource],
) -> Vec<String> {
    let actual = host
        .read(provider, Some(session.clone()), resources)
        .unwrap();
    assert_eq!(actual.len(), resources.len());
    let mut done = Vec::new();
    for (r, a) in resources.iter().zip(&actual) {
        for op in host.diff(provider, r, a).unwrap() {
            done.push(format!("{} {}: {}", op.kind, op.id, op.summary));
            host.apply(provider, Some(session.clone()), &op)
                .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
    }
    done
}

#[test]
fn linux_exec_runs_guarded_commands_once_and_unguarded_ones_always() {
    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("migrated");
    let log = dir.path().join("log");
    let cmds = vec![
        validated(
            "linux.exec::command",
            "migrate",
            json!({"name": "migrate", "argv": ["touch", marker.display().to_string()], "creates": marker.display().to_string()}),
        ),
        validated(
            "linux.exec::command",
            "seed",
            json!({"name": "seed", "shell": format!("echo seeded >> {}", log.display()), "unless": ["test", "-s", log.display().to_string()]}),
        ),
        validated(
            "linux.exec::command",
            "always",
            json!({"name": "always", "argv": ["true"]}),
        ),
    ];
    let first = converge(&host, "linux.exec", &session, &cmds);
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first[2].contains("unguarded"), "{first:?}");
    assert!(marker.exists());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "seeded\n");
    let second = converge(&host, "linux.exec", &session, &cmds);
    assert_eq!(
        second.len(),
        1,
        "only the unguarded command runs again: {second:?}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "seeded\n");
    // A failing command is a provider error with its output, not a trap.
    let bad = validated(
        "linux.exec::command",
        "bad",
        json!({"name": "bad", "shell": "echo boom >&2; exit 3"}),
    );
    let actual = host
        .read(
            "linux.exec",
            Some(session.clone()),
            std::slice::from_ref(&bad),
        )
        .unwrap();
    let op = host.diff("linux.exec", &bad, &actual[0]).unwrap().remove(0);
    let err = host
        .apply("linux.exec", Some(session.clone()), &op)
        .unwrap_err();
    assert!(err.class.is_some() && err.message.contains("boom"), "{err}");
}

/// Needs root to create users (CI runs as root).
#[test]
fn linux_user_manages_groups_users_and_keys() {
    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let (user, group) = ("froyo-it-usr", "froyo-it-grp");
    let cleanup = || {
        let _ = std::process::Command::new("userdel")
            .args(["-r", user])
            .output();
        let _ = std::process::Command::new("groupdel").arg(group).output();
    };
    cleanup();
    struct Guard<F: Fn()>(F);
    impl<F: Fn()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _guard = Guard(cleanup);
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbRZ0gQ0r8dEYX1iKcYeCEaSsHK1HmRqCm5hNQdNdHc it@froyo";
    let resources = vec![
        validated(
            "linux.user::group",
            group,
            json!({"name": group, "gid": 2901}),
        ),
        validated(
            "linux.user::user",
            user,
            json!({"name": user, "group": group, "shell": "/bin/sh", "home": format!("/home/{user}")}),
        ),
        validated(
            "linux.user::authorized_keys",
            user,
            json!({"user": user, "keys": [key]}),
        ),
    ];
    let first = converge(&host, "linux.user", &session, &resources);
    assert_eq!(first.len(), 3, "{first:?}");
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with(&format!("{user}:")) && l.ends_with(":/bin/sh")),
        "user missing"
    );
    let group_line = std::fs::read_to_string("/etc/group").unwrap();
    assert!(
        group_line
            .lines()
            .any(|l| l.starts_with(&format!("{group}:x:2901:"))),
        "group missing"
    );
    let keys = std::fs::read_to_string(format!("/home/{user}/.ssh/authorized_keys")).unwrap();
    assert!(keys.contains(key));
    assert!(
        converge(&host, "linux.user", &session, &resources).is_empty(),
        "second run must be a no-op"
    );
}

/// A project whose `froyo.toml` pins an extra provider directory (the `echo` test guest).
fn project_with_extra_provider(pin: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let src = crate::repo().join("providers/test-guests/echo");
    let dir = root.path().join("vendor/echo");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["manifest.toml", "schema.cue"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("provider.wasm"), guest("echo").1).unwrap();
    std::fs::write(
        root.path().join("froyo.toml"),
        format!("[[providers]]\npath = \"vendor/echo\"\nsha256 = \"{pin}\"\n"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("site.star"),
        "resource(\"test.echo::thing\", \"motd\", path = \"/etc/motd\")\nresource(\"test.echo::thing\", \"bad\", path = \"relative\")\n",
    )
    .unwrap();
    root
}

#[test]
fn extra_providers_load_only_with_their_pin() {
    let root = project_with_extra_provider(&"0".repeat(64));
    // A wrong pin: nothing of the provider is used, and the hint gives the real pin.
    let (code, out) = crate::check_json(root.path(), "site.star");
    assert_eq!(code, 1, "{out}");
    let d = &out["diagnostics"][0];
    assert_eq!(d["code"], "E-PROVIDER", "{out}");
    let help = d["help"].as_str().unwrap_or_default().to_owned();
    let pin = help
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no pin in the hint: {out}"))
        .to_owned();
    assert_eq!(pin.len(), 64, "{help}");

    // The right pin: the provider's schema validates its resources in `check` ...
    let root = project_with_extra_provider(&pin);
    let (code, out) = crate::check_json(root.path(), "site.star");
    assert_eq!(code, 1, "{out}");
    let codes: Vec<_> = out["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["location"]["line"].clone(),
            )
        })
        .collect();
    assert_eq!(codes, [("E-SCHEMA".to_owned(), json!(2))], "{out}");
    // ... `doc` documents it from inside the project ...
    let run = crate::froyo(root.path(), &["doc", "test.echo::thing"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("test.echo provider"), "{}", run.stdout);
    // ... and the host loads it beside the built-ins, caching the compiled component in
    // the per-user cache (a temporary one here).
    let project = froyo::project::Project::at(root.path().to_owned()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = ProviderHost::for_project_with_cache(
        &project,
        Limits::default(),
        Some(cache.path().join("providers")),
    )
    .unwrap();
    assert!(host.providers().any(|p| p == "test.echo"));
    assert!(host.providers().any(|p| p == "linux.file"));
    let cached = || {
        std::fs::read_dir(cache.path().join("providers"))
            .unwrap()
            .count()
    };
    // The extra provider is compiled when it loads; a built-in one comes precompiled in
    // the binary, so its first call compiles and caches nothing.
    assert_eq!(cached(), 1, "the extra provider is compiled and cached");
    host.describe("linux.file").unwrap();
    assert_eq!(cached(), 1, "linux.file is embedded precompiled");
    assert!(
        !root.path().join(".froyo/cache").exists(),
        "nothing is cached in the project any more"
    );
    // A second host reads the extra provider back from the cache.
    let again = ProviderHost::for_project_with_cache(
        &project,
        Limits::default(),
        Some(cache.path().join("providers")),
    )
    .unwrap();
    again.describe("test.echo").unwrap();
    assert_eq!(cached(), 1);

    // Widening the manifest's capabilities breaks the pin like swapping the code does.
    let manifest = root.path().join("vendor/echo/manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("[\"runner:file\"]", "[\"runner:file\", \"runner:exec\"]"),
    )
    .unwrap();
    let err = ProviderHost::for_project(&project, Limits::default()).unwrap_err();
    assert!(err.to_string().contains("froyo.toml says"), "{err}");
}

/// `linux.file::line` (Ansible's lineinfile) on the real filesystem: two lines of one file
/// (each applied on top of the other), validated, then in sync; a removal; a hand edit
/// found and put back.
#[test]
fn linux_file_line_edits_lines_on_the_real_filesystem() {
    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sshd_config");
    let path = f.display().to_string();
    std::fs::write(&f, "PasswordAuthentication yes\nPort 22\nUseDNS yes\n").unwrap();
    let line = |id: &str, config: Value| validated("linux.file::line", id, config);
    let resources = vec![
        line(
            "pw",
            json!({"name": "pw", "path": path, "regexp": "^PasswordAuthentication", "line": "PasswordAuthentication no", "validate": "grep -q '^PasswordAuthentication no$' %s"}),
        ),
        line(
            "allow",
            json!({"name": "allow", "path": path, "line": "AllowUsers alice", "insertafter": "^Port", "mode": "0600"}),
        ),
        line(
            "dns",
            json!({"name": "dns", "path": path, "regexp": "^UseDNS", "state": "absent"}),
        ),
    ];
    let converge = |host: &ProviderHost| -> Vec<String> {
        let actual = host
            .read("linux.file", Some(session.clone()), &resources)
            .unwrap();
        let mut summaries = Vec::new();
        for (r, a) in resources.iter().zip(&actual) {
            for op in host.diff("linux.file", r, a).unwrap() {
                summaries.push(format!("{} {}", op.kind, op.id));
                let out = host
                    .apply("linux.file", Some(session.clone()), &op)
                    .unwrap();
                assert!(out.changed, "{op:?}");
            }
        }
        summaries
    };
    // All three planned from one read; each applies on the content the previous left.
    assert_eq!(converge(&host), ["update pw", "update allow", "update dns"]);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "PasswordAuthentication no\nPort 22\nAllowUsers alice\n"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert!(converge(&host).is_empty());
    // A hand edit is shown as a diff of the file and put back.
    std::fs::write(
        &f,
        "PasswordAuthentication yes\nPort 22\nAllowUsers alice\n",
    )
    .unwrap();
    let actual = host
        .read("linux.file", Some(session.clone()), &resources[..1])
        .unwrap();
    let ops = host.diff("linux.file", &resources[0], &actual[0]).unwrap();
    let diff = ops[0].diff.clone().unwrap_or_default();
    assert!(
        diff.contains("-PasswordAuthentication yes") && diff.contains("+PasswordAuthentication no"),
        "{diff}"
    );
    assert_eq!(converge(&host), ["update pw"]);
    // A validate command that rejects the file leaves it unchanged.
    let bad = line(
        "bad",
        json!({"name": "bad", "path": path, "line": "Port 2222", "regexp": "^Port", "validate": "false %s"}),
    );
    let actual = host
        .read(
            "linux.file",
            Some(session.clone()),
            std::slice::from_ref(&bad),
        )
        .unwrap();
    let op = host.diff("linux.file", &bad, &actual[0]).unwrap().remove(0);
    let err = host
        .apply("linux.file", Some(session.clone()), &op)
        .unwrap_err();
    assert!(err.message.contains("validation failed"), "{err}");
    assert!(std::fs::read_to_string(&f).unwrap().contains("Port 22\n"));
}

/// `linux.file::block` (Ansible's blockinfile) on the real filesystem: inserted, in sync,
/// replaced in place when its text changes, removed.
#[test]
fn linux_file_block_manages_a_block_on_the_real_filesystem() {
    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("profile");
    let path = f.display().to_string();
    std::fs::write(&f, "# profile\nexport PATH=$PATH:/opt/bin\n").unwrap();
    let block = |text: &str, state: &str| {
        validated(
            "linux.file::block",
            "b",
            json!({"name": "b", "path": path, "block": text, "state": state, "insertbefore": "^export"}),
        )
    };
    let converge = |r: &Resource| -> usize {
        let actual = host
            .read("linux.file", Some(session.clone()), std::slice::from_ref(r))
            .unwrap();
        let ops = host.diff("linux.file", r, &actual[0]).unwrap();
        for op in &ops {
            assert!(
                host.apply("linux.file", Some(session.clone()), op)
                    .unwrap()
                    .changed
            );
        }
        ops.len()
    };
    let marked = |body: &str| {
        format!(
            "# profile\n# BEGIN ANSIBLE MANAGED BLOCK\n{body}# END ANSIBLE MANAGED BLOCK\nexport PATH=$PATH:/opt/bin\n"
        )
    };
    assert_eq!(converge(&block("export EDITOR=vi", "present")), 1);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        marked("export EDITOR=vi\n")
    );
    assert_eq!(converge(&block("export EDITOR=vi", "present")), 0);
    assert_eq!(
        converge(&block("export EDITOR=vim\nexport PAGER=less\n", "present")),
        1
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        marked("export EDITOR=vim\nexport PAGER=less\n")
    );
    assert_eq!(converge(&block("", "absent")), 1);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "# profile\nexport PATH=$PATH:/opt/bin\n"
    );
}
