//! The admin portal: a client-side Leptos app served by the IdP under `/admin`.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router base="/admin">
            <div class="shell">
                <nav class="nav" aria-label="Main">
                    <h1>"AImpact Identity"</h1>
                    <a href="/admin/">"Overview"</a>
                </nav>
                <main>
                    <Routes fallback=|| view! { <NotFound/> }>
                        <Route path=path!("/") view=Overview/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

#[component]
fn Overview() -> impl IntoView {
    view! {
        <section class="card">
            <h2 id="portal-ready">"Admin portal"</h2>
            <p class="muted">
                "The identity provider is running. Users, clients, sessions, keys and security events will be managed here."
            </p>
        </section>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! { <section class="card"><h2>"Page not found"</h2></section> }
}
