//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the trace id of an incoming
//! `traceparent` header is kept, so this server's log lines join the caller's trace; each
//! request gets its own span id. Without a valid header, a new trace starts here.

use crate::security::random;

pub const TRACEPARENT: &str = "traceparent";

/// The trace and span ids of one request, as lowercase hex (32 and 16 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    /// The caller's span, when the request carried a valid `traceparent`.
    pub parent_id: Option<String>,
}

impl TraceContext {
    /// Continues the trace of `traceparent` when it is valid, otherwise starts one.
    pub fn for_request(traceparent: Option<&str>) -> Self {
        // One read from the OS generator for both ids. They are not secrets: should it fail,
        // a fixed non-zero id is better than failing the request.
        let random = random::bytes::<24>().unwrap_or([0x11; 24]);
        let span_id = hex(&random[16..]);
        match traceparent.and_then(parse) {
            Some((trace_id, parent_id)) => Self {
                trace_id,
                span_id,
                parent_id: Some(parent_id),
            },
            None => Self {
                trace_id: hex(&random[..16]),
                span_id,
                parent_id: None,
            },
        }
    }
}

/// `version-trace_id-parent_id-flags` (§3.2): version `ff` is invalid; a later version may
/// append fields after a `-`, which are ignored; all-zero ids are invalid.
fn parse(header: &str) -> Option<(String, String)> {
    let header = header.trim();
    let (head, rest) = (header.get(..55)?, &header[55..]);
    let version = head.get(..2)?;
    let fields: Vec<&str> = head.split('-').collect();
    let [_, trace_id, parent_id, flags] = fields.as_slice() else {
        return None;
    };
    let valid = is_hex(version, 2)
        && version != "ff"
        && (rest.is_empty() || version != "00" && rest.starts_with('-'))
        && is_hex(trace_id, 32)
        && is_hex(parent_id, 16)
        && is_hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    valid.then(|| ((*trace_id).to_string(), (*parent_id).to_string()))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    #[test]
    fn a_valid_traceparent_continues_its_trace_with_a_new_span() {
        let ctx = TraceContext::for_request(Some(&format!("00-{TRACE}-{PARENT}-01")));
        assert_eq!(ctx.trace_id, TRACE);
        assert_eq!(ctx.parent_id.as_deref(), Some(PARENT));
        assert!(is_hex(&ctx.span_id, 16));
        assert_ne!(ctx.span_id, PARENT);
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let ctx = TraceContext::for_request(Some(&format!("01-{TRACE}-{PARENT}-01-extra")));
        assert_eq!(ctx.trace_id, TRACE);
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        for bad in [
            format!("ff-{TRACE}-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-01-extra"),
            format!("00-{}-{PARENT}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{PARENT}"),
            "garbage".to_string(),
            "00-é".repeat(20),
        ] {
            let ctx = TraceContext::for_request(Some(&bad));
            assert_ne!(ctx.trace_id, TRACE, "{bad}");
            assert!(is_hex(&ctx.trace_id, 32) && ctx.parent_id.is_none(), "{bad}");
        }
    }
}
