//! The store contract: every backend must pass these, each test on a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::fixtures::{client, new_user, t0};
use common::{Backend, TestDb};
use idp::audit::{EventQuery, EventType, Outcome, SecurityEvent};
use idp::domain::user::{Email, UserStatus};
use idp::store::{StoreError, StoredKey, UserCursor, UserQuery};

async fn a_created_user_is_found_by_id_and_case_insensitive_username(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let created = store
        .create_user(&new_user("Alice"), Some("$argon2id$phc"), t0())
        .await
        .unwrap();
    assert_eq!(created.username.as_str(), "Alice");
    assert_eq!(created.status, UserStatus::Active);
    assert_eq!(created.created_at, t0(), "millisecond precision is kept");
    assert_eq!(store.find_user(created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(
        store.find_user_by_username("alice").await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store.password_phc(created.id).await.unwrap().as_deref(),
        Some("$argon2id$phc")
    );
}

async fn usernames_and_emails_are_unique_ignoring_case(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.create_user(&new_user("bob"), None, t0()).await.unwrap();
    let mut same_name = new_user("BOB");
    same_name.email = None;
    let again = store.create_user(&same_name, Some("phc"), t0()).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(what)) if what.contains("username")),
        "{again:?}"
    );
    let mut other = new_user("robert");
    other.email = Some(Email::parse("Bob@Example.com").unwrap());
    let again = store.create_user(&other, None, t0()).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(what)) if what.contains("email")),
        "{again:?}"
    );
    // The failed creation wrote nothing: no half-written user.
    assert!(store.find_user_by_username("robert").await.unwrap().is_none());
}

