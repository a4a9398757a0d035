//! Security events: a filter bar, a live-updating table, a detail drawer, exports, and a
//! chart of failures over time with the top offending addresses.

use api_types::{EVENT_TYPES, EventPage, EventStats, EventView};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;

use crate::api;
use crate::pages::overview::hourly;
use crate::ui::{self, Alert, BarChart, Empty, Load};

#[derive(Clone, Copy)]
struct Filters {
    event_type: RwSignal<String>,
    outcome: RwSignal<String>,
    user: RwSignal<String>,
    client: RwSignal<String>,
    ip: RwSignal<String>,
}

impl Filters {
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let (t, o, u, c, i) = (
            self.event_type.get_untracked(),
            self.outcome.get_untracked(),
            self.user.get_untracked(),
            self.client.get_untracked(),
            self.ip.get_untracked(),
        );
        let mut pairs = vec![
            ("type", t.as_str()),
            ("outcome", o.as_str()),
            ("user", u.as_str()),
            ("client_id", c.as_str()),
            ("ip", i.as_str()),
        ];
        pairs.extend_from_slice(extra);
        api::query(&pairs)
    }
}

#[component]
pub fn Events() -> impl IntoView {
    let query = use_query_map();
    let initial = move |name: &str| query.with_untracked(|q| q.get(name).unwrap_or_default());
    let filters = Filters {
        event_type: RwSignal::new(initial("type")),
        outcome: RwSignal::new(initial("outcome")),
        user: RwSignal::new(initial("user")),
        client: RwSignal::new(initial("client_id")),
        ip: RwSignal::new(initial("ip")),
    };
    let page = RwSignal::new(Load::<EventPage>::Loading);
    let stats = RwSignal::new(Load::<EventStats>::Loading);
    let selected = RwSignal::new(None::<EventView>);
    let live = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let reload = move || {
        ui::load(page, {
            let path = format!("/events{}", filters.query(&[("limit", "100")]));
            async move { api::get(&path).await }
        });
    };
    reload();
    ui::load(stats, api::get("/events/stats?interval=hour"));
    // Live updates: poll while the box is ticked and the page is open.
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if live.get_untracked() {
                reload()
            }
        },
        std::time::Duration::from_secs(5),
    ) {
        on_cleanup(move || handle.clear());
    }
    let export = move |format: &'static str| {
        let path = format!("/events/export.{format}{}", filters.query(&[]));
        spawn_local(async move {
            let result = match api::get_text(&path).await {
                Ok(body) => {
                    let mime = if format == "csv" {
                        "text/csv"
                    } else {
                        "application/json"
                    };
                    ui::download(&format!("security-events.{format}"), &body, mime)
                }
                Err(e) => Err(e.to_string()),
            };
            error.set(result.err());
        });
    };
    let input = move |label: &'static str, name: &'static str, signal: RwSignal<String>| {
        view! {
            <label>{label}<input name=name prop:value=move || signal.get() on:input=move |ev| signal.set(event_target_value(&ev))/></label>
        }
    };
    view! {
        <header class="page-head">
            <h1>"Security events"</h1>
            <div class="actions">
                <label class="check"><input type="checkbox" name="live" prop:checked=move || live.get() on:change=move |ev| live.set(event_target_checked(&ev))/>"Live"</label>
                <button type="button" class="button" on:click=move |_| export("csv")>"Export CSV"</button>
                <button type="button" class="button" on:click=move |_| export("json")>"Export JSON"</button>
            </div>
        </header>
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        {ui::show(stats, |s: EventStats| {
            // Same 24 hourly slots in both series: add them up slot by slot.
            let failures: Vec<(String, i64)> = hourly(&s.buckets, "login_failed")
                .into_iter()
                .zip(hourly(&s.buckets, "client_authentication_failed"))
                .map(|((label, a), (_, b))| (label, a + b))
                .collect();
            view! {
                <div class="charts">
                    <BarChart title="Failed logins and client authentications per hour (24 h)" bars=failures danger=true/>
                    <figure class="chart">
                        <figcaption>"Top sources of failures (24 h)"</figcaption>
                        {if s.top_failure_ips.is_empty() { view! { <Empty message="No failures."/> }.into_any() } else { view! {
                            <ol class="top-ips">{s.top_failure_ips.into_iter().map(|t| view! { <li><code>{t.ip}</code> " " <span class="muted">{t.count} " failures"</span></li> }).collect_view()}</ol>
                        }.into_any() }}
                    </figure>
                </div>
            }
        })}
        <form class="filters" role="search" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); reload(); }>
            <label>"Type"
                <select name="type" on:change=move |ev| { filters.event_type.set(event_target_value(&ev)); reload(); }>
                    <option value="">"Any"</option>
                    {EVENT_TYPES.iter().map(|t| view! { <option value=*t selected=move || filters.event_type.get() == *t>{*t}</option> }).collect_view()}
                </select>
            </label>
            <label>"Outcome"
                <select name="outcome" on:change=move |ev| { filters.outcome.set(event_target_value(&ev)); reload(); }>
                    <option value="">"Any"</option>
                    <option value="success" selected=move || filters.outcome.get() == "success">"Success"</option>
                    <option value="failure" selected=move || filters.outcome.get() == "failure">"Failure"</option>
                </select>
            </label>
            {input("User", "user", filters.user)}
            {input("Client", "client_id", filters.client)}
            {input("IP", "ip", filters.ip)}
            <button type="submit" class="button">"Filter"</button>
        </form>
        <div class="with-drawer">
            {ui::show(page, move |p: EventPage| table(p.items, Some(selected)))}
            {move || selected.get().map(|e| view! {
                <aside class="drawer" aria-label="Event detail">
                    <header><h2>{e.event_type.clone()}</h2><button type="button" class="button quiet" on:click=move |_| selected.set(None) aria-label="Close">"×"</button></header>
                    <dl class="facts">
                        <dt>"Id"</dt><dd>{e.id}</dd>
                        <dt>"Time"</dt><dd>{ui::time(e.occurred_at)}</dd>
                        <dt>"Outcome"</dt><dd>{e.outcome.clone()}</dd>
                        <dt>"User"</dt><dd>{ui::opt(&e.username)} " " <code>{ui::opt(&e.user_id)}</code></dd>
                        <dt>"Client"</dt><dd>{ui::opt(&e.client_id)}</dd>
                        <dt>"Administrator"</dt><dd>{ui::opt(&e.actor_id)}</dd>
                        <dt>"IP"</dt><dd>{ui::opt(&e.ip)}</dd>
                        <dt>"Browser"</dt><dd>{ui::opt(&e.user_agent)}</dd>
                        <dt>"Request id"</dt><dd><code>{ui::opt(&e.request_id)}</code></dd>
                    </dl>
                    <pre>{serde_json::to_string_pretty(&e.details).unwrap_or_default()}</pre>
                </aside>
            })}
        </div>
    }
}

/// A table of events; with `selected`, a row opens the detail drawer.
pub fn table(events: Vec<EventView>, selected: Option<RwSignal<Option<EventView>>>) -> AnyView {
    if events.is_empty() {
        return view! { <Empty message="No event matches."/> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="events">
            <thead><tr><th>"Time"</th><th>"Type"</th><th>"Outcome"</th><th>"User"</th><th>"Client"</th><th>"IP"</th></tr></thead>
            <tbody>{events.into_iter().map(|e| {
                let row = e.clone();
                view! {
                    <tr class=format!("outcome-{}", e.outcome) tabindex="0"
                        on:click=move |_| if let Some(s) = selected { s.set(Some(row.clone())) }
                        on:keydown={ let row = e.clone(); move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Enter" && let Some(s) = selected { s.set(Some(row.clone())) } }>
                        <td>{ui::time(e.occurred_at)}</td><td>{e.event_type.clone()}</td><td>{e.outcome.clone()}</td>
                        <td>{ui::opt(&e.username)}</td><td>{ui::opt(&e.client_id)}</td><td>{ui::opt(&e.ip)}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }.into_any()
}
