//! Upstream identity providers (federation): register, test the connection, enable or
//! disable, remove. The client secret goes in once and is never shown.

use api_types::{UpstreamChange, UpstreamInput, UpstreamList, UpstreamTest, UpstreamView};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Method};
use crate::ui::{self, Alert, ConfirmButton, Empty, Load};

#[component]
pub fn Upstreams() -> impl IntoView {
    let list = RwSignal::new(Load::<UpstreamList>::Loading);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let reload = move || ui::load(list, api::get("/upstreams"));
    reload();
    let field = || RwSignal::new(String::new());
    let (slug, display_name, issuer, client_id, secret, scopes) =
        (field(), field(), field(), field(), field(), field());
    let (allowed_domains, auto_link_domains, claim_username) = (field(), field(), field());
    let words = |value: RwSignal<String>| -> Vec<String> {
        value
            .get_untracked()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let jit = RwSignal::new(false);
    let trust_email = RwSignal::new(false);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = UpstreamInput {
            slug: slug.get_untracked().trim().to_string(),
            display_name: display_name.get_untracked(),
            issuer: issuer.get_untracked().trim().to_string(),
            client_id: client_id.get_untracked().trim().to_string(),
            client_secret: secret.get_untracked(),
            scopes: words(scopes),
            jit: jit.get_untracked(),
            trust_email: trust_email.get_untracked(),
            claim_username: Some(claim_username.get_untracked().trim().to_string()).filter(|c| !c.is_empty()),
            claim_email: None,
            claim_name: None,
            allowed_domains: words(allowed_domains),
            auto_link_domains: words(auto_link_domains),
            allowed_clients: vec![],
        };
        spawn_local(async move {
            match api::call::<_, UpstreamView>(Method::Post, "/upstreams", &input).await {
                Ok(added) => {
                    notice.set(Some(format!(
                        "{} registered. Register this redirect URI at the provider: {}",
                        added.display_name, added.redirect_uri
                    )));
                    error.set(None);
                    secret.set(String::new());
                    reload();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let test = move |slug: String| {
        spawn_local(async move {
            let path = format!("/upstreams/{slug}/test");
            match api::call::<_, UpstreamTest>(Method::Post, &path, &serde_json::json!({})).await {
                Ok(t) if t.ok => notice.set(Some(format!(
                    "{slug}: connected (token endpoint {}).",
                    t.token_endpoint.unwrap_or_default()
                ))),
                Ok(t) => error.set(Some(format!("{slug}: {}", t.error.unwrap_or_default()))),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let set_enabled = move |slug: String, enabled: bool| {
        spawn_local(async move {
            let change = UpstreamChange {
                display_name: None,
                client_id: None,
                client_secret: None,
                scopes: None,
                jit: None,
                trust_email: None,
                claim_username: None,
                claim_email: None,
                claim_name: None,
                allowed_domains: None,
                auto_link_domains: None,
                allowed_clients: None,
                enabled: Some(enabled),
            };
            match api::call::<_, UpstreamView>(Method::Patch, &format!("/upstreams/{slug}"), &change).await {
                Ok(_) => reload(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let remove = move |slug: String| {
        spawn_local(async move {
            match api::act(Method::Delete, &format!("/upstreams/{slug}")).await {
                Ok(()) => reload(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let input = |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! { <label>{label} <input name=name prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/></label> }
    };
    view! {
        <header class="page-head"><h1>"Identity providers"</h1></header>
        {move || notice.get().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        <p class="muted">"Other OpenID providers users may sign in with: the login page offers a \"Continue with …\" button for each enabled one (docs/federation.md)."</p>
        <form class="card form" on:submit=add aria-label="Register an identity provider">
            {input("Slug (in URLs)", "slug", slug)}
            {input("Display name (\"Continue with …\")", "display_name", display_name)}
            {input("Issuer URL", "issuer", issuer)}
            {input("Client id at the provider", "client_id", client_id)}
            <label>"Client secret (never shown again)" <input type="password" name="client_secret" autocomplete="off" prop:value=move || secret.get() on:input=move |ev| secret.set(event_target_value(&ev))/></label>
            {input("Scopes besides openid (space-separated)", "scopes", scopes)}
            <label class="check"><input type="checkbox" name="jit" prop:checked=move || jit.get() on:change=move |ev| jit.set(event_target_checked(&ev))/>"Create accounts at first sign-in"</label>
            <label class="check"><input type="checkbox" name="trust_email" prop:checked=move || trust_email.get() on:change=move |ev| trust_email.set(event_target_checked(&ev))/>"Trust the provider's verified email"</label>
            {input("Only these email domains (space-separated; empty: any)", "allowed_domains", allowed_domains)}
            {input("Link verified addresses in these domains without asking (needs trusted email; only the domain's own tenant)", "auto_link_domains", auto_link_domains)}
            {input("Username claim (default preferred_username)", "claim_username", claim_username)}
            <div class="actions"><button type="submit" class="button primary">"Register"</button></div>
        </form>
        {ui::show(list, move |l: UpstreamList| if l.items.is_empty() {
            view! { <Empty message="No identity provider registered yet."/> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table>
                    <thead><tr><th>"Name"</th><th>"Issuer"</th><th>"Redirect URI"</th><th>"State"</th><th></th></tr></thead>
                    <tbody>{l.items.into_iter().map(|u| {
                        let (a, b, c) = (u.slug.clone(), u.slug.clone(), u.slug.clone());
                        let enabled = u.enabled;
                        view! {
                            <tr>
                                <td>{u.display_name.clone()}" "<code>{u.slug.clone()}</code></td>
                                <td class="uris">{u.issuer.clone()}</td>
                                <td class="uris"><code>{u.redirect_uri.clone()}</code></td>
                                <td><span class=if enabled { "badge active" } else { "badge disabled" }>{if enabled { "enabled" } else { "disabled" }}</span></td>
                                <td>
                                    <button type="button" class="button" on:click=move |_| test(a.clone())>"Test connection"</button>
                                    <button type="button" class="button quiet" on:click=move |_| set_enabled(b.clone(), !enabled)>{if enabled { "Disable" } else { "Enable" }}</button>
                                    <ConfirmButton label="Remove" question="Remove this identity provider?" danger=true on_confirm=move || remove(c.clone())/>
                                </td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
            }.into_any()
        })}
    }
}
