//! `froyo repl` driven through a real pseudo-terminal: a detached tmux session runs the
//! binary, keys go in with `send-keys`, the screen comes back with `capture-pane`.
//! Against `local` and one loopback sshd target: a fact query, a multi-line `def`, tab
//! completion, an error followed by a working line, Ctrl-C during a slow fact query,
//! history across two sessions, `:plan` of the scratch graph; blocks pasted with tmux
//! `paste-buffer`, bracketed and not, `:paste` and `:load`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sshd::{Project, Sshd, whoami};

/// One tmux server (own socket) with one pane running `froyo repl`.
struct Tmux {
    socket: PathBuf,
    server_pid: u32,
    pane_pid: u32,
}

impl Tmux {
    fn start(cwd: &Path, args: &[&str]) -> Tmux {
        let socket = cwd.join(format!(
            ".tmux-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = Command::new("tmux");
        cmd.arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "150",
                "-y",
                "50",
                "-c",
            ])
            .arg(cwd)
            .args(["env", "NO_COLOR=1", "RUST_LOG=off", "TERM=xterm"])
            .arg(env!("CARGO_BIN_EXE_froyo"))
            .arg("repl")
            .args(args)
            .env("TERM", "xterm");
        let status = cmd
            .status()
            .expect("tmux is installed (.ci/run installs it)");
        assert!(status.success(), "tmux new-session failed");
        let display = |fmt: &str| -> u32 {
            let out = Command::new("tmux")
                .arg("-S")
                .arg(&socket)
                .args(["display-message", "-p", fmt])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let t = Tmux {
            server_pid: display("#{pid}"),
            pane_pid: display("#{pane_pid}"),
            socket,
        };
        // Keep the pane after froyo exits, so its last screen can still be read.
        t.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (no key names).
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", text]);
    }

    /// Presses keys by name (`Enter`, `Tab`, `C-c`, `Up`).
    fn key(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "0", key]);
    }

    fn line(&self, text: &str) {
        self.type_text(text);
        self.key("Enter");
    }

    /// The pane with its scrollback, wrapped lines joined.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-500", "-t", "0"])
    }

    /// Waits until `needle` appears `count` times on the screen; panics with the screen.
    fn wait_for_n(&self, needle: &str, count: usize, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(needle).count() >= count {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("`{needle}` (×{count}) did not appear within {timeout:?}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Does `act` and waits until `needle` appears once more than before it.
    fn after(&self, act: impl FnOnce(), needle: &str) -> String {
        let before = self.screen().matches(needle).count();
        act();
        self.wait_for_n(needle, before + 1, Duration::from_secs(60))
    }

    /// Types a line and waits for `needle` to appear once more.
    fn run(&self, text: &str, needle: &str) -> String {
        self.after(|| self.line(text), needle)
    }

    /// Pastes `text` as a terminal does (newlines as CR): inside bracketed-paste markers
    /// when `bracketed` (`paste-buffer -p`, sent because rustyline asks for the mode),
    /// else as plain fast input, like a terminal without bracketed paste.
    fn paste(&self, text: &str, bracketed: bool) {
        self.tmux(&["set-buffer", "-b", "paste", "--", text]);
        let mut args = vec!["paste-buffer", "-b", "paste", "-t", "0"];
        if bracketed {
            args.push("-p");
        }
        self.tmux(&args);
    }

    /// `:quit`, then waits for froyo to exit.
    fn quit(&self) {
        self.line(":quit");
        let start = Instant::now();
        while self.tmux(&["display-message", "-p", "#{pane_dead}"]).trim() != "1" {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "repl did not exit:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // froyo (the pane's process) first, then the tmux server, by PID; each only while
        // /proc still shows it as what we started (a PID that ended may be reused).
        for (pid, name) in [(self.pane_pid, "froyo"), (self.server_pid, "tmux")] {
            let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(name));
            if alive {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The distro id the `os.basic` fact reports for this machine (`ID=` of os-release).
fn distro_id() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

#[test]
fn repl_on_local_facts_blocks_completion_errors_interrupt_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("froyo.toml"), "[project]\nname = \"repl-test\"\n").unwrap();
    // A target whose SSH server accepts the TCP connection and never says a word: a
    // fact query on it hangs until the 10 s connect timeout, unless interrupted.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    std::fs::write(
        root.join("inventory.toml"),
        format!(
            "[[targets]]\nname = \"silent\"\naddress = \"127.0.0.1:{}\"\nuser = \"nobody\"\n",
            silent.local_addr().unwrap().port()
        ),
    )
    .unwrap();

    let t = Tmux::start(root, &["--on", "local"]);
    t.wait_for_n(">>> ", 1, Duration::from_secs(60));

    // A fact query.
    t.run(
        "host(\"local\").facts.os.basic.distro",
        &format!("\"{}\"", distro_id()),
    );

    // A multi-line def: the block continues on `... ` lines until a blank line.
    t.run("def twice(x):", "... ");
    t.run("    return 2 * x", "... ");
    t.after(|| t.key("Enter"), ">>> ");
    t.run("twice(21)", "\n42\n");

    // Completion: `facts.o` + Tab → `facts.os`, then the rest typed by hand.
    t.type_text("host(\"local\").facts.o");
    t.after(|| t.key("Tab"), "facts.os");
    let release =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    t.run(".basic.kernel", &format!("\"{}\"", release.trim()));

    // An error, then a working line.
    let s = t.run("undefined_name", "E-EVAL");
    assert!(s.contains("Variable `undefined_name` not found"), "{s}");
    t.run("1 + 2", "\n3\n");

    // Ctrl-C during a slow fact query cancels it and the REPL goes on.
    let started = Instant::now();
    t.line("host(\"silent\").facts.os.basic");
    std::thread::sleep(Duration::from_millis(1500));
    let s = t.after(|| t.key("C-c"), "interrupted");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the query was not cut short:\n{s}"
    );
    assert!(!s.contains("timed out"), "{s}");
    t.run("20 + 22", "\n42\n");

    // Ctrl-C also stops a long Starlark loop (between steps), and the session goes on.
    t.run("for i in range(2000000000):", "... ");
    t.run("    x = i", "... ");
    t.key("Enter");
    std::thread::sleep(Duration::from_millis(1500));
    t.after(|| t.key("C-c"), "interrupted (Ctrl-C)");
    t.run("twice(x) > 0", "True");

    // A selector that matches nothing keeps the selection, with a warning.
    t.run(":on role=nope", "W-NO-HOSTS");
    t.run(":on", "1 target: local");

    t.quit();
    drop(t);

    // History persisted: a second session recalls the last line with Up.
    let history = std::fs::read_to_string(root.join(".froyo/repl_history")).unwrap();
    assert!(history.contains("twice(21)"), "{history}");
    assert!(history.contains("20 + 22"), "{history}");
    let t = Tmux::start(root, &["--on", "local"]);
    t.wait_for_n(">>> ", 1, Duration::from_secs(60));
    t.after(|| t.key("Up"), ">>> :quit");
    t.after(|| t.key("Up"), ">>> :on");
    t.after(|| t.key("Enter"), "1 target: local");
    t.quit();
    drop(silent);
}

#[test]
fn repl_on_sshd_target_reads_facts_and_plans_the_scratch_graph() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project::new(&dir.path().join("project"));
    let server = Sshd::start(&dir.path().join("sshd"), &p.public_key());
    p.inventory(&[("t1", &server)], &whoami());
    p.trust(&[&server]);
    let out = dir.path().join("out");

    let t = Tmux::start(&p.root, &["--on", "t1"]);
    t.wait_for_n(">>> ", 1, Duration::from_secs(60));
    t.run("[h.name for h in hosts()]", "[\"t1\"]");
    t.run(
        "facts(\"os.basic\")[\"t1\"].distro",
        &format!("\"{}\"", distro_id()),
    );

    t.line("load(\"@stdlib//linux.star\", \"file\")");
    t.line(&format!(
        "f = file(\"{}/hello.txt\", content = \"hi\\n\")",
        out.display()
    ));
    t.run(":graph", "1 resource, 0 edges");
    let s = t.run(":plan", "Plan: 1 to add");
    assert!(s.contains("+ linux.file::file["), "{s}");
    // Read-only: nothing was written on the target.
    assert!(!out.exists());
    t.run(":clear", "scratch graph cleared");
    t.run(":plan", "the scratch graph is empty");
    // `:quit` closes the session: the runner exits and deletes itself.
    t.quit();
    drop(t);
    assert!(
        server.runner_processes().is_empty(),
        "runner left behind: {:?}",
        server.runner_processes()
    );
}

/// The issue's paste: a 3-line `def`, a `for` block and a call.
const PASTED: &str = "def sq(x):\n    y = x * x\n    return y\n\nfor i in range(3):\n    print(\"sq\", i, sq(i))\n\nsq(12)\n";
/// A parse error on the 3rd line of a paste, between two assignments.
const PASTED_BAD: &str = "a = 1\ndef bad(x):\n    return x +* 2\n\nb = 2\n";

/// Regression: a pasted block lost every line after its first (rustyline dropped the
/// bytes it had read ahead), so `def sq(x):` alone arrived and failed with E-PARSE.
#[test]
fn repl_reads_pasted_blocks_whole_bracketed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("froyo.toml"), "[project]\nname = \"paste\"\n").unwrap();

    // Without bracketed paste the lines arrive as if typed very fast: each is echoed on
    // its `>>> `/`... ` prompt and a blank line ends a block, as in Python's REPL.
    let t = Tmux::start(root, &["--on", "local"]);
    t.wait_for_n(">>> ", 1, Duration::from_secs(60));
    let s = t.after(|| t.paste(PASTED, false), "\n144\n");
    assert!(
        s.contains(
            ">>> def sq(x):\n...     y = x * x\n...     return y\n... \n\
             >>> for i in range(3):\n...     print(\"sq\", i, sq(i))\n... \n\
             sq 0 0\nsq 1 1\nsq 2 4\n>>> sq(12)\n144\n"
        ),
        "{s}"
    );
    // Inputs 1-3 were the def, the loop and the call; `a = 1` is 4, the def 5.
    let s = t.after(|| t.paste(PASTED_BAD, false), ">>> b = 2");
    assert!(s.contains("E-PARSE"), "{s}");
    assert!(s.contains("[<repl:5>:2:"), "{s}");
    t.run("a + b", "\n3\n");
    t.quit();
    drop(t);

    // With bracketed paste the block is one input, edited as a whole and run by Enter.
    let t = Tmux::start(root, &["--on", "local"]);
    t.wait_for_n(">>> ", 1, Duration::from_secs(60));
    t.paste(PASTED, true);
    t.wait_for_n("sq(12)", 1, Duration::from_secs(30));
    let s = t.after(|| t.key("Enter"), "\n144\n");
    assert!(
        s.contains(
            ">>> def sq(x):\n    y = x * x\n    return y\n\nfor i in range(3):\n    \
             print(\"sq\", i, sq(i))\n\nsq(12)\n\nsq 0 0\nsq 1 1\nsq 2 4\n144\n"
        ),
        "{s}"
    );
    // The whole paste is input 2; its 3rd line is wrong and none of it ran.
    t.paste(PASTED_BAD, true);
    t.wait_for_n("b = 2", 1, Duration::from_secs(30));
    let s = t.after(|| t.key("Enter"), "E-PARSE");
    assert!(s.contains("[<repl:2>:3:"), "{s}");
    let s = t.run("a", "E-EVAL");
    assert!(s.contains("Variable `a` not found"), "{s}");

    // `:paste` keeps a blank line inside a block (a typed or unbracketed blank line
    // would end it) and runs everything at Ctrl-D.
    t.run(":paste", "paste mode");
    t.line("def spaced(x):");
    t.line("    y = x + 1");
    t.line("");
    t.line("    return y");
    t.line("spaced(41)");
    t.after(|| t.key("C-d"), "\n42\n");

    // `:load` evaluates a file of the project; an error points into the file.
    std::fs::write(
        root.join("lib.star"),
        "def triple(x):\n    return 3 * x\n\nLOADED = triple(5)\n",
    )
    .unwrap();
    std::fs::write(root.join("broken.star"), "x = 1\ndef f(:\n    pass\n").unwrap();
    t.run(":load lib.star", ">>> ");
    t.run("LOADED", "\n15\n");
    let s = t.run(":load broken.star", "E-PARSE");
    assert!(s.contains("[broken.star:2:"), "{s}");
    let s = t.run(":load ../outside.star", "E-PATH");
    assert!(s.contains("outside the project root"), "{s}");

    // Python's formatting at the prompt.
    t.run("\"%02d\" % 7", "\n\"07\"\n");
    t.run(
        "\"web-{:02d}\".format(3) + \"7\".zfill(3)",
        "\n\"web-03007\"\n",
    );
    t.quit();
}
