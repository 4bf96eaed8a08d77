//! Protocol golden tests: input frames and the exact frames the runner answers with,
//! with the volatile fields (pid, durations, mtimes) normalised. A change here is a
//! change of the wire contract in `PROTOCOL.md`.

use serde_json::{Value, json};

use crate::harness::Runner;

/// Zeroes the fields that differ from run to run.
fn normalise(mut frame: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if matches!(k.as_str(), "pid" | "duration_ms" | "mtime") && v.is_number() {
                        *v = json!(0);
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut frame);
    frame
}

/// Sends `input` and compares every frame up to the terminal one with `expect`.
fn check(runner: &mut Runner, input: &str, expect: &[Value]) {
    runner.send_raw(format!("{input}\n").as_bytes());
    let mut got = Vec::new();
    while got.len() < expect.len() {
        let frame = runner
            .next_frame()
            .unwrap_or_else(|| panic!("no answer to {input}; got {got:?}"));
        let last = frame["type"] == "done" || frame["type"] == "error";
        got.push(normalise(frame));
        if last {
            break;
        }
    }
    assert_eq!(got, expect, "for input {input}");
}

#[test]
fn golden_frames() {
    let mut runner = Runner::start();
    let ready = normalise(runner.ready.clone());
    assert_eq!(
        ready,
        json!({"type": "ready", "version": "0.1.0", "pid": 0, "arch": std::env::consts::ARCH, "os": "linux",
               "caps": ["exec", "file.stat", "file.read", "file.write", "file.remove", "dir.ensure", "symlink.ensure",
                        "facts.collect", "net.connect", "user.ensure", "authorized_keys.ensure", "sudoers.ensure", "sudoers.remove",
                        "sshd.harden", "sshd.unharden"]})
    );

    let cases: Vec<(&str, Vec<Value>)> = vec![
        (
            r#"{"type":"cmd","id":1,"op":"exec","args":{"argv":["/bin/echo","golden"]}}"#,
            vec![
                json!({"type":"done","id":1,"result":{"rc":0,"signal":null,"stdout":"golden\n","stderr":"","truncated":false,"duration_ms":0}}),
            ],
        ),
        (
            // One stream only: the order of events across stdout and stderr is not
            // defined, so a golden case with both would be flaky.
            r#"{"type":"cmd","id":2,"op":"exec","args":{"shell":"printf ab; exit 1","stream":true}}"#,
            vec![
                json!({"type":"event","id":2,"kind":"stdout","data":"ab"}),
                json!({"type":"done","id":2,"result":{"rc":1,"signal":null,"stdout":"ab","stderr":"","truncated":false,"duration_ms":0}}),
            ],
        ),
        (
            r#"{"type":"cmd","id":3,"op":"file.stat","args":{"paths":["/nonexistent-froyo"]}}"#,
            vec![
                json!({"type":"done","id":3,"result":{"stats":[{"path":"/nonexistent-froyo","exists":false,"kind":null,"size":null,"mode":null,"uid":null,"gid":null,"owner":null,"group":null,"mtime":null,"sha256":null,"link_target":null,"error":null}]}}),
            ],
        ),
        (
            r#"{"type":"cmd","id":4,"op":"file.remove","args":{"path":"/nonexistent-froyo"}}"#,
            vec![json!({"type":"done","id":4,"result":{"changed":false}})],
        ),
        (
            r#"{"type":"cmd","id":5,"op":"no.such.op"}"#,
            vec![
                json!({"type":"error","id":5,"class":"permanent","message":"unknown op `no.such.op`; known ops: exec, file.stat, file.read, file.write, file.remove, dir.ensure, symlink.ensure, facts.collect, net.connect, user.ensure, authorized_keys.ensure, sudoers.ensure, sudoers.remove, sshd.harden, sshd.unharden"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":6,"op":"file.stat","args":{"paths":["relative"]}}"#,
            vec![
                json!({"type":"error","id":6,"class":"permanent","message":"`paths` must be an absolute path, got `relative`"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":7,"op":"file.stat","args":{"paths":[],"bogus":1}}"#,
            vec![
                json!({"type":"error","id":7,"class":"permanent","message":"invalid args for `file.stat`: unknown field `bogus`, expected one of `paths`, `sha256`, `max_hash_bytes`"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":8,"op":"file.read","args":{"path":"/nonexistent-froyo"}}"#,
            vec![
                json!({"type":"error","id":8,"class":"permanent","message":"`/nonexistent-froyo`: No such file or directory (os error 2)"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":9,"op":"exec","args":{"argv":["sleep","5"],"timeout_ms":50}}"#,
            vec![
                json!({"type":"error","id":9,"class":"transient","message":"timed out after 50 ms"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":10,"op":"facts.collect","args":{"facts":["os.bogus"]}}"#,
            vec![
                json!({"type":"error","id":10,"class":"permanent","message":"unknown fact `os.bogus`; known facts: os.basic, hw.cpu, net.ifaces, pkg.manifest"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":11,"op":"sudoers.ensure","args":{"name":"../etc/passwd","content":"x"}}"#,
            vec![
                json!({"type":"error","id":11,"class":"permanent","message":"invalid `name` `../etc/passwd`: use letters, digits, `_` and `-` (not first), at most 64"}),
            ],
        ),
        (
            r#"{"type":"cmd","id":0,"op":"exec"}"#,
            vec![
                json!({"type":"error","id":0,"class":"permanent","message":"bad frame: command id 0 is reserved"}),
            ],
        ),
        (
            r#"{"type":"cmd","op":"exec"}"#,
            vec![
                json!({"type":"error","id":0,"class":"permanent","message":"bad frame: missing field `id`"}),
            ],
        ),
        (
            r#"{"type":"hello","id":12}"#,
            vec![
                json!({"type":"error","id":12,"class":"permanent","message":"bad frame: unknown variant `hello`, expected `cmd` or `exit`"}),
            ],
        ),
        (
            "not json",
            vec![
                json!({"type":"error","id":0,"class":"permanent","message":"bad frame: expected ident at line 1 column 2"}),
            ],
        ),
    ];
    for (input, expect) in &cases {
        check(&mut runner, input, expect);
    }
}
