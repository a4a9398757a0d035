//! The store contract for grants, authorization codes and refresh tokens: every backend
//! must pass these, each test on a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::fixtures::{client, new_user, t0};
use common::{Backend, TestDb};
use idp::store::{RefreshRotation, Store};
use std::sync::Arc;

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
        dpop_jkt: Some("jkt-1".into()),
        resources: vec!["https://api.example.com/".into()],
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

/// A fresh store holding `client-1`, a user and that user's grant `g1`, expiring in a day.
async fn store_with_grant(
    backend: Backend,
    username: &str,
) -> (TestDb, Arc<dyn Store>, idp::domain::user::User, DateTime<Utc>) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.create_client(&client("client-1")).await.unwrap();
    let user = store.create_user(&new_user(username), None, t0()).await.unwrap();
    let expires = t0() + Duration::days(1);
    store
        .create_grant(&grant("g1", &user.id.to_string(), expires))
        .await
        .unwrap();
    (db, store, user, expires)
}

/// A strict rotation by `client-1` with no idle timeout.
fn rotation<'a>(token_hash: &'a str, successor_hash: &'a str, now: DateTime<Utc>) -> RefreshRotation<'a> {
    RefreshRotation {
        token_hash,
        successor_hash,
        client_id: "client-1",
        now,
        idle_cutoff: None,
    }
}

