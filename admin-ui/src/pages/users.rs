//! Users: a searchable, paginated table; a detail page with every action; sessions.

use api_types::{CreateUser, Revoked, SetPassword, UpdateUser, UserDetail as Detail, UserPage, UserSummary};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{self, Method};
use crate::ui::{self, Alert, ConfirmButton, Empty, Load};

#[component]
pub fn Users() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let rows = RwSignal::new(Vec::<UserSummary>::new());
    let next = RwSignal::new(None::<String>);
    let state = RwSignal::new(Load::<()>::Loading);
    let creating = RwSignal::new(false);

    let fetch = move |cursor: Option<String>| {
        let cursor_text = cursor.clone().unwrap_or_default();
        let path = format!(
            "/users{}",
            api::query(&[
                ("q", &search.get_untracked()),
                ("status", &status.get_untracked()),
                ("cursor", &cursor_text),
                ("limit", "25")
            ])
        );
        let append = cursor.is_some();
        ui::load(state, async move {
            let page: UserPage = api::get(&path).await?;
            if append {
                rows.update(|r| r.extend(page.items));
            } else {
                rows.set(page.items);
            }
            next.set(page.next_cursor);
            Ok(())
        });
    };
    fetch(None);
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        fetch(None);
    };
    view! {
        <header class="page-head">
            <h1>"Users"</h1>
            <button type="button" class="button primary" on:click=move |_| creating.update(|c| *c = !*c)>"New user"</button>
        </header>
        <Show when=move || creating.get()>
            <NewUser on_created=move || { creating.set(false); fetch(None); }/>
        </Show>
        <form class="filters" role="search" on:submit=on_search>
            <label>"Search"
                <input type="search" name="q" placeholder="username, email or name" prop:value=move || search.get()
                    on:input=move |ev| search.set(event_target_value(&ev))/>
            </label>
            <label>"Status"
                <select name="status" on:change=move |ev| { status.set(event_target_value(&ev)); fetch(None); }>
                    <option value="">"Any"</option>
                    <option value="active">"Active"</option>
                    <option value="disabled">"Disabled"</option>
                </select>
            </label>
            <button type="submit" class="button">"Search"</button>
        </form>
        <div class="table-wrap">
            <table>
                <thead><tr><th>"Username"</th><th>"Email"</th><th>"Name"</th><th>"Status"</th><th>"Roles"</th><th>"Created"</th><th>"Last login"</th></tr></thead>
                <tbody>
                    <For each=move || rows.get() key=|u| u.id.clone() let:user>
                        <tr>
                            <td><a href=format!("/admin/users/{}", user.id)>{user.username.clone()}</a></td>
                            <td>{ui::opt(&user.email)}</td>
                            <td>{ui::opt(&user.name)}</td>
                            <td><span class=format!("badge {}", user.status)>{user.status.clone()}</span></td>
                            <td>{user.roles.join(", ")}</td>
                            <td>{ui::time(user.created_at)}</td>
                            <td>{ui::opt_time(user.last_login_at)}</td>
                        </tr>
                    </For>
                </tbody>
            </table>
        </div>
        {move || match state.get() {
            Load::Loading => view! { <p class="muted" role="status">"Loading…"</p> }.into_any(),
            Load::Failed(e) => view! { <Alert message=e.to_string()/> }.into_any(),
            Load::Ready(()) if rows.with(Vec::is_empty) => view! { <Empty message="No user matches."/> }.into_any(),
            Load::Ready(()) => view! {
                <Show when=move || next.with(Option::is_some)>
                    <button type="button" class="button" on:click=move |_| fetch(next.get_untracked())>"Load more"</button>
                </Show>
            }.into_any(),
        }}
    }
}

