//! Upstream identity providers (federation): register (an OpenID provider, GitHub, or any
//! plain OAuth 2.0 provider), edit, test the connection, enable or disable, remove. The client
//! secret goes in once and is never shown.

use api_types::{UpstreamChange, UpstreamInput, UpstreamList, UpstreamTest, UpstreamView};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Method};
use crate::ui::{self, Alert, ConfirmButton, Empty, Load};

/// The form's fields as typed (lists space-separated), for a new provider or the one edited.
#[derive(Clone, Copy)]
struct Fields {
    kind: RwSignal<String>,
    slug: RwSignal<String>,
    display_name: RwSignal<String>,
    icon: RwSignal<String>,
    issuer: RwSignal<String>,
    client_id: RwSignal<String>,
    token_auth: RwSignal<String>,
    secret: RwSignal<String>,
    scopes: RwSignal<String>,
    jit: RwSignal<bool>,
    trust_email: RwSignal<bool>,
    allowed_domains: RwSignal<String>,
    auto_link_domains: RwSignal<String>,
    claim_subject: RwSignal<String>,
    claim_username: RwSignal<String>,
    claim_email: RwSignal<String>,
    claim_name: RwSignal<String>,
    authorization_endpoint: RwSignal<String>,
    token_endpoint: RwSignal<String>,
    userinfo_endpoint: RwSignal<String>,
    emails_endpoint: RwSignal<String>,
}

fn text(value: RwSignal<String>) -> Option<String> {
    Some(value.get_untracked().trim().to_string()).filter(|v| !v.is_empty())
}

fn words(value: RwSignal<String>) -> Vec<String> {
    value
        .get_untracked()
        .split_whitespace()
        .map(String::from)
        .collect()
}

impl Fields {
    fn new() -> Self {
        let field = || RwSignal::new(String::new());
        Self {
            kind: RwSignal::new("oidc".into()),
            slug: field(),
            display_name: field(),
            icon: field(),
            issuer: field(),
            client_id: field(),
            token_auth: RwSignal::new("client_secret_basic".into()),
            secret: field(),
            scopes: field(),
            jit: RwSignal::new(false),
            trust_email: RwSignal::new(false),
            allowed_domains: field(),
            auto_link_domains: field(),
            claim_subject: field(),
            claim_username: field(),
            claim_email: field(),
            claim_name: field(),
            authorization_endpoint: field(),
            token_endpoint: field(),
            userinfo_endpoint: field(),
            emails_endpoint: field(),
        }
    }

    /// Everything cleared, for the next registration.
    fn clear(&self) {
        for field in [
            self.slug,
            self.display_name,
            self.issuer,
            self.client_id,
            self.secret,
            self.scopes,
            self.allowed_domains,
            self.auto_link_domains,
            self.claim_subject,
            self.claim_username,
            self.claim_email,
            self.claim_name,
            self.authorization_endpoint,
            self.token_endpoint,
            self.userinfo_endpoint,
            self.emails_endpoint,
        ] {
            field.set(String::new());
        }
        self.kind.set("oidc".into());
        self.token_auth.set("client_secret_basic".into());
        self.jit.set(false);
        self.trust_email.set(false);
    }

    /// The fields of `u`, to edit it.
    fn fill(&self, u: &UpstreamView) {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        self.kind.set(u.kind.clone());
        self.slug.set(u.slug.clone());
        self.display_name.set(u.display_name.clone());
        self.icon.set(u.icon.clone().unwrap_or_default());
        self.issuer.set(u.issuer.clone());
        self.client_id.set(u.client_id.clone());
        self.token_auth.set(u.token_endpoint_auth_method.clone());
        self.secret.set(String::new());
        self.scopes.set(u.scopes.join(" "));
        self.jit.set(u.jit);
        self.trust_email.set(u.trust_email);
        self.allowed_domains.set(u.allowed_domains.join(" "));
        self.auto_link_domains.set(u.auto_link_domains.join(" "));
        self.claim_subject.set(u.claim_subject.clone());
        self.claim_username.set(u.claim_username.clone());
        self.claim_email.set(u.claim_email.clone());
        self.claim_name.set(u.claim_name.clone());
        self.authorization_endpoint.set(opt(&u.authorization_endpoint));
        self.token_endpoint.set(opt(&u.token_endpoint));
        self.userinfo_endpoint.set(opt(&u.userinfo_endpoint));
        self.emails_endpoint.set(opt(&u.emails_endpoint));
    }

