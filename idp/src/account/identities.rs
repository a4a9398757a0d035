//! The account page's linked identities (federation): which upstream identities sign in to
//! this account, and unlinking one (never the account's last way to sign in).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::pages::{actor, done, failed, poster};
use crate::http::meta::RequestMeta;
use crate::manage::{ManageError, upstreams};
use crate::services::Services;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct UnlinkForm {
    csrf: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    subject: String,
}

/// The identities linked to the account, for the page.
pub(super) async fn linked(
    services: &Services,
    user_id: uuid::Uuid,
) -> Result<Vec<minijinja::Value>, ManageError> {
    let upstreams = services.store.list_upstreams().await?;
    Ok(services
        .store
        .identities_of_user(user_id)
        .await?
        .into_iter()
        .map(|i| {
            let provider = upstreams
                .iter()
                .find(|u| u.slug == i.upstream)
                .map_or(i.upstream.clone(), |u| u.display_name.clone());
            minijinja::context! {
                provider,
                issuer => i.issuer,
                subject => i.subject,
                email => i.email,
                linked => i.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                last_used => i.last_login_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            }
        })
        .collect())
}

/// `POST /account/identities/unlink`.
pub async fn unlink(
    req: HttpRequest,
    form: web::Form<UnlinkForm>,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> HttpResponse {
    let form = form.into_inner();
    let holder = match poster(&state, &req, &form.csrf).await {
        Ok(holder) => holder,
        Err(answer) => return answer,
    };
    let actor = actor(&holder, &meta);
    match upstreams::unlink(
        &state.services,
        holder.user.id,
        &form.issuer,
        &form.subject,
        actor,
    )
    .await
    {
        Ok(()) => done("identity"),
        Err(e) => failed(&state, e),
    }
}