async fn strict_rotation_checks_every_rule_and_rotates_once(backend: Backend) {
    use idp::domain::grant::RefreshState;
    let (_db, store, user, expires) = store_with_grant(backend, "strict").await;
    store
        .insert_refresh_token(&refresh_token("r1", "g1", 1, expires))
        .await
        .unwrap();
    let now = t0() + Duration::seconds(10);
    let rotated = |r: RefreshRotation<'static>| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token_if_valid(&r)
                .await
                .unwrap()
                .map(|a| a.rotated)
        }
    };

    // Every rule holds: the family comes back as it was, and the successor follows it.
    let attempt = store
        .rotate_refresh_token_if_valid(&rotation("r1", "r2", now))
        .await
        .unwrap()
        .unwrap();
    assert!(attempt.rotated);
    assert_eq!(
        attempt.family.token.state,
        RefreshState::Active,
        "the family as read before"
    );
    assert_eq!(
        (attempt.family.grant.id.as_str(), attempt.family.user_active),
        ("g1", true)
    );
    let retired = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(
        (retired.state, retired.rotated_at),
        (RefreshState::Rotated, Some(now))
    );
    let next = store.find_refresh_token("r2").await.unwrap().unwrap();
    assert_eq!(
        (
            next.state,
            next.generation,
            next.parent_hash.as_deref(),
            next.scope.as_str()
        ),
        (RefreshState::Active, 2, Some("r1"), "openid")
    );
    assert_eq!(
        (next.grant_id.as_str(), next.client_id.as_str()),
        ("g1", "client-1")
    );
    assert_eq!((next.created_at, next.expires_at), (now, expires));

    // A retired token does not rotate again and says so; an unknown one is not found.
    let again = store
        .rotate_refresh_token_if_valid(&rotation("r1", "r3", now))
        .await
        .unwrap()
        .unwrap();
    assert!(!again.rotated);
    assert_eq!(again.family.token.state, RefreshState::Rotated);
    assert!(
        store.find_refresh_token("r3").await.unwrap().is_none(),
        "the loser wrote nothing"
    );
    assert!(rotated(rotation("nope", "r3", now)).await.is_none());

    // Each rule refuses on its own, and leaves the token active.
    let other_client = RefreshRotation {
        client_id: "client-2",
        ..rotation("r2", "r3", now)
    };
    assert_eq!(
        rotated(other_client).await,
        Some(false),
        "issued to another client"
    );
    assert_eq!(
        rotated(rotation("r2", "r3", expires)).await,
        Some(false),
        "expired"
    );
    let idle = |cutoff| RefreshRotation {
        idle_cutoff: Some(cutoff),
        ..rotation("r2", "r3", now)
    };
    assert_eq!(
        rotated(idle(now + Duration::milliseconds(1))).await,
        Some(false),
        "idle too long"
    );
    store
        .set_user_status(user.id, idp::domain::user::UserStatus::Disabled, now)
        .await
        .unwrap();
    assert_eq!(
        rotated(rotation("r2", "r3", now)).await,
        Some(false),
        "the user is disabled"
    );
    store
        .set_user_status(user.id, idp::domain::user::UserStatus::Active, now)
        .await
        .unwrap();
    assert_eq!(
        store.find_refresh_token("r2").await.unwrap().unwrap().state,
        RefreshState::Active
    );
    // Issued exactly at the idle cutoff is still within the timeout.
    assert_eq!(rotated(idle(now)).await, Some(true));

    // A revoked grant's tokens never rotate.
    store
        .create_grant(&grant("g2", &user.id.to_string(), expires))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("x1", "g2", 1, expires))
        .await
        .unwrap();
    store.revoke_grant("g2", now).await.unwrap();
    assert_eq!(
        rotated(rotation("x1", "x2", now)).await,
        Some(false),
        "the grant is revoked"
    );

    // Of concurrent attempts on one token exactly one rotates, and one successor exists.
    let successors: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    let attempts = successors.iter().map(|s| {
        let store = store.clone();
        let s = s.clone();
        async move {
            store
                .rotate_refresh_token_if_valid(&rotation("r3", &s, now))
                .await
                .unwrap()
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(
        results
            .iter()
            .filter(|a| a.as_ref().is_some_and(|a| a.rotated))
            .count(),
        1
    );
    let mut stored = 0;
    for s in &successors {
        stored += usize::from(store.find_refresh_token(s).await.unwrap().is_some());
    }
    assert_eq!(stored, 1);
}

/// Many rotations at once (on PostgreSQL they share statements): each caller hears about its
/// own token, each token rotates at most once, and a rotation that fails fails alone.
async fn concurrent_rotations_each_answer_their_own_caller(backend: Backend) {
    use idp::domain::grant::RefreshState;
    let (_db, store, _, expires) = store_with_grant(backend, "many").await;
    for i in 0..20 {
        store
            .insert_refresh_token(&refresh_token(&format!("t{i}"), "g1", 1, expires))
            .await
            .unwrap();
    }
    let now = t0() + Duration::seconds(10);
    // Each valid token twice (a, b), each odd one also by another client, and unknown ones.
    let mut asked: Vec<(String, String, &str)> = Vec::new();
    for i in 0..20 {
        asked.push((format!("t{i}"), format!("t{i}a"), "client-1"));
        asked.push((format!("t{i}"), format!("t{i}b"), "client-1"));
        if i % 2 == 1 {
            asked.push((format!("t{i}"), format!("t{i}x"), "client-2"));
        }
        asked.push((format!("unknown{i}"), format!("u{i}"), "client-1"));
    }
    let attempts = asked.iter().map(|(token, successor, client_id)| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token_if_valid(&RefreshRotation {
                    client_id,
                    ..rotation(token, successor, now)
                })
                .await
                .unwrap()
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    for ((token, successor, client_id), result) in asked.iter().zip(&results) {
        if token.starts_with("unknown") {
            assert!(result.is_none(), "{token} does not exist");
            continue;
        }
        let attempt = result.as_ref().expect("a known token");
        assert_eq!(
            &attempt.family.token.token_hash, token,
            "each caller gets its own token"
        );
        let stored = store.find_refresh_token(successor).await.unwrap();
        assert_eq!(
            attempt.rotated,
            stored.is_some(),
            "{successor} stored iff it rotated"
        );
        if *client_id == "client-2" {
            assert!(!attempt.rotated, "another client's token never rotates");
        }
    }
    for i in 0..20 {
        let token = format!("t{i}");
        let wins = asked
            .iter()
            .zip(&results)
            .filter(|((t, _, _), r)| *t == token && r.as_ref().is_some_and(|a| a.rotated))
            .count();
        assert_eq!(wins, 1, "{token} rotates exactly once");
        let retired = store.find_refresh_token(&token).await.unwrap().unwrap();
        assert_eq!(retired.state, RefreshState::Rotated);
    }

    // Two rotations naming the same successor: one succeeds, the other fails alone and
    // leaves its token as it was.
    for hash in ["d1", "d2", "d3"] {
        store
            .insert_refresh_token(&refresh_token(hash, "g1", 1, expires))
            .await
            .unwrap();
    }
    let clash = |token: &'static str, successor: &'static str| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token_if_valid(&rotation(token, successor, now))
                .await
        }
    };
    let (first, second, third) =
        tokio::join!(clash("d1", "same"), clash("d2", "same"), clash("d3", "d3next"));
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one of two rotations to one successor succeeds"
    );
    let (won, lost) = if first.is_ok() { ("d1", "d2") } else { ("d2", "d1") };
    assert_eq!(
        store
            .find_refresh_token("same")
            .await
            .unwrap()
            .unwrap()
            .parent_hash
            .as_deref(),
        Some(won)
    );
    assert_eq!(
        store.find_refresh_token(lost).await.unwrap().unwrap().state,
        RefreshState::Active,
        "the failed rotation wrote nothing"
    );
    assert!(
        third.unwrap().unwrap().rotated,
        "an unrelated rotation is unaffected"
    );
}

on_both_backends!(
    strict_rotation_checks_every_rule_and_rotates_once,
    concurrent_rotations_each_answer_their_own_caller,
    rotation_is_a_compare_and_set_that_keeps_the_saved_answer,
    cleanup_deletes_only_what_has_expired,
    deleting_a_user_or_client_deletes_their_grants_tokens_and_codes,
);
