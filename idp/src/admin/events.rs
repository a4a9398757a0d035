//! `/admin/api/v1/events`: review security events, export them, chart them.

use actix_web::{HttpResponse, web};
use api_types::{
    EventBucket, EventListQuery, EventPage, EventStats, EventStatsQuery, EventView, SourceCount,
};
use chrono::{DateTime, Duration, Utc};
use futures_util::stream;
use uuid::Uuid;

use super::auth::Admin;
use super::problem::ApiError;
use super::views;
use crate::audit::{EventQuery, EventType, Outcome};
use crate::services::Services;
use crate::startup::AppState;

/// Rows per store round trip when exporting; and the most an export returns.
const EXPORT_PAGE: u32 = 1000;
const EXPORT_MAX: usize = 1_000_000;

#[utoipa::path(get, path = "/admin/api/v1/events", tag = "events", params(EventListQuery),
    responses((status = 200, description = "Matching events, newest first", body = EventPage)))]
pub async fn list(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<EventListQuery>,
) -> Result<web::Json<EventPage>, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Invalid("limit must be 1 to 500".into()));
    }
    let mut filter = event_query(&q)?;
    filter.limit = limit + 1;
    let mut found = state.services.store.query_events(&filter).await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    Ok(web::Json(EventPage {
        next_cursor: more.then(|| found.last().map(|e| e.id.to_string())).flatten(),
        items: found.iter().map(views::event).collect(),
    }))
}

#[utoipa::path(get, path = "/admin/api/v1/events/export.csv", tag = "events", params(EventListQuery),
    responses((status = 200, description = "Matching events as CSV, streamed", content_type = "text/csv", body = String)))]
pub async fn export_csv(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<EventListQuery>,
) -> Result<HttpResponse, ApiError> {
    export(state, query.into_inner(), Format::Csv).await
}

#[utoipa::path(get, path = "/admin/api/v1/events/export.json", tag = "events", params(EventListQuery),
    responses((status = 200, description = "Matching events as a JSON array, streamed", body = Vec<EventView>)))]
pub async fn export_json(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<EventListQuery>,
) -> Result<HttpResponse, ApiError> {
    export(state, query.into_inner(), Format::Json).await
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
}

const CSV_HEADER: &str = "id,occurred_at,event_type,outcome,user_id,username,client_id,actor_id,ip,user_agent,request_id,details\r\n";

