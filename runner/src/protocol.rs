//! The wire format between the controller and the runner, owned here so both sides
//! compile against the same types.
//!
//! Frames are newline-delimited JSON objects tagged by `type`. The controller sends
//! [`ControllerFrame`]s on the runner's stdin; the runner answers with [`RunnerFrame`]s
//! on its stdout (stderr carries free-form logs). Every command carries an `id`; the
//! runner answers it with any number of `event` frames and then exactly one `done` or
//! `error` frame with the same id. Id 0 is reserved for errors about frames that could
//! not be read at all. The per-op argument and result types live in [`ops`].
//!
//! This module depends on serde and serde_json only, so the controller can use it
//! without pulling in anything else of the runner.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod ops;

/// The protocol and runner version announced in the `ready` frame.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A frame sent by the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControllerFrame {
    /// Run one op.
    Cmd(Cmd),
    /// Start nothing new, give running commands up to 2 s, then exit 0.
    Exit,
}

/// A command: run `op` with `args`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cmd {
    /// Chosen by the controller, echoed in every frame about this command; not 0.
    pub id: u64,
    /// An op name from the `ready` frame's `caps`.
    pub op: String,
    /// The op's arguments; a missing `args` is the same as `{}`.
    #[serde(default)]
    pub args: Value,
    /// When set, a second command with the same key is answered with the first
    /// command's outcome instead of running again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// A frame sent by the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunnerFrame {
    /// The first frame, sent once the runner can take commands.
    Ready(Ready),
    /// Progress of a running command, such as an output chunk of `exec`.
    Event(Event),
    /// A command succeeded.
    Done(Done),
    /// A command failed, or (with id 0) a frame could not be read.
    Error(ErrorFrame),
}

/// Announces the runner and what it can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub version: String,
    pub pid: u32,
    /// `std::env::consts::ARCH` of the runner build, such as `x86_64`.
    pub arch: String,
    /// `std::env::consts::OS`, such as `linux`.
    pub os: String,
    /// The op names this runner understands.
    pub caps: Vec<String>,
}

/// A chunk of progress for a running command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub kind: EventKind,
    pub data: String,
}

/// What an [`Event`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Stdout,
    Stderr,
    Progress,
}

/// The successful outcome of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub id: u64,
    pub result: Value,
}

/// The failed outcome of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub id: u64,
    pub class: ErrorClass,
    pub message: String,
}

/// How the controller should treat a failure; the same classes providers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Retrying later may succeed: timeouts, EAGAIN-like errors.
    Transient,
    /// Retry after backing off. The runner itself never sends it; providers may.
    Throttled,
    /// The target changed under us: `expect_sha256` mismatch, a "file exists" race.
    Conflict,
    /// Retrying will not help: bad input, missing files, permission denied.
    Permanent,
}

impl RunnerFrame {
    /// The frame as one line of JSON, without the trailing newline.
    pub fn to_line(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and
        // `serde_json::Value` holds no non-finite floats.
        serde_json::to_string(self).unwrap_or_else(|_| {
            String::from(
                r#"{"type":"error","id":0,"class":"permanent","message":"unserializable frame"}"#,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each case: a frame, and the exact JSON it has on the wire.
    fn check_runner(frame: RunnerFrame, wire: Value) {
        let line = frame.to_line();
        let parsed: Value = serde_json::from_str(&line).expect("runner frame is JSON");
        assert_eq!(parsed, wire, "serialized {frame:?}");
        let back: RunnerFrame = serde_json::from_value(wire).expect("wire form parses back");
        assert_eq!(back, frame);
    }

    fn check_controller(wire: &str, expect: Option<ControllerFrame>) {
        let parsed = serde_json::from_str::<ControllerFrame>(wire).ok();
        assert_eq!(parsed, expect, "parsing {wire}");
    }

    #[test]
    fn runner_frames_have_their_documented_shape() {
        check_runner(
            RunnerFrame::Ready(Ready {
                version: "0.1.0".into(),
                pid: 42,
                arch: "x86_64".into(),
                os: "linux".into(),
                caps: vec!["exec".into()],
            }),
            json!({"type":"ready","version":"0.1.0","pid":42,"arch":"x86_64","os":"linux","caps":["exec"]}),
        );
        check_runner(
            RunnerFrame::Event(Event {
                id: 7,
                kind: EventKind::Stdout,
                data: "hi\n".into(),
            }),
            json!({"type":"event","id":7,"kind":"stdout","data":"hi\n"}),
        );
        check_runner(
            RunnerFrame::Done(Done {
                id: 7,
                result: json!({"changed": false}),
            }),
            json!({"type":"done","id":7,"result":{"changed":false}}),
        );
        for (class, name) in [
            (ErrorClass::Transient, "transient"),
            (ErrorClass::Throttled, "throttled"),
            (ErrorClass::Conflict, "conflict"),
            (ErrorClass::Permanent, "permanent"),
        ] {
            check_runner(
                RunnerFrame::Error(ErrorFrame {
                    id: 3,
                    class,
                    message: "m".into(),
                }),
                json!({"type":"error","id":3,"class":name,"message":"m"}),
            );
        }
    }

    /// Found by the `runner_frames` fuzz target
    /// (`fuzz/corpus/runner_frames/regress-float-roundtrip`): without serde_json's
    /// `float_roundtrip` this number read as one double and its re-encoding as another.
    #[test]
    fn numbers_survive_a_decode_encode_round_trip() {
        let wire =
            r#"{"type":"cmd","id":1,"op":"exec","args":{"timeout_ms":100184463720368547758075}}"#;
        let frame: ControllerFrame = serde_json::from_str(wire).unwrap();
        let again = serde_json::to_string(&frame).unwrap();
        let back: ControllerFrame = serde_json::from_str(&again).unwrap();
        assert_eq!(back, frame, "{again}");
    }

    #[test]
    fn controller_frames_parse_and_reject() {
        check_controller(
            r#"{"type":"cmd","id":7,"op":"file.stat","args":{"paths":["/"]},"idempotency_key":"k"}"#,
            Some(ControllerFrame::Cmd(Cmd {
                id: 7,
                op: "file.stat".into(),
                args: json!({"paths":["/"]}),
                idempotency_key: Some("k".into()),
            })),
        );
        check_controller(
            r#"{"type":"cmd","id":1,"op":"facts.collect"}"#,
            Some(ControllerFrame::Cmd(Cmd {
                id: 1,
                op: "facts.collect".into(),
                args: Value::Null,
                idempotency_key: None,
            })),
        );
        check_controller(r#"{"type":"exit"}"#, Some(ControllerFrame::Exit));
        check_controller(r#"{"type":"cmd","op":"exec"}"#, None);
        check_controller(r#"{"type":"cmd","id":-1,"op":"exec"}"#, None);
        check_controller(r#"{"type":"launch"}"#, None);
        check_controller(r#"[1,2]"#, None);
    }
}
