//! `froyo completions` and `froyo man`: each completion script loads in its real shell and
//! completes subcommands there; `froyo man DIR` writes a page for every subcommand.
//! bash, zsh and fish come from Debian (tests/run.sh installs them); a missing one is a failure.

use std::path::Path;
use std::process::Command;

use crate::{froyo, repo};

/// The subcommands `froyo --help` lists (aliases aside), e.g. `check`, `onboard`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut argv = args.to_vec();
    argv.push("--help");
    let run = froyo(&repo(), &argv);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

fn script(shell: &str, dir: &Path) -> std::path::PathBuf {
    let run = froyo(&repo(), &["completions", shell]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = dir.join(format!("froyo.{shell}"));
    std::fs::write(&path, &run.stdout).unwrap();
    path
}

fn shell(name: &str, args: &[&str]) -> std::process::Output {
    Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("`{name}` is needed for this test (tests/run.sh installs it from Debian): {e}")
    })
}

#[test]
fn bash_completion_loads_and_completes_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = script("bash", dir.path());
    let syntax = shell("bash", &["-n", path.to_str().unwrap()]);
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Source it and call the completion function as bash's `complete` would.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let prog = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             $(complete -p froyo | sed -E 's/.*-F ([^ ]+).*/\\1/') froyo '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = shell("bash", &["-c", &prog]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let got = complete("froyo onb");
    assert_eq!(got.trim(), "onboard", "{got}");
    let got = complete("froyo plan --detailed");
    assert!(got.lines().any(|l| l == "--detailed-exitcode"), "{got}");
    let got = complete("froyo completions ");
    let words: Vec<&str> = got.split_whitespace().collect();
    for sh in ["bash", "zsh", "fish"] {
        assert!(words.contains(&sh), "{sh} not completed: {got}");
    }
}

#[test]
fn zsh_completion_parses_and_defines_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let path = script("zsh", dir.path());
    let syntax = shell("zsh", &["-n", path.to_str().unwrap()]);
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("#compdef froyo"),
        "{}",
        &text[..80.min(text.len())]
    );
    for sub in subcommands(&[]) {
        assert!(
            text.contains(&format!("'{sub}:")),
            "zsh script misses `{sub}`"
        );
    }
}

#[test]
fn fish_completion_loads_and_completes_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let path = script("fish", dir.path());
    let syntax = shell("fish", &["-n", path.to_str().unwrap()]);
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let prog = format!(
        "source {}; complete -C 'froyo onb'; complete -C 'froyo secret '",
        path.display()
    );
    let out = shell("fish", &["--no-config", "-c", &prog]);
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = got.lines().filter_map(|l| l.split('\t').next()).collect();
    assert!(words.contains(&"onboard"), "{got}");
    for sub in ["set", "get", "list", "rm"] {
        assert!(
            words.contains(&sub),
            "`froyo secret {sub}` not completed:\n{got}"
        );
    }
}

#[test]
fn man_writes_a_page_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let run = froyo(&repo(), &["man", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut expected = vec!["froyo.1".to_owned()];
    for sub in subcommands(&[]) {
        expected.push(format!("froyo-{sub}.1"));
        // `froyo agent --help` is the embedded agent binary's own help (its verbs are
        // not clap subcommands of `froyo`); `froyo-agent.1` is their page.
        if sub == "agent" {
            continue;
        }
        for nested in subcommands(&[&sub]) {
            expected.push(format!("froyo-{sub}-{nested}.1"));
        }
    }
    assert!(
        expected.contains(&"froyo-onboard-ssh.1".to_owned()),
        "{expected:?}"
    );
    for page in &expected {
        let text = std::fs::read_to_string(out.join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}; wrote: {}", run.stdout));
        assert!(text.contains("\n.TH "), "{page} is not a man page: {text}");
    }
    // Each page renders with man(1) and shows the command's own help text.
    let rendered = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(out.join("froyo-plan.1"))
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(text.contains("--detailed-exitcode"), "{text}");
    // Without DIR: the top page on stdout.
    let run = froyo(&repo(), &["man"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains(".TH froyo 1"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
    assert!(
        run.stdout.contains("completions"),
        "the top page lists the subcommands"
    );
}