async fn users_page_by_cursor_and_search_by_substring(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    for (i, name) in ["carol", "dave", "erin", "caroline"].iter().enumerate() {
        store
            .create_user(&new_user(name), None, t0() + Duration::seconds(i as i64))
            .await
            .unwrap();
    }
    let first = store
        .list_users(&UserQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = first.iter().map(|u| u.username.as_str().to_string()).collect();
    assert_eq!(names, ["carol", "dave"]);
    let after = first.last().map(UserCursor::of);
    let second = store
        .list_users(&UserQuery {
            limit: 2,
            after,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = second.iter().map(|u| u.username.as_str().to_string()).collect();
    assert_eq!(names, ["erin", "caroline"]);
    let found = store
        .list_users(&UserQuery {
            search: Some("CAROL".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let none = store
        .list_users(&UserQuery {
            search: Some("%".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "LIKE wildcards in a search are literal");
}

async fn status_and_password_changes_persist(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let user = store.create_user(&new_user("frank"), None, t0()).await.unwrap();
    assert_eq!(store.password_phc(user.id).await.unwrap(), None);
    store.set_password_phc(user.id, "first", t0()).await.unwrap();
    store.set_password_phc(user.id, "second", t0()).await.unwrap();
    assert_eq!(
        store.password_phc(user.id).await.unwrap().as_deref(),
        Some("second")
    );
    assert!(
        store
            .set_user_status(user.id, UserStatus::Disabled, t0())
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_user(user.id).await.unwrap().unwrap().status,
        UserStatus::Disabled
    );
    assert!(
        !store
            .set_user_status(uuid::Uuid::new_v4(), UserStatus::Disabled, t0())
            .await
            .unwrap()
    );
}

async fn an_admin_exists_only_when_an_active_user_has_the_role(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    assert!(!store.admin_exists().await.unwrap());
    store.create_user(&new_user("plain"), None, t0()).await.unwrap();
    assert!(!store.admin_exists().await.unwrap());
    let mut admin = new_user("root");
    admin.roles = vec!["admin".into()];
    let admin = store.create_user(&admin, None, t0()).await.unwrap();
    assert!(store.admin_exists().await.unwrap());
    store
        .set_user_status(admin.id, UserStatus::Disabled, t0())
        .await
        .unwrap();
    assert!(!store.admin_exists().await.unwrap());
}

async fn clients_round_trip_and_are_removed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let c = client("client-1");
    store.create_client(&c).await.unwrap();
    assert_eq!(store.find_client("client-1").await.unwrap(), Some(c.clone()));
    assert!(matches!(
        store.create_client(&c).await,
        Err(StoreError::Conflict(_))
    ));
    store.create_client(&client("client-2")).await.unwrap();
    assert_eq!(store.list_clients().await.unwrap().len(), 2);
    assert!(store.delete_client("client-1").await.unwrap());
    assert!(!store.delete_client("client-1").await.unwrap());
    assert_eq!(store.find_client("client-1").await.unwrap(), None);
}

async fn signing_keys_are_listed_until_removed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let key = |kid: &str, offset: i64, removed: bool| StoredKey {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key_enc: vec![0, 1, 2, 255],
        public_jwk: "{}".into(),
        created_at: t0(),
        activates_at: t0() + Duration::seconds(offset),
        retired_at: None,
        removed_at: removed.then(t0),
    };
    store.insert_signing_key(&key("b", 10, false)).await.unwrap();
    store.insert_signing_key(&key("a", 0, false)).await.unwrap();
    store.insert_signing_key(&key("gone", 0, true)).await.unwrap();
    let published = store.published_signing_keys().await.unwrap();
    assert_eq!(
        published.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(published[0], key("a", 0, false));
}

async fn security_events_are_filtered_and_paged_newest_first(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    for i in 0..5 {
        let mut e = SecurityEvent::new(
            if i % 2 == 0 {
                EventType::LoginFailed
            } else {
                EventType::LoginSucceeded
            },
            if i % 2 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            t0() + Duration::seconds(i),
        );
        e.ip = Some(format!("192.0.2.{}", i % 2));
        e.details = serde_json::json!({ "n": i });
        store.record_event(&e).await.unwrap();
    }
    let failures = store
        .query_events(&EventQuery {
            event_type: Some(EventType::LoginFailed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        failures
            .iter()
            .map(|e| e.details["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [4, 2, 0]
    );
    let page = store
        .query_events(&EventQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let next = store
        .query_events(&EventQuery {
            limit: 2,
            before_id: Some(page[1].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|e| e.details["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let by_ip = store
        .query_events(&EventQuery {
            ip: Some("192.0.2.1".into()),
            from: Some(t0() + Duration::seconds(2)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_ip.len(), 1);
    assert_eq!(by_ip[0].event_type, EventType::LoginSucceeded);
}

async fn migrating_twice_is_a_no_op(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.migrate().await.unwrap();
    store.create_user(&new_user("after"), None, t0()).await.unwrap();
}

async fn concurrent_migrations_from_two_pools_leave_one_schema(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = idp::store::ConnectOptions {
        url: db.url.clone(),
        backup_url: None,
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    };
    let (a, b) = tokio::join!(idp::store::connect(&options), idp::store::connect(&options));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.create_user(&new_user("one"), None, t0()).await.unwrap();
    assert!(b.find_user_by_username("one").await.unwrap().is_some());
}

async fn old_security_events_are_pruned_in_batches(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    for days in [400, 380, 370, 10, 1] {
        let event = SecurityEvent::new(
            EventType::LoginSucceeded,
            Outcome::Success,
            t0() - Duration::days(days),
        );
        store.record_event(&event).await.unwrap();
    }
    assert_eq!(
        store.prune_events(t0() - Duration::days(365), 2).await.unwrap(),
        3
    );
    let left = store
        .query_events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
}

on_both_backends!(
    old_security_events_are_pruned_in_batches,
    a_created_user_is_found_by_id_and_case_insensitive_username,
    usernames_and_emails_are_unique_ignoring_case,
    users_page_by_cursor_and_search_by_substring,
    status_and_password_changes_persist,
    an_admin_exists_only_when_an_active_user_has_the_role,
    clients_round_trip_and_are_removed,
    signing_keys_are_listed_until_removed,
    security_events_are_filtered_and_paged_newest_first,
    migrating_twice_is_a_no_op,
    concurrent_migrations_from_two_pools_leave_one_schema,
);

#[test]
fn both_backends_have_the_same_migrations() {
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/../migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
    assert!(!names("sqlite").is_empty());
}
