//! Robustness: malformed frames get error frames and the runner keeps working, and
//! 2,000 pseudo-random lines (fixed seed, so failures reproduce) never crash it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Runner;

/// Knuth's MMIX linear congruential generator: deterministic, no `rand` crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Read-only templates: a mutation of one must not be able to change the machine.
const TEMPLATES: &[&str] = &[
    r#"{"type":"cmd","id":11,"op":"file.stat","args":{"paths":["/etc/hostname","/nonexistent"]}}"#,
    r#"{"type":"cmd","id":12,"op":"file.read","args":{"path":"/etc/hostname","max_bytes":10}}"#,
    r#"{"type":"cmd","id":13,"op":"facts.collect","args":{"facts":["os.basic"]}}"#,
    r#"{"type":"cmd","id":14,"op":"no.such.op","args":{"x":[1,2,{"y":null}]}}"#,
    r#"{"type":"cmd","id":15,"op":"file.stat","args":{"paths":"not-a-list","sha256":"yes"}}"#,
];

const OPS: &[&str] = &[
    "file.stat",
    "file.read",
    "facts.collect",
    "no.such.op",
    "",
    "FILE.STAT",
];

fn random_json(rng: &mut Lcg, depth: u32) -> String {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => "null".into(),
        1 => (rng.next() as i64 - (1 << 30)).to_string(),
        2 => format!("{}.{}e{}", rng.below(1000), rng.below(100), rng.below(400)),
        3 => format!(
            "\"{}\"",
            ["", "/", "/etc/hostname", "\\u0000", "\\ud800", "é", "a\\nb"][rng.below(7) as usize]
        ),
        4 => ["true", "false"][rng.below(2) as usize].into(),
        5 | 6 => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| random_json(rng, depth + 1))
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let keys = ["paths", "path", "sha256", "facts", "max_bytes", "zz", ""];
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| {
                    format!(
                        "\"{}\":{}",
                        keys[rng.below(keys.len() as u64) as usize],
                        random_json(rng, depth + 1)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

fn random_line(rng: &mut Lcg) -> Vec<u8> {
    match rng.below(4) {
        0 | 1 => (0..rng.below(300))
            .map(|_| rng.below(256) as u8)
            .filter(|b| *b != b'\n')
            .collect(),
        2 => {
            let mut bytes = rng.pick(TEMPLATES).as_bytes().to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len() as u64 + 1) as usize;
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = rng.below(256) as u8,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, rng.below(256) as u8),
                }
            }
            bytes.retain(|b| *b != b'\n');
            bytes
        }
        _ => {
            let id = [
                "0",
                "1",
                "-1",
                "18446744073709551615",
                "18446744073709551616",
                "\"7\"",
                "1.5",
                "null",
            ][rng.below(8) as usize];
            format!(
                r#"{{"type":"cmd","id":{id},"op":"{}","args":{}}}"#,
                rng.pick(OPS),
                random_json(rng, 0)
            )
            .into_bytes()
        }
    }
}

#[test]
fn malformed_frames_get_error_frames_and_the_runner_keeps_working() {
    let mut runner = Runner::start();
    let cases: [(&[u8], u64, &str); 7] = [
        (
            b"this is not json",
            0,
            "bad frame: expected ident at line 1 column 2",
        ),
        (
            b"{\"type\":\"cmd\",\"id\":5",
            0,
            "bad frame: EOF while parsing an object at line 1 column 20",
        ),
        (b"[1,2,3]", 0, "bad frame: expected a JSON object"),
        (b"[\"exit\"]", 0, "bad frame: expected a JSON object"),
        (
            b"{\"id\":9,\"op\":\"exec\"}",
            9,
            "bad frame: missing field `type`",
        ),
        (
            b"{\"type\":\"cmd\",\"id\":10}",
            10,
            "bad frame: missing field `op`",
        ),
        (
            b"\xff\xfe{}",
            0,
            "bad frame: expected value at line 1 column 1",
        ),
    ];
    for (line, id, message) in cases {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        runner.send_raw(&bytes);
        let frame = runner.next_frame().expect("an answer");
        assert_eq!(
            frame,
            json!({"type": "error", "id": id, "class": "permanent", "message": message})
        );
    }
    // Blank lines are keep-alives: no answer.
    runner.send_raw(b"\n   \n\r\n");
    let r = runner.ok(1, "exec", json!({"argv": ["/bin/echo", "still here"]}));
    assert_eq!(r["stdout"], "still here\n");
}

#[test]
fn two_thousand_random_lines_never_crash_the_runner() {
    let mut rng = Lcg(0x5eed_f00d);
    let lines: Vec<Vec<u8>> = (0..2000).map(|_| random_line(&mut rng)).collect();
    let answered = lines
        .iter()
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    let mut runner = Runner::start();
    for line in &lines {
        let mut bytes = line.clone();
        bytes.push(b'\n');
        runner.send_raw(&bytes);
    }
    let last = 4_000_000_000u64;
    let r = runner.ok(last, "exec", json!({"argv": ["/bin/echo", "survived"]}));
    assert_eq!(r["stdout"], "survived\n");
    runner.close_stdin();
    let status = runner
        .wait_exit(Duration::from_secs(20))
        .expect("exits on EOF");
    assert!(status.success(), "the runner died: {status}");
    // Every non-blank line got exactly one answer (those that came before the final
    // `exec`'s answer wait in the backlog, which `next_frame` reads first).
    let mut answers = 0;
    while let Some(frame) = runner.next_frame() {
        let kind: &Value = &frame["type"];
        assert!(kind == "done" || kind == "error", "{frame}");
        answers += 1;
    }
    assert_eq!(answers, answered);
}
