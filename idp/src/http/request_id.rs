//! A request id on every request: taken from a well-formed `X-Request-Id` header (set by
//! the ingress) or generated, put on every log line of the request through a tracing span,
//! and echoed in the response. The span also carries the W3C trace and span ids and, once
//! known, the client id.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;

use super::trace_context::{self, TraceContext};

pub const HEADER: &str = "x-request-id";

/// The id of the current request, available to handlers as request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

tokio::task_local! {
    /// The id of the request being served, for error bodies that name it.
    static CURRENT: String;
}

/// The id of the request this task serves, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        method = %req.method(),
        route = %route,
        client_id = tracing::field::Empty,
    );
    // Only when the request's lines are logged: ids nobody sees would cost a syscall each.
    if !span.is_disabled() {
        let trace = TraceContext::for_request(
            req.headers()
                .get(trace_context::TRACEPARENT)
                .and_then(|v| v.to_str().ok()),
        );
        span.record("trace_id", trace.trace_id.as_str());
        span.record("span_id", trace.span_id.as_str());
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let result = CURRENT
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            tracing::info!(status, latency_ms, "request completed");
            // Route templates only: a bounded label set whatever paths clients send.
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into());
            let method = response.request().method().as_str().to_string();
            metrics::counter!("idp_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status.to_string()).increment(1);
            crate::metrics::observe(
                "idp_http_request_duration_seconds",
                &[("route", route), ("method", method)],
                elapsed,
            );
            if let Ok(value) = HeaderValue::from_str(&id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(HEADER), value);
            }
            Ok(response)
        }
        Err(e) => {
            tracing::warn!(error = %e, "request failed");
            Err(e)
        }
    }
}

/// Accept an incoming id only if it is short and plain, so it cannot forge log lines.
fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Puts the client the request acts for on its log lines (call once it is authenticated or
/// known to exist; the id is the registered one, never raw input).
pub fn record_client_id(client_id: &str) {
    tracing::Span::current().record("client_id", client_id);
}