    fn input(&self) -> UpstreamInput {
        UpstreamInput {
            kind: Some(self.kind.get_untracked()),
            slug: self.slug.get_untracked().trim().to_string(),
            display_name: self.display_name.get_untracked(),
            icon: text(self.icon),
            issuer: text(self.issuer),
            authorization_endpoint: text(self.authorization_endpoint),
            token_endpoint: text(self.token_endpoint),
            userinfo_endpoint: text(self.userinfo_endpoint),
            emails_endpoint: text(self.emails_endpoint),
            client_id: self.client_id.get_untracked().trim().to_string(),
            client_secret: self.secret.get_untracked(),
            token_endpoint_auth_method: Some(self.token_auth.get_untracked()),
            scopes: words(self.scopes),
            jit: self.jit.get_untracked(),
            trust_email: self.trust_email.get_untracked(),
            claim_subject: text(self.claim_subject),
            claim_username: text(self.claim_username),
            claim_email: text(self.claim_email),
            claim_name: text(self.claim_name),
            allowed_domains: words(self.allowed_domains),
            auto_link_domains: words(self.auto_link_domains),
            allowed_clients: vec![],
        }
    }

    /// Every field as the form shows it; an empty secret keeps the current one.
    fn change(&self) -> UpstreamChange {
        let plain = self.kind.get_untracked() != "oidc";
        let endpoint = |value| if plain { text(value) } else { None };
        UpstreamChange {
            display_name: Some(self.display_name.get_untracked()),
            // Empty: no icon (the display name's initial).
            icon: Some(self.icon.get_untracked().trim().to_string()),
            client_id: Some(self.client_id.get_untracked().trim().to_string()),
            client_secret: text(self.secret),
            token_endpoint_auth_method: Some(self.token_auth.get_untracked()),
            scopes: Some(words(self.scopes)),
            jit: Some(self.jit.get_untracked()),
            trust_email: Some(self.trust_email.get_untracked()),
            authorization_endpoint: endpoint(self.authorization_endpoint),
            token_endpoint: endpoint(self.token_endpoint),
            userinfo_endpoint: endpoint(self.userinfo_endpoint),
            emails_endpoint: endpoint(self.emails_endpoint),
            claim_subject: text(self.claim_subject),
            claim_username: text(self.claim_username),
            claim_email: text(self.claim_email),
            claim_name: text(self.claim_name),
            allowed_domains: Some(words(self.allowed_domains)),
            auto_link_domains: Some(words(self.auto_link_domains)),
            ..UpstreamChange::default()
        }
    }
}

