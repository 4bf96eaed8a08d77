//! The validator's fast path (unify + `is_valid` + required fields + CUE-evaluated
//! defaults, for schemas made only of fields) must agree with CUE's own export.

use std::sync::Arc;

use froyo::check::{CheckOptions, check};
use froyo::eval::cue_view;
use froyo::schema::{Registry, Validator};
use serde_json::Value;

fn configs() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in [
        "examples/hello.star",
        "examples/webserver.star",
        "examples/users.star",
        "tests/fixtures/plays/site.star",
    ] {
        let checked = check(&CheckOptions {
            file: crate::repo().join(f),
            ..Default::default()
        })
        .unwrap();
        for r in checked.graph.resources() {
            out.push((r.rtype.clone(), cue_view(&r.config).unwrap()));
        }
    }
    out
}

#[test]
fn fast_path_equals_cue_export() {
    let reg = Registry::builtin();
    let mut fast = Validator::new().unwrap();
    let mut export = Validator::new().unwrap();
    export.export_always = true;
    let mut compared = 0;
    for (ty, config) in configs() {
        let ty: &Arc<_> = reg.get(&ty).unwrap();
        // With and without the defaulted fields: CUE must fill in the same defaults.
        let mut stripped = config.clone();
        for f in ty.doc.fields.iter().filter(|f| f.default.is_some()) {
            stripped.as_object_mut().unwrap().remove(&f.name);
        }
        for c in [config, stripped] {
            let a = fast.validate(ty, std::slice::from_ref(&c)).unwrap();
            let b = export.validate(ty, std::slice::from_ref(&c)).unwrap();
            assert_eq!(a, b, "{} {c}", ty.name);
            assert!(a[0].is_ok(), "{} {c}: {:?}", ty.name, a[0]);
            compared += 1;
        }
    }
    assert!(compared > 20, "{compared}");
}

#[test]
fn fast_path_reports_what_export_reports() {
    let reg = Registry::builtin();
    let mut fast = Validator::new().unwrap();
    let mut export = Validator::new().unwrap();
    export.export_always = true;
    let cases = [
        (
            "linux.file::file",
            serde_json::json!({"path": "/x", "mode": "9"}),
        ),
        (
            "linux.file::file",
            serde_json::json!({"path": "/x", "colour": "blue"}),
        ),
        ("linux.file::symlink", serde_json::json!({"path": "/l"})),
        (
            "linux.net::download",
            serde_json::json!({"dest": "/opt/a", "url": "https://example.com/a"}),
        ),
        (
            "probe.tcp::check",
            serde_json::json!({"name": "db", "host": "db", "port": 70000}),
        ),
        (
            "linux.service::service",
            serde_json::json!({"unit": "x", "state": "sleeping"}),
        ),
    ];
    for (ty, c) in cases {
        let ty = reg.get(ty).unwrap();
        let a = fast.validate(ty, std::slice::from_ref(&c)).unwrap();
        let b = export.validate(ty, std::slice::from_ref(&c)).unwrap();
        let (Err(ea), Err(eb)) = (&a[0], &b[0]) else {
            panic!("{} {c}: expected errors, got {a:?} / {b:?}", ty.name)
        };
        let fields = |e: &Vec<froyo::schema::FieldError>| {
            e.iter().map(|f| f.field.clone()).collect::<Vec<_>>()
        };
        assert_eq!(fields(ea), fields(eb), "{} {c}", ty.name);
    }
}
