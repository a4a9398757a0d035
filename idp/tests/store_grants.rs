//! The store contract for grants, authorization codes and refresh tokens: every backend
//! must pass these, each test on a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{Duration, Utc};
use common::fixtures::{client, new_user, t0};
use common::{Backend, TestDb};

fn grant(id: &str, user: &str, expires: chrono::DateTime<Utc>) -> idp::domain::grant::Grant {
    idp::domain::grant::Grant {
        id: id.into(),
        client_id: "client-1".into(),
        user_id: Some(user.into()),
        session_id: Some("sid-1".into()),
        scope: "openid offline_access".into(),
        offline: true,
        created_at: t0(),
        expires_at: expires,
        revoked_at: None,
        auth_time: Some(t0()),
        amr: vec!["pwd".into()],
    }
}

fn refresh_token(
    hash: &str,
    grant_id: &str,
    generation: i64,
    expires: chrono::DateTime<Utc>,
) -> idp::domain::grant::RefreshToken {
    idp::domain::grant::RefreshToken {
        token_hash: hash.into(),
        grant_id: grant_id.into(),
        client_id: "client-1".into(),
        user_id: None,
        generation,
        parent_hash: None,
        state: idp::domain::grant::RefreshState::Active,
        scope: "openid".into(),
        created_at: t0(),
        expires_at: expires,
        last_used_at: None,
        rotated_at: None,
        successor_response: None,
    }
}

async fn rotation_is_a_compare_and_set_that_keeps_the_saved_answer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.create_client(&client("client-1")).await.unwrap();
    let user = store.create_user(&new_user("rot"), None, t0()).await.unwrap();
    let g = grant("g1", &user.id.to_string(), t0() + Duration::days(1));
    store.create_grant(&g).await.unwrap();
    assert_eq!(store.find_grant("g1").await.unwrap(), Some(g));
    store
        .insert_refresh_token(&refresh_token("r1", "g1", 1, t0() + Duration::days(1)))
        .await
        .unwrap();
    let successor = refresh_token("r2", "g1", 2, t0() + Duration::days(1));
    assert!(
        store
            .rotate_refresh_token("r1", &successor, Some(&[1, 2, 3]), t0())
            .await
            .unwrap()
    );
    let other = refresh_token("r3", "g1", 2, t0() + Duration::days(1));
    assert!(
        !store
            .rotate_refresh_token("r1", &other, None, t0())
            .await
            .unwrap(),
        "a second rotation of r1 loses"
    );
    assert!(
        store.find_refresh_token("r3").await.unwrap().is_none(),
        "the loser wrote nothing"
    );
    let retired = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(retired.state, idp::domain::grant::RefreshState::Rotated);
    assert_eq!(retired.successor_response.as_deref(), Some(&[1u8, 2, 3][..]));
    // The refresh grant's one read: token, grant and the user's status together.
    let family = store.find_refresh_family("r2").await.unwrap().unwrap();
    assert_eq!(
        (
            family.token.generation,
            family.grant.id.as_str(),
            family.user_active
        ),
        (2, "g1", true)
    );
    assert!(store.find_refresh_family("nope").await.unwrap().is_none());
    // Saved answers outlive the longest reuse window (300 s), then housekeeping clears them.
    let cleared = |counts: Vec<(&str, u64)>| {
        counts
            .iter()
            .find(|(k, _)| *k == "saved_refresh_responses")
            .map(|(_, n)| *n)
    };
    assert_eq!(
        cleared(
            store
                .delete_expired(t0() + Duration::seconds(200), 10)
                .await
                .unwrap()
        ),
        Some(0)
    );
    assert_eq!(
        cleared(
            store
                .delete_expired(t0() + Duration::seconds(301), 10)
                .await
                .unwrap()
        ),
        Some(1)
    );
    let retired = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(
        (retired.state, retired.successor_response),
        (idp::domain::grant::RefreshState::Rotated, None)
    );
    assert_eq!(store.grants_of_session("sid-1").await.unwrap().len(), 1);
    assert!(store.revoke_grant("g1", t0()).await.unwrap());
    assert!(!store.revoke_grant("g1", t0()).await.unwrap());
    assert_eq!(
        store.find_refresh_token("r2").await.unwrap().unwrap().state,
        idp::domain::grant::RefreshState::Revoked
    );
}

