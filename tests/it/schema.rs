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

/// Large batches of a plain schema are checked shape by shape and value by value: that
/// must give exactly what checking every config against the whole definition gives, for
/// valid batches (same configs, same defaults) and for batches with bad configs in them
/// (the same errors, found by the full path).
#[test]
fn bulk_path_equals_the_config_by_config_path() {
    let reg = Registry::builtin();
    let mut by_type: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for (ty, config) in configs() {
        by_type.entry(ty).or_default().push(config);
    }
    let mut bulk_batches = 0;
    for (name, seeds) in by_type {
        let ty: &Arc<_> = reg.get(&name).unwrap();
        // 300 configs: the seeds with their string fields varied, so values repeat in
        // some fields and differ in others.
        let mut good: Vec<Value> = Vec::new();
        for i in 0..300 {
            let mut c = seeds[i % seeds.len()].clone();
            if let Some(m) = c.as_object_mut() {
                for (k, v) in m.iter_mut() {
                    if let Some(text) = v.as_str()
                        && text.starts_with('/')
                        && i % 3 > 0
                    {
                        *v = Value::from(format!("{text}/n{i}"));
                    } else if k == "content" && i % 2 == 0 {
                        *v = Value::from(format!("line {i}\n"));
                    }
                }
            }
            good.push(c);
        }
        let mut bad = good.clone();
        if let Some(m) = bad[7].as_object_mut() {
            m.insert("colour".into(), Value::from("blue"));
        }
        if let Some(m) = bad[150].as_object_mut()
            && let Some(f) = ty.doc.fields.iter().find(|f| f.cue_type.contains("=~"))
        {
            m.insert(f.name.clone(), Value::from("no such thing\n"));
        }
        for (what, batch) in [("valid", &good), ("with errors", &bad)] {
            let mut fast = Validator::new().unwrap();
            let mut full = Validator::new().unwrap();
            full.bulk = false;
            let a = fast.validate(ty, batch).unwrap();
            let b = full.validate(ty, batch).unwrap();
            assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x, y, "{name} ({what}) config {i}: {}", batch[i]);
            }
            if what == "valid" {
                assert!(b.iter().all(Result::is_ok), "{name}: {b:?}");
                assert_eq!(full.bulk_checked(), 0);
                if ty.doc.plain {
                    assert_eq!(fast.bulk_checked(), batch.len(), "{name}: not bulk-checked");
                    bulk_batches += 1;
                }
            } else {
                assert!(b[7].is_err(), "{name}: the unknown field passed");
            }
        }
    }
    assert!(bulk_batches >= 3, "only {bulk_batches} plain types seen");
}
