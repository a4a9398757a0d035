//! Upstream providers' key sets (`jwks_uri`), cached per URI for five minutes and read again
//! at once when a token names a key the cached set lacks (the provider rotated its keys) — but
//! such reads not more often than every ten seconds per URI, so that tokens with made-up
//! `kid`s (anyone can post a logout token) cannot make this provider hammer the upstream. Key sets are public;
//! each replica keeps its own.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::identity::MAX_DOCUMENT_BYTES;
use crate::security::outbound;

const FRESH_FOR: Duration = Duration::from_secs(300);
const REFETCH_AFTER: Duration = Duration::from_secs(10);

struct Cached {
    body: Arc<Vec<u8>>,
    fetched: Instant,
    /// Read for a key the earlier set lacked.
    for_unknown_kid: bool,
}

static CACHE: LazyLock<Mutex<HashMap<String, Cached>>> = LazyLock::new(Default::default);

/// The key set at `uri` (its JSON), for a token signed with the key `kid`.
pub(super) async fn key_set(uri: &str, kid: Option<&str>) -> Result<Arc<Vec<u8>>, String> {
    let cached = CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(uri)
        .map(|c| (c.body.clone(), c.fetched.elapsed(), c.for_unknown_kid));
    let mut for_unknown_kid = false;
    if let Some((body, age, read_for_unknown_kid)) = cached {
        let knows_kid = kid.is_none_or(|kid| names_key(&body, kid));
        let recently_read_again = read_for_unknown_kid && age < REFETCH_AFTER;
        if age < FRESH_FOR && (knows_kid || recently_read_again) {
            return Ok(body);
        }
        for_unknown_kid = age < FRESH_FOR;
    }
    let http = outbound::client().map_err(|e| e.to_string())?;
    let body = outbound::get(&http, uri, "application/json", MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    let body = Arc::new(body);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    // Bounded by the providers registered; a removed provider's entry is only dropped here.
    cache.retain(|_, c| c.fetched.elapsed() < FRESH_FOR);
    cache.insert(
        uri.to_string(),
        Cached {
            body: body.clone(),
            fetched: Instant::now(),
            for_unknown_kid,
        },
    );
    Ok(body)
}

/// Whether the key set names a key `kid`.
fn names_key(body: &[u8], kid: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|set| set.get("keys").and_then(|k| k.as_array()).cloned())
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("kid").and_then(|v| v.as_str()) == Some(kid))
        })
}
