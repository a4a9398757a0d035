//! The admin portal: a client-side Leptos app served by the IdP under `/admin`. It logs in
//! through the provider like any relying party (see `auth`) and drives the admin API.

mod api;
mod auth;
mod pages;
mod ui;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use pages::{clients, events, keys, overview, resources, upstreams, users};

fn main() {
    console_error_panic_hook::set_once();
    // Not Leptos's spawn_local: its executor starts with the first mount, below.
    wasm_bindgen_futures::spawn_local(async {
        match start().await {
            Ok(true) => leptos::mount::mount_to_body(App),
            Ok(false) => {}
            Err(message) => {
                leptos::mount::mount_to_body(move || view! { <LoginFailed message=message.clone()/> })
            }
        }
    });
}

/// Finishes a login coming back from the provider, or starts one. Ok(true): ready to show.
async fn start() -> Result<bool, String> {
    let Some(window) = web_sys::window() else {
        return Err("no window".into());
    };
    let path = window.location().pathname().unwrap_or_default();
    if path.starts_with("/admin/callback") {
        let back_to = auth::complete_login().await?;
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&back_to));
        }
        return Ok(true);
    }
    if auth::tokens().is_none() {
        auth::begin_login()?;
        return Ok(false);
    }
    Ok(true)
}

#[component]
fn LoginFailed(message: String) -> impl IntoView {
    view! {
        <main class="centered">
            <section class="card">
                <h1>"Could not log in"</h1>
                <ui::Alert message=message/>
                <button class="button primary" on:click=move |_| { let _ = auth::begin_login(); }>"Try again"</button>
            </section>
        </main>
    }
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router base="/admin">
            <div class="shell">
                <a class="skip" href="#content">"Skip to content"</a>
                <nav class="nav" aria-label="Main">
                    <div class="brand">"AImpact" <span>"Identity"</span></div>
                    <a href="/admin/">"Overview"</a>
                    <a href="/admin/users">"Users"</a>
                    <a href="/admin/clients">"Clients"</a>
                    <a href="/admin/resources">"Resources"</a>
                    <a href="/admin/upstreams">"Identity providers"</a>
                    <a href="/admin/events">"Security events"</a>
                    <a href="/admin/sessions">"Sessions"</a>
                    <a href="/admin/keys">"Signing keys"</a>
                    <button type="button" class="button quiet logout" on:click=move |_| auth::logout()>"Log out"</button>
                </nav>
                <main id="content" tabindex="-1">
                    <Routes fallback=|| view! { <NotFound/> }>
                        <Route path=path!("/") view=overview::Overview/>
                        <Route path=path!("/users") view=users::Users/>
                        <Route path=path!("/users/:id") view=users::UserDetail/>
                        <Route path=path!("/sessions") view=users::Sessions/>
                        <Route path=path!("/clients") view=clients::Clients/>
                        <Route path=path!("/clients/:id") view=clients::ClientDetail/>
                        <Route path=path!("/resources") view=resources::Resources/>
                        <Route path=path!("/upstreams") view=upstreams::Upstreams/>
                        <Route path=path!("/events") view=events::Events/>
                        <Route path=path!("/keys") view=keys::Keys/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p><a href="/admin/">"Back to the overview"</a></p>
        </section>
    }
}