#[component]
fn NewUser(on_created: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let admin = RwSignal::new(false);
    let temporary = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // Checked here first so the administrator hears at once; the server checks again.
        if username.get_untracked().trim().is_empty() {
            return error.set(Some("A username is required.".into()));
        }
        if password.get_untracked().chars().count() < 12 {
            return error.set(Some("The password needs at least 12 characters.".into()));
        }
        let body = CreateUser {
            username: username.get_untracked(),
            email: Some(email.get_untracked()).filter(|e| !e.trim().is_empty()),
            name: Some(name.get_untracked()).filter(|n| !n.trim().is_empty()),
            password: password.get_untracked(),
            roles: if admin.get_untracked() {
                vec![api_types::ADMIN_ROLE.into()]
            } else {
                vec![]
            },
            must_change_password: temporary.get_untracked(),
        };
        spawn_local(async move {
            match api::call::<_, UserSummary>(Method::Post, "/users", &body).await {
                Ok(_) => on_created(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <form class="card form" on:submit=submit aria-label="New user">
            <h2>"New user"</h2>
            {move || error.get().map(|e| view! { <Alert message=e/> })}
            <label>"Username" <input name="username" required prop:value=move || username.get() on:input=move |ev| username.set(event_target_value(&ev))/></label>
            <label>"Email" <input name="email" type="email" prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev))/></label>
            <label>"Name" <input name="name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
            <label>"Password" <input name="password" type="password" required minlength="12" autocomplete="new-password" prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/></label>
            <label class="check"><input type="checkbox" name="temporary" prop:checked=move || temporary.get() on:change=move |ev| temporary.set(event_target_checked(&ev))/>"Must change the password at first login"</label>
            <label class="check"><input type="checkbox" name="admin" prop:checked=move || admin.get() on:change=move |ev| admin.set(event_target_checked(&ev))/>"Administrator"</label>
            <div class="actions"><button type="submit" class="button primary">"Create user"</button></div>
        </form>
    }
}

#[component]
pub fn UserDetail() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let detail = RwSignal::new(Load::<Detail>::Loading);
    let notice = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let reload = move || {
        ui::load(detail, {
            let path = format!("/users/{}", id());
            async move { api::get(&path).await }
        })
    };
    reload();
    let act = move |path: String, done: &'static str| {
        spawn_local(async move {
            match api::act(Method::Post, &path).await {
                Ok(()) => {
                    error.set(None);
                    notice.set(Some(done.into()));
                    reload();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let navigate = use_navigate();
    let delete = move || {
        let path = format!("/users/{}", id());
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::act(Method::Delete, &path).await {
                Ok(()) => navigate("/admin/users", Default::default()),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let delete = StoredValue::new(delete);
    let unlink = move |issuer: String, subject: String| {
        let path = format!(
            "/users/{}/identities{}",
            id(),
            api::query(&[("issuer", &issuer), ("subject", &subject)])
        );
        spawn_local(async move {
            match api::act(Method::Delete, &path).await {
                Ok(()) => {
                    error.set(None);
                    notice.set(Some("Identity unlinked.".into()));
                    reload();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        {move || notice.get().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error.get().map(|e| view! { <Alert message=e/> })}
        {ui::show(detail, move |d: Detail| {
            let uid = d.user.id.clone();
            let disabled = d.user.status == "disabled";
            let (p1, p2, p3, p4) = (format!("/users/{uid}/enable"), format!("/users/{uid}/disable"), format!("/users/{uid}/unlock"), format!("/users/{uid}/revoke"));
            view! {
                <header class="page-head">
                    <h1>{d.user.username.clone()} " " <span class=format!("badge {}", d.user.status)>{d.user.status.clone()}</span></h1>
                    <div class="actions">
                        {if disabled {
                            view! { <button type="button" class="button" on:click=move |_| act(p1.clone(), "User enabled.")>"Enable"</button> }.into_any()
                        } else {
                            view! { <ConfirmButton label="Disable" question="Disable this user and end all their sessions?" danger=true on_confirm=move || act(p2.clone(), "User disabled; sessions and tokens revoked.")/> }.into_any()
                        }}
                        <button type="button" class="button" on:click=move |_| act(p3.clone(), "Login locks lifted.")>"Unlock"</button>
                        <ConfirmButton label="Revoke all sessions" question="End every session and revoke every token?" on_confirm=move || act(p4.clone(), "Sessions and tokens revoked.")/>
                        <ConfirmButton label="Delete" question="Delete this user for good?" danger=true on_confirm=move || delete.with_value(|f| f())/>
                    </div>
                </header>
                <div class="grid-2">
                    <section class="card">
                        <h2>"Profile"</h2>
                        <dl class="facts">
                            <dt>"Id"</dt><dd><code>{uid.clone()}</code></dd>
                            <dt>"Email"</dt><dd>{ui::opt(&d.user.email)} {if d.email_verified { " (verified)" } else { "" }}</dd>
                            <dt>"Name"</dt><dd>{ui::opt(&d.user.name)}</dd>
                            <dt>"Roles"</dt><dd>{d.user.roles.join(", ")}</dd>
                            <dt>"Created"</dt><dd>{ui::time(d.user.created_at)}</dd>
                            <dt>"Last login"</dt><dd>{ui::opt_time(d.user.last_login_at)}</dd>
                            <dt>"Failed logins"</dt><dd>{d.failed_login_count}</dd>
                            <dt>"Locked until"</dt><dd>{ui::opt_time(d.locked_until)}</dd>
                            <dt>"Password"</dt><dd>{if d.must_change_password { "temporary: must be changed" } else { "set by the user" }}</dd>
                        </dl>
                    </section>
                    <EditUser user=d.user.clone() on_saved=move || { notice.set(Some("Saved.".into())); reload(); }/>
                </div>
                <TemporaryPassword id=uid.clone() on_done=move || notice.set(Some("Temporary password set.".into()))/>
                <SecondFactors detail=d.clone() on_change=move |done: &'static str| { notice.set(Some(done.into())); reload(); }/>
                <SessionTables detail=d.clone() on_change=reload/>
                <section class="card">
                    <h2>"Consents"</h2>
                    {if d.consents.is_empty() { view! { <Empty message="No consent given."/> }.into_any() } else { view! {
                        <table><thead><tr><th>"Client"</th><th>"Scopes"</th><th>"Updated"</th></tr></thead><tbody>
                            {d.consents.iter().map(|c| view! { <tr><td>{c.client_id.clone()}</td><td>{c.scopes.join(" ")}</td><td>{ui::time(c.updated_at)}</td></tr> }).collect_view()}
                        </tbody></table>
                    }.into_any() }}
                </section>
                <section class="card">
                    <h2>"Linked identities"</h2>
                    {if d.identities.is_empty() { view! { <Empty message="No identity at another provider is linked."/> }.into_any() } else { view! {
                        <table><thead><tr><th>"Provider"</th><th>"Issuer"</th><th>"Subject"</th><th>"Email"</th><th>"Last sign-in"</th><th></th></tr></thead><tbody>
                            {d.identities.iter().map(|i| {
                                let (issuer, subject) = (i.issuer.clone(), i.subject.clone());
                                view! { <tr>
                                    <td>{i.upstream.clone()}</td><td class="uris">{i.issuer.clone()}</td><td><code>{i.subject.clone()}</code></td>
                                    <td>{ui::opt(&i.email)}</td><td>{ui::opt_time(i.last_login_at)}</td>
                                    <td><ConfirmButton label="Unlink" question="Unlink this identity? The user can no longer sign in with it." danger=true on_confirm=move || unlink(issuer.clone(), subject.clone())/></td>
                                </tr> }
                            }).collect_view()}
                        </tbody></table>
                    }.into_any() }}
                </section>
                <section class="card">
                    <h2>"Recent security events"</h2>
                    {crate::pages::events::table(d.recent_events.clone(), None)}
                </section>
            }
        })}
    }
}

#[component]
fn EditUser(user: UserSummary, on_saved: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let email = RwSignal::new(user.email.clone().unwrap_or_default());
    let name = RwSignal::new(user.name.clone().unwrap_or_default());
    let roles = RwSignal::new(user.roles.join(", "));
    let error = RwSignal::new(None::<String>);
    let id = user.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = |s: RwSignal<String>| Some(Some(s.get_untracked()).filter(|v| !v.trim().is_empty()));
        let body = UpdateUser {
            email: text(email),
            email_verified: None,
            name: text(name),
            roles: Some(
                roles
                    .get_untracked()
                    .split(',')
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect(),
            ),
        };
        let path = format!("/users/{id}");
        spawn_local(async move {
            match api::call::<_, UserSummary>(Method::Patch, &path, &body).await {
                Ok(_) => {
                    error.set(None);
                    on_saved();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <form class="card form" on:submit=submit aria-label="Edit profile">
            <h2>"Edit"</h2>
            {move || error.get().map(|e| view! { <Alert message=e/> })}
            <label>"Email" <input name="email" type="email" prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev))/></label>
            <label>"Name" <input name="name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
            <label>"Roles (comma-separated)" <input name="roles" prop:value=move || roles.get() on:input=move |ev| roles.set(event_target_value(&ev))/></label>
            <div class="actions"><button type="submit" class="button primary">"Save"</button></div>
        </form>
    }
}

#[component]
fn TemporaryPassword(id: String, on_done: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if password.get_untracked().chars().count() < 12 {
            return error.set(Some("The password needs at least 12 characters.".into()));
        }
        let body = SetPassword {
            password: password.get_untracked(),
        };
        let path = format!("/users/{id}/password");
        spawn_local(async move {
            match api::submit(Method::Post, &path, &body).await {
                Ok(()) => {
                    error.set(None);
                    password.set(String::new());
                    on_done();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <form class="card form inline" on:submit=submit aria-label="Temporary password">
            <h2>"Temporary password"</h2>
            {move || error.get().map(|e| view! { <Alert message=e/> })}
            <label>"New password (the user must change it at the next login)"
                <input name="temporary-password" type="password" autocomplete="new-password" prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/>
            </label>
            <button type="submit" class="button">"Set"</button>
        </form>
    }
}

/// A user's second factors: remove one, reset all, require enrolment.
#[component]
fn SecondFactors(
    detail: Detail,
    on_change: impl Fn(&'static str) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let uid = detail.user.id.clone();
    let mfa = detail.mfa.clone();
    let error = RwSignal::new(None::<String>);
    let send = move |method: Method, path: String, body: serde_json::Value, done: &'static str| {
        spawn_local(async move {
            match api::submit(method, &path, &body).await {
                Ok(_) => on_change(done),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let factors = mfa.factors.iter().map(|f| {
        let path = format!("/users/{uid}/mfa/factors/{}", f.id);
        view! {
            <tr>
                <td>{f.name.clone()}</td><td>{f.kind.clone()}</td><td>{ui::time(f.created_at)}</td><td>{ui::opt_time(f.last_used_at)}</td>
                <td><ConfirmButton label="Remove" question="Remove this factor?" on_confirm=move || send(Method::Delete, path.clone(), serde_json::json!({}), "Factor removed.")/></td>
            </tr>
        }
    }).collect_view();
    let reset_path = format!("/users/{uid}/mfa/reset");
    let require_path = format!("/users/{uid}/mfa/enrolment-required");
    let required = mfa.enrolment_required;
    view! {
        <section class="card" id="mfa">
            <h2>"Second factors"</h2>
            {move || error.get().map(|e| view! { <Alert message=e/> })}
            {if mfa.factors.is_empty() { view! { <Empty message="No second factor."/> }.into_any() } else { view! {
                <table><thead><tr><th>"Name"</th><th>"Kind"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead><tbody>{factors}</tbody></table>
            }.into_any() }}
            <p class="muted">{format!("{} recovery code(s) left.", mfa.recovery_codes_left)} {if required { " Must enrol at the next login." } else { "" }}</p>
            <div class="actions">
                <ConfirmButton label="Reset second factors" question="Remove every factor and recovery code, end every session, and make the user enrol again?" danger=true
                    on_confirm=move || send(Method::Post, reset_path.clone(), serde_json::json!({ "require_enrolment": true }), "Second factors reset; the user enrols again at the next login.")/>
                <button type="button" class="button" on:click=move |_| send(Method::Put, require_path.clone(), serde_json::json!({ "required": !required }), "Saved.")>
                    {if required { "Do not require enrolment" } else { "Require enrolment at next login" }}
                </button>
            </div>
        </section>
    }
}

/// A user's sessions and grants, each revocable.
#[component]
fn SessionTables(detail: Detail, on_change: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let uid = detail.user.id.clone();
    let error = RwSignal::new(None::<String>);
    let revoke = move |path: String| {
        spawn_local(async move {
            match api::call::<_, Revoked>(Method::Delete, &path, &serde_json::json!({})).await {
                Ok(_) => on_change(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let sessions = detail.sessions.iter().map(|s| {
        let path = format!("/users/{uid}/sessions/{}", s.sid);
        view! {
            <tr>
                <td>{ui::opt(&s.ip)}</td><td class="ua">{ui::opt(&s.user_agent)}</td>
                <td>{ui::time(s.auth_time)}</td><td>{ui::time(s.expires_at)}</td>
                <td><ConfirmButton label="End" question="End this session?" on_confirm=move || revoke(path.clone())/></td>
            </tr>
        }
    }).collect_view();
    let grants = detail.grants.iter().map(|g| {
        let path = format!("/users/{uid}/grants/{}", g.id);
        view! {
            <tr>
                <td>{g.client_id.clone()}</td><td>{g.scope.clone()}</td><td>{ui::time(g.created_at)}</td>
                <td>{ui::time(g.last_used_at)}</td><td>{ui::opt(&g.ip)}</td><td>{g.generation}</td>
                <td><ConfirmButton label="Revoke" question="Revoke this grant and its tokens?" on_confirm=move || revoke(path.clone())/></td>
            </tr>
        }
    }).collect_view();
    view! {
        <section class="card" id="sessions">
            <h2>"Sessions"</h2>
            {move || error.get().map(|e| view! { <Alert message=e/> })}
            {if detail.sessions.is_empty() { view! { <Empty message="No active session."/> }.into_any() } else { view! {
                <table><thead><tr><th>"IP"</th><th>"Browser"</th><th>"Logged in"</th><th>"Expires"</th><th></th></tr></thead><tbody>{sessions}</tbody></table>
            }.into_any() }}
            <h2>"Grants and refresh-token families"</h2>
            {if detail.grants.is_empty() { view! { <Empty message="No live grant."/> }.into_any() } else { view! {
                <table><thead><tr><th>"Client"</th><th>"Scope"</th><th>"Created"</th><th>"Last used"</th><th>"IP"</th><th>"Rotations"</th><th></th></tr></thead><tbody>{grants}</tbody></table>
            }.into_any() }}
        </section>
    }
}

/// Sessions by user: find the user, then review and end their sessions.
#[component]
pub fn Sessions() -> impl IntoView {
    let users = RwSignal::new(Load::<UserPage>::Loading);
    ui::load(users, api::get("/users?sort=-created&limit=50"));
    view! {
        <header class="page-head"><h1>"Sessions"</h1></header>
        <p class="muted">"Sessions and refresh-token families are reviewed and revoked per user. Recent users:"</p>
        {ui::show(users, |page: UserPage| view! {
            <ul class="link-list">
                {page.items.into_iter().map(|u| view! {
                    <li><a href=format!("/admin/users/{}#sessions", u.id)>{u.username}</a> <span class="muted">{ui::opt_time(u.last_login_at)}</span></li>
                }).collect_view()}
            </ul>
        })}
    }
}