/// Streams every matching event, a page at a time, so an export of a million rows holds
/// one page in memory. The first page is read before answering, so a failing store is a
/// clean 503 rather than a truncated download.
async fn export(
    state: web::Data<AppState>,
    q: EventListQuery,
    format: Format,
) -> Result<HttpResponse, ApiError> {
    let mut filter = event_query(&q)?;
    filter.limit = EXPORT_PAGE;
    let services = state.services.clone();
    let first = services.store.query_events(&filter).await?;
    struct Cursor {
        services: Services,
        filter: EventQuery,
        page: Vec<crate::audit::SecurityEvent>,
        sent: usize,
        started: bool,
        done: bool,
    }
    let cursor = Cursor {
        services,
        filter,
        page: first,
        sent: 0,
        started: false,
        done: false,
    };
    let body = stream::unfold(cursor, move |mut c| async move {
        if c.done {
            return None;
        }
        let mut chunk = String::new();
        if !c.started {
            c.started = true;
            chunk.push_str(if format == Format::Csv { CSV_HEADER } else { "[" });
        }
        if c.page.is_empty() || c.sent >= EXPORT_MAX {
            c.done = true;
            if format == Format::Json {
                chunk.push(']');
            }
            return Some((Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), c));
        }
        for event in &c.page {
            let view = views::event(event);
            match format {
                Format::Csv => chunk.push_str(&csv_row(&view)),
                Format::Json => {
                    if c.sent > 0 {
                        chunk.push(',');
                    }
                    chunk.push_str(&serde_json::to_string(&view).unwrap_or_default());
                }
            }
            c.sent += 1;
        }
        let full = c.page.len() == EXPORT_PAGE as usize;
        c.filter.before_id = c.page.last().map(|e| e.id);
        c.page = if full {
            match c.services.store.query_events(&c.filter).await {
                Ok(next) => next,
                Err(e) => {
                    // Headers are gone; ending the stream early is all that is left. Logged.
                    tracing::error!(error = %e, "event export cut short");
                    c.done = true;
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        Some((Ok(web::Bytes::from(chunk)), c))
    });
    let (content_type, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "security-events.csv"),
        Format::Json => ("application/json", "security-events.json"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}

/// One CSV line (RFC 4180). Cells that a spreadsheet would run as a formula are prefixed
/// with `'`: usernames and user agents come from attackers.
fn csv_row(e: &EventView) -> String {
    let cells = [
        e.id.to_string(),
        e.occurred_at.to_rfc3339(),
        e.event_type.clone(),
        e.outcome.clone(),
        e.user_id.clone().unwrap_or_default(),
        e.username.clone().unwrap_or_default(),
        e.client_id.clone().unwrap_or_default(),
        e.actor_id.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.request_id.clone().unwrap_or_default(),
        e.details.to_string(),
    ];
    let mut line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn csv_cell(raw: &str) -> String {
    let text = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[utoipa::path(get, path = "/admin/api/v1/events/stats", tag = "events", params(EventStatsQuery),
    responses((status = 200, description = "Counts per type and outcome per interval, and the top failing sources", body = EventStats)))]
pub async fn stats(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<EventStatsQuery>,
) -> Result<web::Json<EventStats>, ApiError> {
    let q = query.into_inner();
    let (interval, bucket) = match q.interval.as_deref().unwrap_or("hour") {
        "hour" => ("hour", Duration::hours(1)),
        "day" => ("day", Duration::days(1)),
        other => {
            return Err(ApiError::Invalid(format!(
                "unknown interval {other:?}; use hour or day"
            )));
        }
    };
    let until = q.until.unwrap_or_else(|| state.services.clock.now());
    let from = q.from.unwrap_or(until - Duration::hours(24));
    if from >= until || until - from > Duration::days(400) {
        return Err(ApiError::Invalid(
            "from must be before until, at most 400 days apart".into(),
        ));
    }
    let store = &state.services.store;
    let buckets = store
        .event_counts(from, until, bucket.num_milliseconds(), &[])
        .await?;
    let top = store.top_failure_sources(from, until, 10).await?;
    Ok(web::Json(EventStats {
        from,
        until,
        interval: interval.into(),
        buckets: buckets.into_iter().map(bucket_view).collect(),
        top_failure_ips: top
            .into_iter()
            .map(|(ip, count)| SourceCount { ip, count })
            .collect(),
    }))
}

pub fn bucket_view(c: crate::store::EventCount) -> EventBucket {
    EventBucket {
        bucket: c.bucket,
        event_type: c.event_type,
        outcome: c.outcome,
        count: c.count,
    }
}

fn event_query(q: &EventListQuery) -> Result<EventQuery, ApiError> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let event_type = match nonempty(&q.event_type) {
        Some(raw) => Some(
            EventType::parse(&raw).ok_or_else(|| ApiError::Invalid(format!("unknown event type {raw:?}")))?,
        ),
        None => None,
    };
    let outcome = match nonempty(&q.outcome) {
        Some(raw) => {
            Some(Outcome::parse(&raw).ok_or_else(|| ApiError::Invalid(format!("unknown outcome {raw:?}")))?)
        }
        None => None,
    };
    let before_id = match nonempty(&q.cursor) {
        Some(raw) => Some(
            raw.parse::<i64>()
                .map_err(|_| ApiError::Invalid("the cursor is not one this API returned".into()))?,
        ),
        None => None,
    };
    // A user is named by id or by username.
    let (user_id, username) = match nonempty(&q.user) {
        Some(u) if Uuid::parse_str(&u).is_ok() => (Some(u), None),
        Some(u) => (None, Some(u)),
        None => (None, None),
    };
    let check_order = |from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>| match (from, until) {
        (Some(f), Some(u)) if f >= u => Err(ApiError::Invalid("from must be before until".into())),
        _ => Ok(()),
    };
    check_order(q.from, q.until)?;
    Ok(EventQuery {
        event_type,
        outcome,
        user_id,
        username,
        client_id: nonempty(&q.client_id),
        ip: nonempty(&q.ip),
        from: q.from,
        until: q.until,
        before_id,
        limit: 50,
    })
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
