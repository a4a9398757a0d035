//! Resource servers (RFC 8707): the APIs clients ask audience-restricted tokens for.

use api_types::{ClientList, ResourceInput, ResourceList, ResourceView};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Method};
use crate::ui::{self, Alert, ConfirmButton, Empty, Load};

#[component]
pub fn Resources() -> impl IntoView {
    let list = RwSignal::new(Load::<ResourceList>::Loading);
    let clients = RwSignal::new(Load::<ClientList>::Loading);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let reload = move || ui::load(list, api::get("/resources"));
    reload();
    ui::load(clients, api::get("/clients"));
    let identifier = RwSignal::new(String::new());
    let scopes = RwSignal::new(String::new());
    let client_id = RwSignal::new(String::new());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = ResourceInput {
            identifier: identifier.get_untracked().trim().to_string(),
            scopes: scopes
                .get_untracked()
                .split_whitespace()
                .map(String::from)
                .collect(),
            client_id: Some(client_id.get_untracked()).filter(|c| !c.is_empty()),
        };
        spawn_local(async move {
            match api::call::<_, ResourceView>(Method::Post, "/resources", &input).await {
                Ok(added) => {
                    notice.set(Some(format!("Resource server {} registered.", added.identifier)));
                    error.set(None);
                    identifier.set(String::new());
                    scopes.set(String::new());
                    reload();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let remove = move |identifier: String| {
        let path = format!("/resources/{}", js_sys::encode_uri_component(&identifier));
        spawn_local(async move {
            match api::act(Method::Delete, &path).await {
                Ok(()) => {
                    notice.set(Some(format!("Resource server {identifier} removed.")));
                    reload();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <header class="page-head"><h1>"Resource servers"</h1></header>
        {move || notice.get().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        <p class="muted">"A client given a resource server may ask for tokens with "<code>"resource"</code>
            " (RFC 8707): their audience is that API alone, with only the scopes it accepts."</p>
        <form class="card form" on:submit=add aria-label="Register a resource server">
            <label>"Identifier (absolute URI, no fragment)" <input name="identifier" required placeholder="https://api.example.com/" prop:value=move || identifier.get() on:input=move |ev| identifier.set(event_target_value(&ev))/></label>
            <label>"Scopes it accepts (space-separated; empty: any)" <input name="scopes" prop:value=move || scopes.get() on:input=move |ev| scopes.set(event_target_value(&ev))/></label>
            <label>"Client it introspects with (optional)"
                <select name="client_id" on:change=move |ev| client_id.set(event_target_value(&ev))>
                    <option value="">"None"</option>
                    {move || match clients.get() {
                        Load::Ready(list) => list.items.into_iter()
                            .filter(|c| c.client_type == "confidential")
                            .map(|c| view! { <option value=c.client_id.clone()>{format!("{} ({})", c.name, c.client_id)}</option> })
                            .collect_view().into_any(),
                        _ => ().into_any(),
                    }}
                </select>
            </label>
            <div class="actions"><button type="submit" class="button primary">"Register"</button></div>
        </form>
        {ui::show(list, move |l: ResourceList| if l.items.is_empty() {
            view! { <Empty message="No resource server registered yet."/> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table>
                    <thead><tr><th>"Identifier"</th><th>"Scopes"</th><th>"Introspects as"</th><th>"Created"</th><th></th></tr></thead>
                    <tbody>{l.items.into_iter().map(|r| {
                        let id = r.identifier.clone();
                        view! {
                            <tr>
                                <td><code>{r.identifier.clone()}</code></td>
                                <td>{if r.scopes.is_empty() { "any".to_string() } else { r.scopes.join(" ") }}</td>
                                <td>{ui::opt(&r.client_id)}</td>
                                <td>{ui::time(r.created_at)}</td>
                                <td><ConfirmButton label="Remove" question="Remove this resource server? Clients can no longer ask for it." danger=true on_confirm=move || remove(id.clone())/></td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
            }.into_any()
        })}
    }
}
