//! Bad input never panics: truncated and garbage playbooks give diagnostics.

use std::path::Path;

use froyo::check::{CheckOptions, check};

fn check_text(dir: &Path, name: &str, text: &[u8]) -> Vec<String> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = check(&CheckOptions {
        file: path,
        ..Default::default()
    })
    .expect("check runs");
    out.diagnostics
        .iter()
        .map(|d| d.code.as_str().to_owned())
        .collect()
}

#[test]
fn truncated_and_garbage_inputs_give_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let webserver = std::fs::read_to_string(crate::repo().join("examples/webserver.star")).unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::copy(
        crate::repo().join("examples/templates/site.conf.j2"),
        dir.path().join("templates/site.conf.j2"),
    )
    .unwrap();
    // Every prefix at a few hundred cut points: each either passes or reports something.
    let bytes = webserver.as_bytes();
    let step = (bytes.len() / 97).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        let Ok(prefix) = std::str::from_utf8(&bytes[..cut]) else {
            continue;
        };
        let codes = check_text(dir.path(), "cut.star", prefix.as_bytes());
        assert!(
            codes
                .iter()
                .all(|c| c.starts_with("E-") || c.starts_with("W-")),
            "cut {cut}: {codes:?}"
        );
    }
    // Deterministic pseudo-random garbage (no randomness in tests: a fixed LCG).
    let mut seed: u64 = 0x5eed;
    let alphabet =
        b"()[]{}:=,.*\"'#\\ \n\tabcdefresource(load@//x)0123456789+-%if for def return lambda";
    for round in 0..200 {
        let len = 1 + (round * 7) % 160;
        let text: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(seed >> 33) as usize % alphabet.len()]
            })
            .collect();
        let codes = check_text(dir.path(), "garbage.star", &text);
        assert!(
            codes
                .iter()
                .all(|c| c.starts_with("E-") || c.starts_with("W-")),
            "round {round}: {codes:?}"
        );
    }
    // Invalid UTF-8 and NUL bytes.
    let codes = check_text(dir.path(), "binary.star", b"\xff\xfe\x00resource(");
    assert!(!codes.is_empty());
}
