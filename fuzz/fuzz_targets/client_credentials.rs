//! Client credentials as presented at the token endpoint: an `Authorization: Basic` header
//! (RFC 6749 §2.3.1: form-encoded id and secret inside base64) and the form body.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use idp::oidc::client_auth::presented;
use idp::oidc::params::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First line: the Authorization header value; the rest: the form body.
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(header) {
        headers.insert(HeaderName::from_static("authorization"), value);
    }
    if let Ok(params) = Params::parse(body) {
        let _ = presented(&headers, &params);
    }
});
