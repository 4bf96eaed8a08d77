//! What the runner reads from the controller: stdin split into bounded lines, each
//! decoded into a frame (nothing is run), and the base64 codec of file contents.

use froyo_runner::encoding::{base64_decode, base64_encode};
use froyo_runner::protocol::ControllerFrame;
use froyo_runner::session::{Decoded, Line, decode_line, split_lines};

/// The line limit used here: small, so fuzz inputs cross it (the runner's is 64 MiB).
pub const MAX_LINE: usize = 4096;

/// Splits `data` as the runner splits stdin and decodes every line.
pub fn runner_frames(data: &[u8]) {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut too_long = false;
    split_lines(data, MAX_LINE, |line| {
        match line {
            Some(Line::Complete(l)) => {
                assert!(l.len() <= MAX_LINE, "a line of {} bytes", l.len());
                assert!(!l.contains(&b'\n'), "a line holds a newline");
                check_line(&l);
                lines.push(l);
            }
            Some(Line::TooLong) => too_long = true,
            None => {}
        }
        true
    });
    // Without an over-long line, the lines are exactly the input.
    if !too_long {
        let mut joined = lines.join(&b'\n');
        if data.last() == Some(&b'\n') {
            joined.push(b'\n');
        }
        assert_eq!(joined, data, "lines do not add up to the input");
    }
    // `file.write` content travels in base64.
    let encoded = base64_encode(data);
    assert_eq!(base64_decode(&encoded).as_deref(), Ok(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = base64_decode(text);
    }
}

fn check_line(line: &[u8]) {
    match decode_line(line) {
        Decoded::Cmd(cmd) => {
            assert_ne!(cmd.id, 0, "command id 0 accepted");
            // Round trip: the canonical encoding of the command decodes to it again.
            let frame = ControllerFrame::Cmd(cmd.clone());
            let wire = serde_json::to_vec(&frame).expect("a command serializes");
            assert_eq!(decode_line(&wire), Decoded::Cmd(cmd), "round trip");
        }
        Decoded::Bad { why, .. } => assert!(!why.is_empty(), "a bad frame without a reason"),
        Decoded::Exit | Decoded::Blank => {}
    }
}
