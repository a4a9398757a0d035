//! `/admin/api/v1/users`: find, create, change, lock out and delete users.

use actix_web::{HttpResponse, web};
use api_types::{
    CreateUser, MfaEnrolmentRequirement, MfaReset, MfaView, Revoked, SetPassword, UpdateUser, UserDetail,
    UserListQuery, UserPage, UserSummary,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use uuid::Uuid;

use super::auth::Admin;
use super::problem::ApiError;
use super::views;
use crate::audit::EventQuery;
use crate::domain::user::{User, UserStatus, parse_role};
use crate::manage::mfa;
use crate::manage::sessions::{self, Target};
use crate::manage::users::{self, AddUser, ProfileChange};
use crate::startup::AppState;
use crate::store::{UserCursor, UserQuery, UserSort};

#[utoipa::path(get, path = "/admin/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, description = "A page of users", body = UserPage)))]
pub async fn list(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<UserListQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid("limit must be 1 to 200".into()));
    }
    let sort = match q.sort.as_deref().unwrap_or("created") {
        "created" => UserSort::CreatedAsc,
        "-created" => UserSort::CreatedDesc,
        "username" => UserSort::UsernameAsc,
        "-username" => UserSort::UsernameDesc,
        other => return Err(ApiError::Invalid(format!("unknown sort {other:?}"))),
    };
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            Some(UserStatus::parse(raw).ok_or_else(|| ApiError::Invalid(format!("unknown status {raw:?}")))?)
        }
        None => None,
    };
    let role = match q.role.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(parse_role(raw).map_err(|e| ApiError::Invalid(e.to_string()))?),
        None => None,
    };
    let after = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    // One more than asked tells whether another page follows.
    let mut found = state
        .services
        .store
        .list_users(&UserQuery {
            search: q.q.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
            status,
            role,
            sort,
            after,
            limit: limit + 1,
        })
        .await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    Ok(web::Json(UserPage {
        next_cursor: more.then(|| found.last().map(encode_cursor)).flatten(),
        items: found.iter().map(views::user).collect(),
    }))
}

#[utoipa::path(post, path = "/admin/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserSummary), (status = 409, description = "Username taken", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = AddUser {
        username: body.username,
        email: body.email.filter(|e| !e.trim().is_empty()),
        name: body.name,
        password: SecretString::from(body.password),
        admin: false,
    };
    let user = users::create(
        &state.services,
        request,
        body.roles,
        body.must_change_password,
        admin.actor(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/admin/api/v1/users/{}", user.id)))
        .json(views::user(&user)))
}

#[utoipa::path(get, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "The user", body = UserDetail), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn get(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<UserDetail>, ApiError> {
    let services = &state.services;
    let user = users::get(services, user_id(&id)?).await?;
    let uid = user.id.to_string();
    let now = services.clock.now();
    let (failed_login_count, locked_until) = services.store.login_failures_of(&user.username.key()).await?;
    let events = services
        .store
        .query_events(&EventQuery {
            user_id: Some(uid.clone()),
            limit: 20,
            ..EventQuery::default()
        })
        .await?;
    Ok(web::Json(UserDetail {
        user: views::user(&user),
        email_verified: user.email_verified,
        must_change_password: user.must_change_password,
        updated_at: user.updated_at,
        failed_login_count,
        locked_until: locked_until.filter(|t| *t > now),
        sessions: services
            .store
            .sessions_of_user(&uid, now)
            .await?
            .iter()
            .map(views::session)
            .collect(),
        grants: services
            .store
            .grants_of_user(&uid, now)
            .await?
            .iter()
            .map(views::grant)
            .collect(),
        consents: services
            .store
            .consents_of_user(&uid)
            .await?
            .iter()
            .map(views::consent)
            .collect(),
        recent_events: events.iter().map(views::event).collect(),
        mfa: views::mfa(&mfa::summary(services, user.id).await?),
        identities: services
            .store
            .identities_of_user(user.id)
            .await?
            .iter()
            .map(super::upstreams::identity_view)
            .collect(),
    }))
}