fn code(hash: &str, grant_id: &str, user: &str) -> idp::domain::grant::AuthorizationCode {
    idp::domain::grant::AuthorizationCode {
        code_hash: hash.into(),
        grant_id: grant_id.into(),
        client_id: "client-1".into(),
        user_id: user.into(),
        session_id: "sid-1".into(),
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        code_challenge_method: None,
        auth_time: t0(),
        amr: vec!["pwd".into()],
        created_at: t0(),
        expires_at: t0() + Duration::minutes(1),
        consumed_at: None,
    }
}

/// Tokens and codes reach their client and user through their grant (PostgreSQL keeps only
/// that reference, see migration 0006): deleting either still deletes all of them.
async fn deleting_a_user_or_client_deletes_their_grants_tokens_and_codes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.create_client(&client("client-1")).await.unwrap();
    let alice = store.create_user(&new_user("alice"), None, t0()).await.unwrap();
    let bob = store.create_user(&new_user("bob"), None, t0()).await.unwrap();
    for (name, user) in [("a", &alice), ("b", &bob)] {
        let user_id = user.id.to_string();
        store
            .create_grant(&grant(&format!("g-{name}"), &user_id, t0() + Duration::days(1)))
            .await
            .unwrap();
        let mut token = refresh_token(
            &format!("r-{name}"),
            &format!("g-{name}"),
            1,
            t0() + Duration::days(1),
        );
        token.user_id = Some(user_id.clone());
        store.insert_refresh_token(&token).await.unwrap();
        store
            .insert_code(&code(&format!("c-{name}"), &format!("g-{name}"), &user_id))
            .await
            .unwrap();
    }
    assert!(store.delete_user(alice.id).await.unwrap());
    assert!(store.find_grant("g-a").await.unwrap().is_none());
    assert!(store.find_refresh_token("r-a").await.unwrap().is_none());
    assert_eq!(
        store.consume_code("c-a", t0()).await.unwrap(),
        idp::domain::grant::CodeUse::Unknown
    );
    assert!(
        store.find_refresh_token("r-b").await.unwrap().is_some(),
        "another user's token stays"
    );
    assert!(store.delete_client("client-1").await.unwrap());
    assert!(store.find_grant("g-b").await.unwrap().is_none());
    assert!(store.find_refresh_token("r-b").await.unwrap().is_none());
    assert_eq!(
        store.consume_code("c-b", t0()).await.unwrap(),
        idp::domain::grant::CodeUse::Unknown
    );
}

async fn cleanup_deletes_only_what_has_expired(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.create_client(&client("client-1")).await.unwrap();
    let user = store.create_user(&new_user("old"), None, t0()).await.unwrap();
    let now = t0() + Duration::days(10);
    for i in 0..5 {
        store
            .create_grant(&grant(&format!("old{i}"), &user.id.to_string(), t0()))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh_token(&format!("ro{i}"), &format!("old{i}"), 1, t0()))
            .await
            .unwrap();
    }
    store
        .create_grant(&grant("live", &user.id.to_string(), now + Duration::days(1)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rl", "live", 1, now + Duration::days(1)))
        .await
        .unwrap();
    let counts = store.delete_expired(now, 2).await.unwrap();
    let count = |table: &str| counts.iter().find(|(t, _)| *t == table).map(|(_, n)| *n).unwrap();
    assert_eq!(count("refresh_tokens"), 5, "in batches of 2 until none is left");
    assert_eq!(count("grants"), 5);
    assert!(store.find_grant("live").await.unwrap().is_some());
    assert!(store.find_refresh_token("rl").await.unwrap().is_some());
    assert!(store.find_grant("old0").await.unwrap().is_none());
}

on_both_backends!(
    rotation_is_a_compare_and_set_that_keeps_the_saved_answer,
    cleanup_deletes_only_what_has_expired,
    deleting_a_user_or_client_deletes_their_grants_tokens_and_codes,
);
