//! Clients: the table, registration (the secret shown once, with a copy button), detail
//! and edit, secret rotation, removal.

use api_types::{ACCOUNT_CLIENT_ID, ClientInput, ClientList, ClientView, ClientWithSecret, PORTAL_CLIENT_ID};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{self, Method};
use crate::ui::{self, Alert, ConfirmButton, Empty, Load};

#[component]
pub fn Clients() -> impl IntoView {
    let list = RwSignal::new(Load::<ClientList>::Loading);
    let creating = RwSignal::new(false);
    let created = RwSignal::new(None::<ClientWithSecret>);
    let reload = move || ui::load(list, api::get("/clients"));
    reload();
    view! {
        <header class="page-head">
            <h1>"Clients"</h1>
            <button type="button" class="button primary" on:click=move |_| creating.update(|c| *c = !*c)>"Register client"</button>
        </header>
        {move || created.get().map(|c| view! { <SecretOnce created=c/> })}
        <Show when=move || creating.get()>
            <ClientForm
                initial=None
                submit_label="Register"
                on_submit=move |input: ClientInput| async move {
                    let c: ClientWithSecret = api::call(Method::Post, "/clients", &input).await?;
                    created.set(Some(c));
                    creating.set(false);
                    reload();
                    Ok(())
                }
            />
        </Show>
        {ui::show(list, |l: ClientList| if l.items.is_empty() {
            view! { <Empty message="No client registered yet."/> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table>
                    <thead><tr><th>"Name"</th><th>"Client id"</th><th>"Type"</th><th>"Grant types"</th><th>"Redirect URIs"</th><th>"Created"</th></tr></thead>
                    <tbody>{l.items.into_iter().map(|c| view! {
                        <tr>
                            <td><a href=format!("/admin/clients/{}", c.client_id)>{c.name.clone()}</a></td>
                            <td><code>{c.client_id.clone()}</code></td>
                            <td>{c.client_type.clone()}</td>
                            <td>{c.grant_types.join(", ")}</td>
                            <td class="uris">{c.redirect_uris.join(" ")}</td>
                            <td>{ui::time(c.created_at)}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table></div>
            }.into_any()
        })}
    }
}

/// A new secret: shown this once, with a copy button.
#[component]
fn SecretOnce(created: ClientWithSecret) -> impl IntoView {
    let id = created.client.client_id.clone();
    view! {
        <section class="card secret" aria-label="New client credentials">
            <h2>"Client registered"</h2>
            <dl class="facts">
                <dt>"Client id"</dt><dd><code id="new-client-id">{id.clone()}</code></dd>
                {created.client_secret.map(|secret| {
                    let copied = RwSignal::new(false);
                    let value = secret.clone();
                    view! {
                        <dt>"Client secret"</dt>
                        <dd>
                            <code id="new-client-secret">{secret}</code>
                            <button type="button" class="button quiet" on:click=move |_| { ui::copy(&value); copied.set(true); }>
                                {move || if copied.get() { "Copied" } else { "Copy" }}
                            </button>
                        </dd>
                    }
                })}
            </dl>
            <p class="muted">"The secret is shown only now. Store it in the application's secret store."</p>
        </section>
    }
}

#[component]
pub fn ClientDetail() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let client = RwSignal::new(Load::<ClientView>::Loading);
    let notice = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let rotated = RwSignal::new(None::<ClientWithSecret>);
    let reload = move || {
        ui::load(client, {
            let path = format!("/clients/{}", id());
            async move { api::get(&path).await }
        })
    };
    reload();
    let rotate = move || {
        let path = format!("/clients/{}/secret", id());
        spawn_local(async move {
            match api::call::<_, ClientWithSecret>(Method::Post, &path, &serde_json::json!({})).await {
                Ok(c) => rotated.set(Some(c)),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let navigate = StoredValue::new(use_navigate());
    let remove = move || {
        let path = format!("/clients/{}", id());
        spawn_local(async move {
            match api::act(Method::Delete, &path).await {
                Ok(()) => navigate.with_value(|n| n("/admin/clients", Default::default())),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        {move || notice.get().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        {move || rotated.get().map(|c| view! { <SecretOnce created=c/> })}
        {ui::show(client, move |c: ClientView| {
            let managed = c.client_id == PORTAL_CLIENT_ID || c.client_id == ACCOUNT_CLIENT_ID;
            let uses_secret = matches!(
                c.token_endpoint_auth_method.as_str(),
                "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
            );
            let path = format!("/clients/{}", c.client_id);
            view! {
                <header class="page-head">
                    <h1>{c.name.clone()}</h1>
                    <div class="actions">
                        <Show when=move || uses_secret>
                            <ConfirmButton label="Rotate secret" question="The current secret stops working at once. Rotate?" on_confirm=rotate/>
                        </Show>
                        <Show when=move || !managed>
                            <ConfirmButton label="Delete" question="Delete this client and revoke its tokens?" danger=true on_confirm=remove/>
                        </Show>
                    </div>
                </header>
                <section class="card">
                    <dl class="facts">
                        <dt>"Client id"</dt><dd><code>{c.client_id.clone()}</code></dd>
                        <dt>"Type"</dt><dd>{c.client_type.clone()}</dd>
                        <dt>"Authentication"</dt><dd>{c.token_endpoint_auth_method.clone()}</dd>
                        <dt>"PKCE required"</dt><dd>{if c.require_pkce { "yes" } else { "no" }}</dd>
                        <dt>"Verified email required"</dt><dd>{if c.require_verified_email { "yes" } else { "no" }}</dd>
                        <dt>"Public keys"</dt><dd>{match (&c.jwks, &c.jwks_uri) {
                            (Some(jwks), _) => format!("{} registered", jwks["keys"].as_array().map_or(0, |k| k.len())),
                            (None, Some(uri)) => uri.clone(),
                            (None, None) => "none".into(),
                        }}</dd>
                        <dt>"Pushed requests (PAR) required"</dt><dd>{if c.require_par { "yes" } else { "no" }}</dd>
                        <dt>"Security profile"</dt><dd>{c.profile.clone().unwrap_or_else(|| "none".into())}</dd>
                        <dt>"DPoP-bound access tokens"</dt><dd>{if c.dpop_bound_access_tokens { "yes" } else { "no" }}</dd>
                        <dt>"Resources it may ask for"</dt><dd class="uris">{if c.resources.is_empty() { "none".to_string() } else { c.resources.join(" ") }}</dd>
                        <dt>"Created"</dt><dd>{ui::time(c.created_at)}</dd>
                        <dt>"Updated"</dt><dd>{ui::time(c.updated_at)}</dd>
                    </dl>
                </section>
                {if managed {
                    view! { <p class="muted">"This is a built-in client (the portal's or the account page's); the server manages it."</p> }.into_any()
                } else {
                    let path = path.clone();
                    view! {
                        <ClientForm
                            initial=Some(c.clone())
                            submit_label="Save"
                            on_submit=move |input: ClientInput| {
                                let path = path.clone();
                                async move {
                                    let _: ClientView = api::call(Method::Put, &path, &input).await?;
                                    notice.set(Some("Saved.".into()));
                                    reload();
                                    Ok(())
                                }
                            }
                        />
                    }.into_any()
                }}
            }
        })}
    }
}

const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// The client settings form, for registration and for edits.
#[component]
fn ClientForm<F, Fut>(initial: Option<ClientView>, submit_label: &'static str, on_submit: F) -> impl IntoView
where
    F: Fn(ClientInput) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = api::ApiResult<()>> + 'static,
{
    let editing = initial.is_some();
    let c = initial.unwrap_or_else(|| ClientView {
        client_id: String::new(),
        name: String::new(),
        client_type: "confidential".into(),
        has_secret: false,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec(),
        token_endpoint_auth_method: "client_secret_basic".into(),
        id_token_signed_response_alg: "RS256".into(),
        access_token_signing_alg: None,
        first_party: false,
        require_pkce: false,
        access_token_ttl_s: None,
        refresh_token_ttl_s: None,
        refresh_idle_ttl_s: None,
        refresh_reuse_window_s: 0,
        rate_limit_token_per_minute: None,
        rate_limit_introspect_per_minute: None,
        mfa: None,
        require_verified_email: false,
        jwks: None,
        jwks_uri: None,
        require_par: false,
        dpop_bound_access_tokens: false,
        profile: None,
        resources: vec![],
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
    });
    let name = RwSignal::new(c.name.clone());
    let client_type = RwSignal::new(c.client_type.clone());
    let redirects = RwSignal::new(c.redirect_uris.join("\n"));
    let post_logout = RwSignal::new(c.post_logout_redirect_uris.join("\n"));
    let backchannel = RwSignal::new(c.backchannel_logout_uri.clone().unwrap_or_default());
    let grants = RwSignal::new(c.grant_types.clone());
    let scopes = RwSignal::new(c.scopes.join(" "));
    let auth_method = RwSignal::new(c.token_endpoint_auth_method.clone());
    let alg = RwSignal::new(c.id_token_signed_response_alg.clone());
    let first_party = RwSignal::new(c.first_party);
    let verified_email = RwSignal::new(c.require_verified_email);
    let jwks = RwSignal::new(
        c.jwks
            .as_ref()
            .and_then(|j| serde_json::to_string_pretty(j).ok())
            .unwrap_or_default(),
    );
    let jwks_uri = RwSignal::new(c.jwks_uri.clone().unwrap_or_default());
    let require_par = RwSignal::new(c.require_par);
    let dpop_bound = RwSignal::new(c.dpop_bound_access_tokens);
    let profile = RwSignal::new(c.profile.clone().unwrap_or_default());
    let resources = RwSignal::new(c.resources.join("\n"));
    let mfa = RwSignal::new(c.mfa.clone().unwrap_or_default());
    let access_ttl = RwSignal::new(c.access_token_ttl_s.map(|s| s.to_string()).unwrap_or_default());
    let refresh_ttl = RwSignal::new(c.refresh_token_ttl_s.map(|s| s.to_string()).unwrap_or_default());
    let reuse = RwSignal::new(c.refresh_reuse_window_s.to_string());
    let token_limit = RwSignal::new(
        c.rate_limit_token_per_minute
            .map(|l| l.to_string())
            .unwrap_or_default(),
    );
    let introspect_limit = RwSignal::new(
        c.rate_limit_introspect_per_minute
            .map(|l| l.to_string())
            .unwrap_or_default(),
    );
    let error = RwSignal::new(None::<String>);
    let lines = |s: RwSignal<String>| {
        s.get_untracked()
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let seconds = |s: RwSignal<String>, what: &str| -> Result<Option<i64>, String> {
        let text = s.get_untracked();
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{what} must be a number of seconds"))
    };
    let per_minute = |s: RwSignal<String>, what: &str| -> Result<Option<i64>, String> {
        let text = s.get_untracked();
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{what} must be a number of requests per minute (0: no limit)"))
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let checked = (|| -> Result<ClientInput, String> {
            if name.get_untracked().trim().is_empty() {
                return Err("A name is required.".into());
            }
            let grant_types = grants.get_untracked();
            if grant_types.is_empty() {
                return Err("Choose at least one grant type.".into());
            }
            if grant_types.iter().any(|g| g == "authorization_code") && lines(redirects).is_empty() {
                return Err("The authorization_code grant needs a redirect URI.".into());
            }
            let public = client_type.get_untracked() == "public";
            let jwks_text = jwks.get_untracked();
            let jwks_value = if jwks_text.trim().is_empty() {
                None
            } else {
                Some(
                    serde_json::from_str::<serde_json::Value>(&jwks_text)
                        .map_err(|e| format!("The public keys are not valid JSON: {e}"))?,
                )
            };
            Ok(ClientInput {
                name: name.get_untracked(),
                client_type: Some(client_type.get_untracked()),
                redirect_uris: lines(redirects),
                post_logout_redirect_uris: lines(post_logout),
                backchannel_logout_uri: Some(backchannel.get_untracked()).filter(|b| !b.trim().is_empty()),
                grant_types: Some(grant_types),
                scopes: Some(lines(scopes)),
                token_endpoint_auth_method: Some(if public {
                    "none".into()
                } else {
                    auth_method.get_untracked()
                }),
                id_token_signed_response_alg: Some(alg.get_untracked()),
                access_token_signing_alg: None,
                first_party: first_party.get_untracked(),
                require_pkce: false,
                access_token_ttl_s: seconds(access_ttl, "The access token lifetime")?,
                refresh_token_ttl_s: seconds(refresh_ttl, "The refresh token lifetime")?,
                refresh_idle_ttl_s: c.refresh_idle_ttl_s,
                refresh_reuse_window_s: seconds(reuse, "The reuse window")?.unwrap_or(0),
                rate_limit_token_per_minute: per_minute(token_limit, "The token rate limit")?,
                rate_limit_introspect_per_minute: per_minute(
                    introspect_limit,
                    "The introspection rate limit",
                )?,
                mfa: Some(mfa.get_untracked()).filter(|m| !m.is_empty()),
                require_verified_email: verified_email.get_untracked(),
                jwks: jwks_value,
                jwks_uri: Some(jwks_uri.get_untracked()).filter(|u| !u.trim().is_empty()),
                require_par: require_par.get_untracked(),
                dpop_bound_access_tokens: dpop_bound.get_untracked(),
                profile: Some(profile.get_untracked()).filter(|p| !p.is_empty()),
                resources: lines(resources),
            })
        })();
        match checked {
            Err(message) => error.set(Some(message)),
            Ok(input) => {
                let on_submit = on_submit.clone();
                spawn_local(async move {
                    match on_submit(input).await {
                        Ok(()) => error.set(None),
                        Err(e) => error.set(Some(e.to_string())),
                    }
                });
            }
        }
    };
    let grant_boxes = GRANT_TYPES.map(|g| view! {
        <label class="check">
            <input type="checkbox" name=format!("grant-{g}") prop:checked=move || grants.with(|l| l.iter().any(|x| x == g))
                on:change=move |ev| { let on = event_target_checked(&ev); grants.update(|l| { l.retain(|x| x != g); if on { l.push(g.to_string()); } }); }/>
            {g}
        </label>
    }).into_iter().collect_view();
    view! {
        <form class="card form" on:submit=submit aria-label="Client settings">
            <h2>{if editing { "Settings" } else { "Register a client" }}</h2>
            {move || error.get().map(|e| view! { <Alert message=e/> })}
            <label>"Name" <input name="name" required prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
            <label>"Type"
                <select name="client_type" disabled=editing on:change=move |ev| client_type.set(event_target_value(&ev))>
                    <option value="confidential" selected=c.client_type == "confidential">"Confidential (server-side app, has a secret)"</option>
                    <option value="public" selected=c.client_type == "public">"Public (single-page or native app, PKCE)"</option>
                </select>
            </label>
            <label>"Redirect URIs (one per line)" <textarea name="redirect_uris" prop:value=move || redirects.get() on:input=move |ev| redirects.set(event_target_value(&ev))></textarea></label>
            <label>"Post-logout redirect URIs" <textarea name="post_logout_redirect_uris" prop:value=move || post_logout.get() on:input=move |ev| post_logout.set(event_target_value(&ev))></textarea></label>
            <label>"Back-channel logout URI" <input name="backchannel_logout_uri" prop:value=move || backchannel.get() on:input=move |ev| backchannel.set(event_target_value(&ev))/></label>
            <fieldset><legend>"Grant types"</legend>{grant_boxes}</fieldset>
            <label>"Scopes (space-separated)" <input name="scopes" prop:value=move || scopes.get() on:input=move |ev| scopes.set(event_target_value(&ev))/></label>
            <label>"Token endpoint authentication"
                <select name="auth_method" on:change=move |ev| auth_method.set(event_target_value(&ev))>
                    <option value="client_secret_basic" selected=c.token_endpoint_auth_method == "client_secret_basic">"client_secret_basic"</option>
                    <option value="client_secret_post" selected=c.token_endpoint_auth_method == "client_secret_post">"client_secret_post"</option>
                    <option value="client_secret_jwt" selected=c.token_endpoint_auth_method == "client_secret_jwt">"client_secret_jwt (rotate the secret after switching to it)"</option>
                    <option value="private_key_jwt" selected=c.token_endpoint_auth_method == "private_key_jwt">"private_key_jwt (needs the client's public keys)"</option>
                </select>
            </label>
            <label>"Public keys of the client (JWKS JSON, for private_key_jwt)" <textarea name="jwks" placeholder=r#"{"keys": [...]}"# prop:value=move || jwks.get() on:input=move |ev| jwks.set(event_target_value(&ev))></textarea></label>
            <label>"…or the URL where the client publishes them (jwks_uri)" <input name="jwks_uri" prop:value=move || jwks_uri.get() on:input=move |ev| jwks_uri.set(event_target_value(&ev))/></label>
            <label class="check"><input type="checkbox" name="require_par" prop:checked=move || require_par.get() on:change=move |ev| require_par.set(event_target_checked(&ev))/>"Require pushed authorization requests (PAR)"</label>
            <label>"Security profile"
                <select name="profile" on:change=move |ev| profile.set(event_target_value(&ev))>
                    <option value="" selected=c.profile.is_none()>"None"</option>
                    <option value="fapi2" selected=c.profile.as_deref() == Some("fapi2")>"FAPI 2.0 (PAR, PKCE, private_key_jwt, DPoP, no RS256)"</option>
                </select>
            </label>
            <label>"Resource servers it may ask tokens for (one identifier per line; register them under Resources)" <textarea name="resources" prop:value=move || resources.get() on:input=move |ev| resources.set(event_target_value(&ev))></textarea></label>
            <label class="check"><input type="checkbox" name="dpop_bound_access_tokens" prop:checked=move || dpop_bound.get() on:change=move |ev| dpop_bound.set(event_target_checked(&ev))/>"Issue only DPoP-bound access tokens"</label>
            <label>"ID token signing algorithm"
                <select name="alg" on:change=move |ev| alg.set(event_target_value(&ev))>
                    {["RS256", "PS256", "ES256", "EdDSA"].map(|a| view! { <option value=a selected=c.id_token_signed_response_alg == a>{a}</option> }).into_iter().collect_view()}
                </select>
            </label>
            <label>"Second factor (MFA)"
                <select name="mfa" on:change=move |ev| mfa.set(event_target_value(&ev))>
                    {[("", "As the deployment says"), ("optional", "Asked of users who have one"), ("required", "Required of every user")]
                        .map(|(v, label)| view! { <option value=v selected=c.mfa.as_deref().unwrap_or_default() == v>{label}</option> })
                        .into_iter().collect_view()}
                </select>
            </label>
            <label class="check"><input type="checkbox" name="first_party" prop:checked=move || first_party.get() on:change=move |ev| first_party.set(event_target_checked(&ev))/>"First party (skip the consent page)"</label>
            <label class="check"><input type="checkbox" name="require_verified_email" prop:checked=move || verified_email.get() on:change=move |ev| verified_email.set(event_target_checked(&ev))/>"Require a verified email address to log in"</label>
            <div class="row">
                <label>"Access token lifetime (s)" <input name="access_token_ttl_s" inputmode="numeric" prop:value=move || access_ttl.get() on:input=move |ev| access_ttl.set(event_target_value(&ev))/></label>
                <label>"Refresh token lifetime (s)" <input name="refresh_token_ttl_s" inputmode="numeric" prop:value=move || refresh_ttl.get() on:input=move |ev| refresh_ttl.set(event_target_value(&ev))/></label>
                <label>"Refresh reuse window (s)" <input name="refresh_reuse_window_s" inputmode="numeric" prop:value=move || reuse.get() on:input=move |ev| reuse.set(event_target_value(&ev))/></label>
            </div>
            <div class="row">
                <label>"Token requests per minute (empty: default, 0: none)" <input name="rate_limit_token_per_minute" inputmode="numeric" prop:value=move || token_limit.get() on:input=move |ev| token_limit.set(event_target_value(&ev))/></label>
                <label>"Introspections per minute (empty: default, 0: none)" <input name="rate_limit_introspect_per_minute" inputmode="numeric" prop:value=move || introspect_limit.get() on:input=move |ev| introspect_limit.set(event_target_value(&ev))/></label>
            </div>
            <div class="actions"><button type="submit" class="button primary">{submit_label}</button></div>
        </form>
    }
}
