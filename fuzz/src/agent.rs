//! What the edge agent reads: recipe and plan TOML, HTTP API requests (routing, bearer
//! check, apply body; the HTTP framing itself is tiny_http's) and signed documents.

use std::path::Path;

use froyo_agent::api::{ApplyBody, Route, apply_body, bearer_matches, route};
use froyo_agent::document::{self, Seen};
use froyo_agent::recipe::{parse_bytes, parse_plan, parse_recipe};
use froyo_agent::trust::Trust;

/// A recipe and a plan file read from the same text.
pub fn agent_recipe(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_recipe(Path::new("recipe.toml"), text);
    let _ = parse_plan(Path::new("plan.toml"), text);
    if text.len() < 64 {
        let _ = parse_bytes(text);
        let _ = froyo_agent::duration::parse(text);
    }
}

/// The input is `METHOD URL\nAUTHORIZATION\nCONTENT-TYPE\nBODY`.
pub fn agent_api(data: &[u8]) {
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let first = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let auth = parts.next().map(String::from_utf8_lossy);
    let content_type = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let (method, url) = first.split_once(' ').unwrap_or((&*first, "/"));
    let routed = route(method, url);
    if let Route::StopComponent(name) | Route::RestartComponent(name) = &routed.route {
        assert!(url.contains(name.as_str()));
    }
    // Only `/healthz` is open without the token.
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    assert_eq!(routed.needs_token, path != "/healthz");
    // Only the exact bearer value passes.
    let token = "s3cret-token";
    let passes = bearer_matches(auth.as_deref(), Some(token));
    assert_eq!(passes, auth.as_deref() == Some("Bearer s3cret-token"));
    assert!(bearer_matches(auth.as_deref(), None));
    if routed.route == Route::Apply {
        match apply_body(content_type.contains("json"), body) {
            Ok(ApplyBody::Toml(text)) => {
                let _ = parse_plan(Path::new("uploaded.toml"), &text);
            }
            Ok(ApplyBody::Path { .. }) | Err(_) => {}
        }
    }
}

/// A test key pair's public half (minisign-verify's own test vector); nobody has the
/// secret key here, so no fuzz input may ever verify.
const PK: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";

/// The input is `SIGNATURE\0DOCUMENT`.
pub fn agent_document(data: &[u8]) {
    let (sig, bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let sig = String::from_utf8_lossy(sig);
    let trust = Trust::parse(Path::new("keys"), &format!("{PK}\n")).expect("the test key parses");
    let seen = Seen {
        last: Some((5, "0".repeat(64))),
        high_water: 1_700_000_000,
    };
    let verdict = document::check(bytes, &sig, &trust, &seen, 1_700_000_100);
    // The one signature made by that key is over b"test", which is no document.
    assert!(verdict.is_err(), "an unsigned document was accepted");
    // The trust file parser on the same text.
    let _ = Trust::parse(Path::new("keys"), &sig);
    // What happens once a signature checked out.
    if let Ok(doc) = document::read(bytes) {
        let sha = froyo_runner::encoding::sha256_hex(bytes);
        let _ = document::judge(doc.clone(), sha.clone(), &seen, 1_700_000_100);
        let _ = document::judge(doc, sha, &Seen::default(), 0);
    }
}
