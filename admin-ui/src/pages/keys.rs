//! Signing keys: their states, and rotation.

use api_types::{KeyList, RotateKeys};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Method};
use crate::ui::{self, Alert, ConfirmButton, Load};

#[component]
pub fn Keys() -> impl IntoView {
    let keys = RwSignal::new(Load::<KeyList>::Loading);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let reload = move || ui::load(keys, api::get("/keys"));
    reload();
    let rotate = move || {
        spawn_local(async move {
            match api::call::<_, KeyList>(Method::Post, "/keys/rotate", &RotateKeys { algs: None }).await {
                Ok(staged) => {
                    notice.set(Some(format!(
                        "{} new keys published; they start signing at {}.",
                        staged.items.len(),
                        staged
                            .items
                            .first()
                            .map(|k| ui::time(k.activates_at))
                            .unwrap_or_default()
                    )));
                    reload();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <header class="page-head">
            <h1>"Signing keys"</h1>
            <ConfirmButton label="Rotate keys" question="Publish new keys for every algorithm?" on_confirm=rotate/>
        </header>
        {move || notice.get().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        <p class="muted">"A new key is published in the JWKS at once and signs after the activation delay, so relying parties have fetched it first."</p>
        {ui::show(keys, |list: KeyList| view! {
            <div class="table-wrap"><table>
                <thead><tr><th>"Key id"</th><th>"Algorithm"</th><th>"State"</th><th>"Created"</th><th>"Signs from"</th><th>"Retired"</th></tr></thead>
                <tbody>{list.items.into_iter().map(|k| view! {
                    <tr>
                        <td><code>{k.kid}</code></td><td>{k.alg}</td>
                        <td><span class=format!("badge {}", k.state)>{k.state.clone()}</span></td>
                        <td>{ui::time(k.created_at)}</td><td>{ui::time(k.activates_at)}</td><td>{ui::opt_time(k.retired_at)}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
        })}
    }
}
