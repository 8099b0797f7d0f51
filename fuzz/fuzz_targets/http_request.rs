//! Fuzzes the request head (httparse plus our framing rules) and the body framing (chunked
//! or Content-Length): any bytes must give a request or a refusal, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sidecar::api::http::parse_request_bytes(data);
});
