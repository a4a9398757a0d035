//! Building blocks every page uses: loading/empty/error states, confirmations, charts,
//! times, downloads and the clipboard.

use std::future::Future;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::api::{ApiFailure, ApiResult};
use crate::auth;

/// What a page has fetched so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(ApiFailure),
}

/// Runs `fetch` and puts its outcome in `into`; a lapsed session goes back to the login.
pub fn load<T, F>(into: RwSignal<Load<T>>, fetch: F)
where
    T: Send + Sync + 'static,
    F: Future<Output = ApiResult<T>> + 'static,
{
    spawn_local(async move {
        let outcome = fetch.await;
        if matches!(outcome, Err(ApiFailure::LoggedOut)) {
            let _ = auth::begin_login();
        }
        into.set(match outcome {
            Ok(value) => Load::Ready(value),
            Err(e) => Load::Failed(e),
        });
    });
}

/// Renders `state`: a spinner, the error, or `ready` of the value.
pub fn show<T, V>(state: RwSignal<Load<T>>, ready: impl Fn(T) -> V + Send + Sync + 'static) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || match state.get() {
        Load::Loading => view! { <p class="muted loading" role="status">"Loading…"</p> }.into_any(),
        Load::Failed(e) => view! { <Alert message=e.to_string()/> }.into_any(),
        Load::Ready(value) => ready(value).into_any(),
    }
}

#[component]
pub fn Alert(#[prop(into)] message: String) -> impl IntoView {
    view! { <div class="alert" role="alert">{message}</div> }
}

/// An empty table's explanation.
#[component]
pub fn Empty(#[prop(into)] message: String) -> impl IntoView {
    view! { <p class="empty muted">{message}</p> }
}

/// A button that asks before it does something that cannot be undone.
#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    #[prop(optional)] danger: bool,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let on_confirm = StoredValue::new(on_confirm);
    let class = if danger { "button danger" } else { "button" };
    let label_again = label.clone();
    view! {
        <span class="confirm">
            <Show
                when=move || asking.get()
                fallback=move || view! { <button type="button" class=class on:click=move |_| asking.set(true)>{label.clone()}</button> }
            >
                <span class="question" role="alertdialog" aria-label=label_again.clone()>{question.clone()}" "</span>
                <button type="button" class="button danger" data-confirm="yes"
                    on:click=move |_| { asking.set(false); on_confirm.with_value(|f| f()); }>
                    "Yes, " {label_again.to_lowercase()}
                </button>
                <button type="button" class="button quiet" on:click=move |_| asking.set(false)>"Cancel"</button>
            </Show>
        </span>
    }
}

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_else(|| "—".into())
}

pub fn opt(text: &Option<String>) -> String {
    text.clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "—".into())
}

/// A bar chart as SVG: one bar per (label, value), with the values as titles.
#[component]
pub fn BarChart(
    #[prop(into)] title: String,
    bars: Vec<(String, i64)>,
    #[prop(optional)] danger: bool,
) -> impl IntoView {
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let width = 600.0;
    let height = 140.0;
    let step = if bars.is_empty() {
        width
    } else {
        width / bars.len() as f64
    };
    let class = if danger { "bar danger" } else { "bar" };
    let first = bars.first().map(|(l, _)| l.clone()).unwrap_or_default();
    let last = bars.last().map(|(l, _)| l.clone()).unwrap_or_default();
    let rects = bars
        .into_iter()
        .enumerate()
        .map(|(i, (label, value))| {
            let h = (value as f64 / max) * (height - 10.0);
            view! {
                <rect class=class x=format!("{:.1}", i as f64 * step + 1.0) y=format!("{:.1}", height - h)
                    width=format!("{:.1}", (step - 2.0).max(1.0)) height=format!("{h:.1}")>
                    <title>{format!("{label}: {value}")}</title>
                </rect>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <figcaption>{title.clone()}</figcaption>
            <svg viewBox=format!("0 0 {width} {height}") role="img" aria-label=title preserveAspectRatio="none">{rects}</svg>
            <div class="axis muted"><span>{first}</span><span>{last}</span></div>
        </figure>
    }
}

/// Offers `content` as a file download.
pub fn download(name: &str, content: &str, mime: &str) -> Result<(), String> {
    let fail = |_| format!("could not save {name}");
    let parts = js_sys::Array::of1(&content.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(fail)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(fail)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(fail)?
        .dyn_into()
        .map_err(|_| "no anchor".to_string())?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Copies `text` with the asynchronous Clipboard API, where the browser offers it.
pub fn copy(text: &str) {
    let Some(window) = web_sys::window() else { return };
    let navigator = window.navigator();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &"clipboard".into()) else {
        return;
    };
    if let Ok(write) = js_sys::Reflect::get(&clipboard, &"writeText".into())
        && let Ok(write) = write.dyn_into::<js_sys::Function>()
    {
        let _ = write.call1(&clipboard, &text.into());
    }
}
