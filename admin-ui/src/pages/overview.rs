//! The dashboard: counts, and logins and failures over the last 24 hours.

use api_types::{EventBucket, EventStats, MailStatus, Overview as Figures};
use leptos::prelude::*;

use crate::api;
use crate::ui::{self, BarChart, Load};

#[component]
pub fn Overview() -> impl IntoView {
    let figures = RwSignal::new(Load::<Figures>::Loading);
    let stats = RwSignal::new(Load::<EventStats>::Loading);
    ui::load(figures, api::get("/overview"));
    ui::load(stats, api::get("/events/stats?interval=hour"));
    view! {
        <header class="page-head"><h1 id="portal-ready">"Overview"</h1></header>
        {ui::show(figures, |f: Figures| {
            let logins = hourly(&f.hourly, "login_succeeded");
            let failures = hourly(&f.hourly, "login_failed");
            view! {
                <div class="tiles">
                    <Tile label="Users" value=f.users href="/admin/users"/>
                    <Tile label="Clients" value=f.clients href="/admin/clients"/>
                    <Tile label="Active sessions" value=f.active_sessions href="/admin/sessions"/>
                    <Tile label="Logins (24 h)" value=f.logins_24h href="/admin/events?type=login_succeeded"/>
                    <Tile label="Failed logins (24 h)" value=f.login_failures_24h href="/admin/events?type=login_failed"/>
                </div>
                <div class="charts">
                    <BarChart title="Logins per hour" bars=logins/>
                    <BarChart title="Failed logins per hour" bars=failures danger=true/>
                </div>
                <Mail status=f.mail/>
            }
        })}
        {ui::show(stats, |s: EventStats| view! {
            <section class="card">
                <h2>"Events by type (24 h)"</h2>
                <table class="ranked"><tbody>
                    {by_type(&s.buckets).into_iter().map(|(t, n)| view! {
                        <tr><td><a href=format!("/admin/events?type={t}")>{t.clone()}</a></td><td class="count">{n}</td></tr>
                    }).collect_view()}
                </tbody></table>
            </section>
        })}
    }
}

/// The outgoing-mail outbox: whether mail can be sent at all, and what is stuck.
#[component]
fn Mail(status: MailStatus) -> impl IntoView {
    let summary = if status.configured {
        format!(
            "{} waiting, {} failed, {} sent (last 7 days)",
            status.pending, status.failed, status.sent
        )
    } else {
        "No SMTP server is configured: users cannot reset passwords or verify addresses by mail. \
         Hand out reset links with `idp user reset-link <username>`."
            .to_string()
    };
    let trouble = !status.configured || status.failed > 0 || status.last_error.is_some();
    view! {
        <section class="card" id="mail-status">
            <h2>"Outgoing mail"</h2>
            <p class=if trouble { "error" } else { "muted" }>{summary}</p>
            {status.last_error.map(|e| view! { <p class="error">"Last error: " <code>{e}</code></p> })}
        </section>
    }
}

#[component]
fn Tile(label: &'static str, value: i64, href: &'static str) -> impl IntoView {
    view! {
        <a class="tile" href=href>
            <span class="tile-value">{value}</span>
            <span class="tile-label">{label}</span>
        </a>
    }
}

/// The counts of `event_type` in each of the last 24 hours, oldest first, zeros included.
pub fn hourly(buckets: &[EventBucket], event_type: &str) -> Vec<(String, i64)> {
    let hour = chrono::Duration::hours(1);
    let now = chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default();
    let current = now.timestamp() - now.timestamp().rem_euclid(3600);
    let first = chrono::DateTime::from_timestamp(current, 0).unwrap_or_default() - hour * 23;
    (0..24)
        .map(|i| {
            let start = first + hour * i;
            let count = buckets
                .iter()
                .filter(|b| b.event_type == event_type && b.bucket == start)
                .map(|b| b.count)
                .sum();
            (start.format("%d %b %H:00").to_string(), count)
        })
        .collect()
}

/// Totals per event type, largest first.
pub fn by_type(buckets: &[EventBucket]) -> Vec<(String, i64)> {
    let mut totals: Vec<(String, i64)> = Vec::new();
    for b in buckets {
        match totals.iter_mut().find(|(t, _)| *t == b.event_type) {
            Some((_, n)) => *n += b.count,
            None => totals.push((b.event_type.clone(), b.count)),
        }
    }
    totals.sort_by_key(|t| std::cmp::Reverse(t.1));
    totals
}