#[component]
pub fn Upstreams() -> impl IntoView {
    let list = RwSignal::new(Load::<UpstreamList>::Loading);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let reload = move || ui::load(list, api::get("/upstreams"));
    reload();
    let fields = Fields::new();
    // The slug of the provider being edited; none: the form registers a new one.
    let editing = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let edited = editing.get_untracked();
        let (input, change) = (fields.input(), fields.change());
        spawn_local(async move {
            let saved = match &edited {
                None => api::call::<_, UpstreamView>(Method::Post, "/upstreams", &input).await,
                Some(slug) => {
                    api::call::<_, UpstreamView>(Method::Patch, &format!("/upstreams/{slug}"), &change).await
                }
            };
            match saved {
                Ok(saved) => {
                    notice.set(Some(match edited {
                        None => format!(
                            "{} registered. Register this redirect URI at the provider: {}",
                            saved.display_name, saved.redirect_uri
                        ),
                        Some(_) => format!("{} saved.", saved.display_name),
                    }));
                    error.set(None);
                    editing.set(None);
                    fields.clear();
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
                enabled: Some(enabled),
                ..UpstreamChange::default()
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
    let edit = move |u: UpstreamView| {
        fields.fill(&u);
        editing.set(Some(u.slug));
        notice.set(None);
    };
    let cancel = move |_| {
        editing.set(None);
        fields.clear();
    };
    let input = |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! { <label>{label} <input name=name prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/></label> }
    };
    // Fixed once registered: the kind, the slug (in the redirect URI) and the issuer (in the
    // linked identities).
    let fixed = |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! { <label>{label} <input name=name prop:value=move || value.get() prop:disabled=move || editing.get().is_some() on:input=move |ev| value.set(event_target_value(&ev))/></label> }
    };
    let plain = move || fields.kind.get() != "oidc";
    view! {
        <header class="page-head"><h1>"Identity providers"</h1></header>
        {move || notice.get().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        <p class="muted">"Other identity providers users may sign in with: the login page offers a \"Continue with …\" button for each enabled one (docs/federation.md)."</p>
        <form class="card form" on:submit=submit aria-label="Register an identity provider">
            <h2>{move || match editing.get() { Some(slug) => format!("Edit {slug}"), None => "Register a provider".into() }}</h2>
            <label>"Kind" <select name="kind" prop:disabled=move || editing.get().is_some() prop:value=move || fields.kind.get() on:change=move |ev| fields.kind.set(event_target_value(&ev))>
                <option value="oidc">"OpenID Connect (found by discovery)"</option>
                <option value="github">"GitHub"</option>
                <option value="oauth2">"Other OAuth 2.0 provider with a user API"</option>
            </select></label>
            {fixed("Slug (in URLs)", "slug", fields.slug)}
            {input("Display name (\"Continue with …\")", "display_name", fields.display_name)}
            {input("Button icon: a data: URI of a small image (optional; default the initial)", "icon", fields.icon)}
            {fixed("Issuer URL (GitHub: leave empty)", "issuer", fields.issuer)}
            <Show when=plain>
                {input("Authorization endpoint (GitHub: leave empty)", "authorization_endpoint", fields.authorization_endpoint)}
                {input("Token endpoint (GitHub: leave empty)", "token_endpoint", fields.token_endpoint)}
                {input("User API, a JSON object about the user (GitHub: leave empty)", "userinfo_endpoint", fields.userinfo_endpoint)}
                {input("Address list with primary and verified flags (optional)", "emails_endpoint", fields.emails_endpoint)}
                {input("Claim that is the user there, never reassigned (default id)", "claim_subject", fields.claim_subject)}
            </Show>
            {input("Client id at the provider", "client_id", fields.client_id)}
            <Show when=move || !plain()>
                <label>"Client authentication" <select name="token_endpoint_auth_method" prop:value=move || fields.token_auth.get() on:change=move |ev| fields.token_auth.set(event_target_value(&ev))>
                    <option value="client_secret_basic">"Client secret"</option>
                    <option value="private_key_jwt">"private_key_jwt (this provider's keys at /jwks; no secret)"</option>
                </select></label>
            </Show>
            <label>{move || if editing.get().is_some() { "New client secret (empty: unchanged)" } else { "Client secret (never shown again)" }} <input type="password" name="client_secret" autocomplete="off" prop:value=move || fields.secret.get() on:input=move |ev| fields.secret.set(event_target_value(&ev))/></label>
            {input("Scopes (space-separated; openid is added for OpenID providers)", "scopes", fields.scopes)}
            <label class="check"><input type="checkbox" name="jit" prop:checked=move || fields.jit.get() on:change=move |ev| fields.jit.set(event_target_checked(&ev))/>"Create accounts at first sign-in"</label>
            <label class="check"><input type="checkbox" name="trust_email" prop:checked=move || fields.trust_email.get() on:change=move |ev| fields.trust_email.set(event_target_checked(&ev))/>"Trust the provider's verified email"</label>
            {input("Only these email domains (space-separated; empty: any)", "allowed_domains", fields.allowed_domains)}
            {input("Link verified addresses in these domains without asking (needs trusted email; only the domain's own tenant)", "auto_link_domains", fields.auto_link_domains)}
            {input("Username claim (default preferred_username; GitHub login)", "claim_username", fields.claim_username)}
            {input("Email claim (default email)", "claim_email", fields.claim_email)}
            {input("Name claim (default name)", "claim_name", fields.claim_name)}
            <div class="actions">
                <button type="submit" class="button primary">{move || if editing.get().is_some() { "Save changes" } else { "Register" }}</button>
                <Show when=move || editing.get().is_some()><button type="button" class="button quiet" on:click=cancel>"Cancel"</button></Show>
            </div>
        </form>
        {ui::show(list, move |l: UpstreamList| if l.items.is_empty() {
            view! { <Empty message="No identity provider registered yet."/> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table>
                    <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Issuer"</th><th>"Redirect URI"</th><th>"State"</th><th></th></tr></thead>
                    <tbody>{l.items.into_iter().map(|u| {
                        let (a, b, c) = (u.slug.clone(), u.slug.clone(), u.slug.clone());
                        let enabled = u.enabled;
                        let edited = u.clone();
                        view! {
                            <tr>
                                <td>{u.display_name.clone()}" "<code>{u.slug.clone()}</code></td>
                                <td>{if u.kind == "oidc" { "OpenID Connect" } else { "OAuth 2.0" }}</td>
                                <td class="uris">{u.issuer.clone()}</td>
                                <td class="uris"><code>{u.redirect_uri.clone()}</code></td>
                                <td><span class=if enabled { "badge active" } else { "badge disabled" }>{if enabled { "enabled" } else { "disabled" }}</span></td>
                                <td>
                                    <button type="button" class="button" on:click=move |_| edit(edited.clone())>"Edit"</button>
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
