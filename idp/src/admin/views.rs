//! Domain records as the admin API shows them (the shared `api-types`).

use api_types::{ClientView, ConsentView, EventView, GrantView, KeyView, SessionView, UserSummary};
use chrono::{DateTime, Utc};

use crate::audit::SecurityEvent;
use crate::domain::client::Client;
use crate::domain::session::Session;
use crate::domain::user::User;
use crate::store::{ConsentRecord, GrantFamily, StoredKey};

pub fn user(u: &User) -> UserSummary {
    UserSummary {
        id: u.id.to_string(),
        username: u.username.as_str().to_string(),
        email: u.email.as_ref().map(|e| e.as_str().to_string()),
        name: u.name.clone(),
        status: u.status.as_str().to_string(),
        roles: u.roles.clone(),
        created_at: u.created_at,
        last_login_at: u.last_login_at,
    }
}

pub fn client(c: &Client) -> ClientView {
    let uris =
        |list: &[crate::domain::client::RedirectUri]| list.iter().map(|u| u.as_str().to_string()).collect();
    ClientView {
        client_id: c.id.clone(),
        name: c.name.clone(),
        client_type: c.client_type.as_str().to_string(),
        has_secret: c.secret_hash.is_some(),
        redirect_uris: uris(&c.redirect_uris),
        post_logout_redirect_uris: uris(&c.post_logout_redirect_uris),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        grant_types: c.grant_types.iter().map(|g| g.as_str().to_string()).collect(),
        scopes: c.scopes.clone(),
        token_endpoint_auth_method: c.token_endpoint_auth_method.as_str().to_string(),
        id_token_signed_response_alg: c.id_token_signed_response_alg.clone(),
        access_token_signing_alg: c.access_token_signing_alg.clone(),
        first_party: c.first_party,
        require_pkce: c.require_pkce,
        access_token_ttl_s: c.access_token_ttl_s,
        refresh_token_ttl_s: c.refresh_token_ttl_s,
        refresh_idle_ttl_s: c.refresh_idle_ttl_s,
        refresh_reuse_window_s: c.refresh_reuse_window_s,
        rate_limit_token_per_minute: c.rate_limit_token_per_minute,
        rate_limit_introspect_per_minute: c.rate_limit_introspect_per_minute,
        mfa: c.mfa.map(|m| m.as_str().to_string()),
        require_verified_email: c.require_verified_email,
        jwks: c.jwks.as_ref().and_then(|j| serde_json::to_value(j).ok()),
        jwks_uri: c.jwks_uri.clone(),
        require_par: c.require_par,
        dpop_bound_access_tokens: c.dpop_bound_access_tokens,
        profile: c.profile.map(|p| p.as_str().to_string()),
        resources: c.resources.clone(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

pub fn session(s: &Session) -> SessionView {
    SessionView {
        sid: s.sid.clone(),
        ip: s.ip.clone(),
        user_agent: s.user_agent.clone(),
        auth_time: s.auth_time,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
    }
}

pub fn grant(g: &GrantFamily) -> GrantView {
    GrantView {
        id: g.id.clone(),
        client_id: g.client_id.clone(),
        scope: g.scope.clone(),
        offline: g.offline,
        created_at: g.created_at,
        expires_at: g.expires_at,
        last_used_at: g.last_used_at,
        generation: g.generation,
        ip: g.ip.clone(),
    }
}

pub fn consent(c: &ConsentRecord) -> ConsentView {
    ConsentView {
        client_id: c.client_id.clone(),
        scopes: c.scopes.clone(),
        updated_at: c.updated_at,
    }
}

pub fn event(e: &SecurityEvent) -> EventView {
    EventView {
        id: e.id,
        occurred_at: e.occurred_at,
        event_type: e.event_type.as_str().to_string(),
        outcome: e.outcome.as_str().to_string(),
        user_id: e.user_id.clone(),
        username: e.username.clone(),
        client_id: e.client_id.clone(),
        actor_id: e.actor_id.clone(),
        ip: e.ip.clone(),
        user_agent: e.user_agent.clone(),
        request_id: e.request_id.clone(),
        details: e.details.clone(),
    }
}

/// The keys with their states: a key signs from its `activates_at` until a newer key of
/// its algorithm activates; it stays published (`retired`) until it is removed.
pub fn keys(all: &[StoredKey], now: DateTime<Utc>) -> Vec<KeyView> {
    all.iter()
        .map(|k| {
            let superseded = all.iter().any(|other| {
                other.alg == k.alg && other.activates_at > k.activates_at && other.activates_at <= now
            });
            let state = if k.removed_at.is_some() {
                "removed"
            } else if k.activates_at > now {
                "pending"
            } else if superseded || k.retired_at.is_some() {
                "retired"
            } else {
                "active"
            };
            KeyView {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                state: state.into(),
                created_at: k.created_at,
                activates_at: k.activates_at,
                retired_at: k.retired_at,
                removed_at: k.removed_at,
            }
        })
        .collect()
}

pub fn mfa(summary: &crate::manage::mfa::MfaSummary) -> api_types::MfaView {
    api_types::MfaView {
        factors: summary
            .factors
            .iter()
            .map(|f| api_types::FactorView {
                id: f.id.to_string(),
                kind: f.kind.as_str().to_string(),
                name: f.name.clone(),
                created_at: f.created_at,
                last_used_at: f.last_used_at,
            })
            .collect(),
        recovery_codes_left: summary.recovery_codes_left,
        enrolment_required: summary.user.mfa_enrolment_required,
    }
}
