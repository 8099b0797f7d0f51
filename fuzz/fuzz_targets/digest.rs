//! Fuzzes the `Authorization` header: the auth-param parser and the whole Digest/Basic check
//! (nonce, nc, algorithm, response) against a server with one user. Any header must give a
//! verdict, never a panic; none may authenticate without the password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use sidecar::auth::{parse_credentials, Auth, Verdict};

static AUTH: OnceLock<Auth> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sidecar::auth::parse_params(text);
    let auth = AUTH.get_or_init(|| {
        let users = parse_credentials("admin:secret\nold:support-sidecar:0123456789abcdef0123456789abcdef\n").unwrap();
        Auth::new("support-sidecar", users, true).unwrap()
    });
    let (target, header) = text.split_once('\n').unwrap_or(("/", text));
    if let Verdict::User(u) = auth.check("GET", target, Some(header), None) {
        panic!("authenticated as {u} without the password: {header}");
    }
});
