//! `/admin/api/v1/keys` and `/admin/api/v1/overview`.

use actix_web::{HttpResponse, web};
use api_types::{KeyList, MailStatus, Overview, RotateKeys};
use chrono::Duration;

use super::auth::Admin;
use super::events::bucket_view;
use super::problem::ApiError;
use super::views;
use crate::manage::keys;
use crate::security::keys::Alg;
use crate::startup::AppState;

#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys",
    responses((status = 200, description = "Every signing key, newest first", body = KeyList)))]
pub async fn list_keys(_admin: Admin, state: web::Data<AppState>) -> Result<web::Json<KeyList>, ApiError> {
    let all = state.services.store.all_signing_keys().await?;
    Ok(web::Json(KeyList {
        items: views::keys(&all, state.services.clock.now()),
    }))
}

#[utoipa::path(post, path = "/admin/api/v1/keys/rotate", tag = "keys", request_body(content = RotateKeys, content_type = "application/json"),
    responses((status = 201, description = "New keys published; they sign after the activation delay", body = KeyList)))]
pub async fn rotate_keys(
    admin: Admin,
    state: web::Data<AppState>,
    body: Option<web::Json<RotateKeys>>,
) -> Result<HttpResponse, ApiError> {
    let algs = match body.and_then(|b| b.into_inner().algs) {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| Alg::parse(n).map_err(|e| ApiError::Invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Alg::ALL.to_vec(),
    };
    let staged = keys::rotate(&state.services, &algs, admin.actor()).await?;
    state
        .services
        .reload_keys()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let all = state.services.store.all_signing_keys().await?;
    let now = state.services.clock.now();
    let items = views::keys(&all, now)
        .into_iter()
        .filter(|k| staged.iter().any(|(kid, _, _)| *kid == k.kid))
        .collect();
    Ok(HttpResponse::Created().json(KeyList { items }))
}

#[utoipa::path(get, path = "/admin/api/v1/overview", tag = "overview",
    responses((status = 200, description = "Counts, and logins over the last 24 hours", body = Overview)))]
pub async fn overview(_admin: Admin, state: web::Data<AppState>) -> Result<web::Json<Overview>, ApiError> {
    let store = &state.services.store;
    let now = state.services.clock.now();
    let hourly = store
        .event_counts(
            now - Duration::hours(24),
            now,
            Duration::hours(1).num_milliseconds(),
            &["login_succeeded", "login_failed"],
        )
        .await?;
    let total = |t: &str| hourly.iter().filter(|b| b.event_type == t).map(|b| b.count).sum();
    let outbox = store.outbox_status().await?;
    Ok(web::Json(Overview {
        mail: MailStatus {
            configured: crate::mail::configured(&state.services),
            pending: outbox.pending,
            failed: outbox.failed,
            sent: outbox.sent,
            last_error: outbox.last_error,
        },
        users: store.count_users().await?,
        clients: store.count_clients().await?,
        active_sessions: store.count_active_sessions(now).await?,
        logins_24h: total("login_succeeded"),
        login_failures_24h: total("login_failed"),
        hourly: hourly.into_iter().map(bucket_view).collect(),
    }))
}
