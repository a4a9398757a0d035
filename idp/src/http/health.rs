//! Liveness and readiness probes, and the metrics exposition (optionally on its own listener).

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::startup::AppState;

/// Liveness: the process answers. Never touches a dependency, so a database outage does
/// not make Kubernetes restart every replica.
pub async fn liveness() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "status": "ok" }))
}

/// Readiness: whether this replica can serve, which only the database decides. Redis is
/// reported but never makes a replica unready: without it, discovery, JWKS, logins and
/// token issuance go on (rate limits fall back to in-process ones, the deny-list answers
/// as `deny_list_unavailable` says), and a Redis restart must not empty the load balancer.
/// The status is then `degraded`, for people and monitoring (`IdpRedisDown`).
pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let database = async {
        let ping = tokio::time::timeout(Duration::from_secs(1), state.services.store.ping());
        matches!(ping.await, Ok(Ok(())))
    };
    // Redis is only reported, checked at the same time and briefly: a Redis that does not
    // answer must not slow the probe past a load balancer's check timeout, which would take
    // every replica out of service at once (the drill, scripts/drill.sh, saw it happen).
    let redis = async {
        match &state.services.redis {
            Some(redis) => {
                let ping = tokio::time::timeout(Duration::from_millis(300), ping_redis(redis.get()));
                Some(matches!(ping.await, Ok(Ok(()))))
            }
            None => None,
        }
    };
    let (database, redis) = tokio::join!(database, redis);
    let mut checks = serde_json::Map::new();
    checks.insert("database".into(), json!(if database { "ok" } else { "down" }));
    if let Some(up) = redis {
        checks.insert("redis".into(), json!(if up { "ok" } else { "down" }));
    }
    let degraded = redis == Some(false);
    let draining = state.draining.load(std::sync::atomic::Ordering::SeqCst);
    let (mut response, status) = match (database, degraded) {
        _ if draining => (HttpResponse::ServiceUnavailable(), "draining"),
        (false, _) => (HttpResponse::ServiceUnavailable(), "unavailable"),
        (true, true) => (HttpResponse::Ok(), "degraded"),
        (true, false) => (HttpResponse::Ok(), "ok"),
    };
    response.insert_header(("Cache-Control", "no-store")).json(json!({
        "status": status,
        "checks": checks,
    }))
}

async fn ping_redis(mut redis: redis::aio::ConnectionManager) -> redis::RedisResult<()> {
    redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .map(|_| ())
}

/// `GET /metrics`: Prometheus text exposition. Keep it off the public ingress (deploy/k8s
/// routes only the protocol paths); Prometheus scrapes the pods directly.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(crate::metrics::render(&state.services).await)
}

/// With `metrics_listen`, the metrics listener answers `GET /metrics` and nothing else (no
/// TLS redirect, no portal, no other route), and the main listener no longer has `/metrics`.
pub async fn metrics_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let Some(port) = state.as_ref().and_then(|s| s.metrics_port) {
        let is_metrics = req.path() == "/metrics";
        if req.app_config().local_addr().port() == port {
            let response = match (is_metrics, &state) {
                (true, Some(state)) if req.method() == actix_web::http::Method::GET => {
                    metrics(state.clone()).await
                }
                _ => HttpResponse::NotFound().finish(),
            };
            return Ok(req.into_response(response));
        }
        if is_metrics {
            return Ok(req.into_response(HttpResponse::NotFound().finish()));
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}