#[utoipa::path(patch, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, description = "Changed", body = UserSummary), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> Result<web::Json<UserSummary>, ApiError> {
    let body = body.into_inner();
    let change = ProfileChange {
        email: body.email,
        email_verified: body.email_verified,
        name: body.name,
        roles: body.roles,
    };
    let user = users::update_profile(&state.services, user_id(&id)?, change, admin.actor()).await?;
    Ok(web::Json(views::user(&user)))
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its sessions, tokens and consents"), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    users::delete(&state.services, user_id(&id)?, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/disable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "Disabled; its sessions and tokens revoked", body = UserSummary), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn disable(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<UserSummary>, ApiError> {
    set_status(admin, state, id, UserStatus::Disabled).await
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/enable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "Enabled", body = UserSummary), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn enable(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<UserSummary>, ApiError> {
    set_status(admin, state, id, UserStatus::Active).await
}

async fn set_status(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    status: UserStatus,
) -> Result<web::Json<UserSummary>, ApiError> {
    let user = users::set_status_of(&state.services, user_id(&id)?, status, admin.actor()).await?;
    Ok(web::Json(views::user(&user)))
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/unlock", tag = "users", params(("id" = String, Path)),
    responses((status = 204, description = "Brute-force locks lifted from every source"), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn unlock(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::get(&state.services, user_id(&id)?).await?;
    users::unlock(&state.services, user.username.as_str(), admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/password", tag = "users", params(("id" = String, Path)), request_body = SetPassword,
    responses((status = 204, description = "Temporary password set; the user must change it at the next login"), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn set_password(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SetPassword>,
) -> Result<HttpResponse, ApiError> {
    let password = SecretString::from(body.into_inner().password);
    users::set_temporary_password(&state.services, user_id(&id)?, &password, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/revoke", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, description = "Every session ended and every grant revoked", body = Revoked), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn revoke_all(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<Revoked>, ApiError> {
    revoke(admin, state, &id, None).await
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/sessions/{sid}", tag = "sessions",
    params(("id" = String, Path), ("sid" = String, Path)),
    responses((status = 200, description = "The session ended, with the grants given in it", body = Revoked), (status = 404, description = "No such session", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn end_session(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<Revoked>, ApiError> {
    let (id, sid) = path.into_inner();
    revoke(admin, state, &id, Some(Target::Session(&sid))).await
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/grants/{grant_id}", tag = "sessions",
    params(("id" = String, Path), ("grant_id" = String, Path)),
    responses((status = 200, description = "The grant and its tokens revoked", body = Revoked), (status = 404, description = "No such grant", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn revoke_grant(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<Revoked>, ApiError> {
    let (id, grant) = path.into_inner();
    revoke(admin, state, &id, Some(Target::Grant(&grant))).await
}

async fn revoke(
    admin: Admin,
    state: web::Data<AppState>,
    id: &str,
    target: Option<Target<'_>>,
) -> Result<web::Json<Revoked>, ApiError> {
    let user = users::get(&state.services, user_id(id)?).await?;
    if user.id == admin.user.id {
        // Like disabling or deleting oneself: it would cut the branch the caller sits on.
        return Err(ApiError::Invalid(
            "you cannot revoke your own sessions here; log out instead".into(),
        ));
    }
    let ended = sessions::revoke_user_access(&state.services, &user, target, &admin.actor()).await?;
    Ok(web::Json(Revoked {
        sessions: ended.sessions,
        grants: ended.grants,
    }))
}

#[utoipa::path(get, path = "/admin/api/v1/users/{id}/mfa", tag = "mfa", params(("id" = String, Path)),
    responses((status = 200, description = "The user's second factors", body = MfaView), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn get_mfa(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<MfaView>, ApiError> {
    let summary = mfa::summary(&state.services, user_id(&id)?).await?;
    Ok(web::Json(views::mfa(&summary)))
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/mfa/factors/{factor_id}", tag = "mfa",
    params(("id" = String, Path), ("factor_id" = String, Path)),
    responses((status = 204, description = "Factor removed"), (status = 404, description = "No such user or factor", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn remove_factor(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, factor) = path.into_inner();
    let factor = Uuid::parse_str(&factor).map_err(|_| ApiError::NotFound("factor not found".into()))?;
    mfa::remove_factor(&state.services, user_id(&id)?, factor, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/mfa/reset", tag = "mfa", params(("id" = String, Path)), request_body = MfaReset,
    responses((status = 200, description = "Every factor and recovery code removed, every session ended and grant revoked", body = Revoked), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn reset_mfa(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Option<web::Json<MfaReset>>,
) -> Result<web::Json<Revoked>, ApiError> {
    let require = body.is_some_and(|b| b.require_enrolment);
    let ended = mfa::reset(&state.services, user_id(&id)?, require, admin.actor()).await?;
    Ok(web::Json(Revoked {
        sessions: ended.sessions,
        grants: ended.grants,
    }))
}

#[utoipa::path(put, path = "/admin/api/v1/users/{id}/mfa/enrolment-required", tag = "mfa", params(("id" = String, Path)), request_body = MfaEnrolmentRequirement,
    responses((status = 204, description = "Set"), (status = 404, description = "No such user", body = api_types::Problem, content_type = "application/problem+json")))]
pub async fn require_enrolment(
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<MfaEnrolmentRequirement>,
) -> Result<HttpResponse, ApiError> {
    mfa::require_enrolment(&state.services, user_id(&id)?, body.required, admin.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("user not found".into()))
}

fn encode_cursor(user: &User) -> String {
    let c = UserCursor::of(user);
    let text = serde_json::json!([c.created_at.timestamp_millis(), c.username_key, c.id]).to_string();
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(raw: &str) -> Result<UserCursor, ApiError> {
    let invalid = || ApiError::Invalid("the cursor is not one this API returned".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let (ms, username_key, id): (i64, String, Uuid) =
        serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(UserCursor {
        created_at: chrono::DateTime::from_timestamp_millis(ms).ok_or_else(invalid)?,
        username_key,
        id,
    })
}
