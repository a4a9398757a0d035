//! Upstream identity providers in the store (federation): registered with their client
//! secret sealed under the master key, bound to the provider's slug; identities at them
//! linked to local accounts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, spawn_app};
use idp::domain::upstream::NewUpstream;
use secrecy::{ExposeSecret, SecretString};

fn corp(slug: &str) -> NewUpstream {
    NewUpstream {
        slug: slug.into(),
        display_name: "Corporate login".into(),
        icon: None,
        issuer: "https://login.example.com".into(),
        protocol: idp::domain::upstream::Protocol::Oidc,
        token_auth: Default::default(),
        client_id: "aimpact".into(),
        scopes: vec!["email".into()],
        jit: true,
        trust_email: false,
        claims: Default::default(),
        allowed_domains: vec![],
        auto_link_domains: vec![],
        allowed_clients: vec![],
    }
}

async fn the_client_secret_is_stored_sealed_and_bound_to_its_provider(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = SecretString::from("s3cret-at-the-upstream".to_string());
    let actor = || idp::manage::Actor::Cli;
    idp::manage::upstreams::register(&app.services, corp("corp"), &secret, actor())
        .await
        .unwrap();
    let stored = app.services.store.find_upstream("corp").await.unwrap().unwrap();
    assert_eq!(stored.scopes, ["openid", "email"]);
    assert!(
        !stored.client_secret_sealed.windows(6).any(|w| w == b"s3cret"),
        "the secret is not stored in the clear"
    );
    let opened = idp::manage::upstreams::client_secret(&app.services, &stored).unwrap();
    assert_eq!(opened.expose_secret(), "s3cret-at-the-upstream");
    // Moved to another provider's row, the sealed secret does not open.
    let moved = idp::domain::upstream::Upstream {
        slug: "other".into(),
        ..stored.clone()
    };
    assert!(idp::manage::upstreams::client_secret(&app.services, &moved).is_err());

    // A second provider with the same slug is a conflict; removal is recorded.
    let again = idp::manage::upstreams::register(&app.services, corp("corp"), &secret, actor()).await;
    assert!(again.is_err_and(|e| e.to_string().contains("already exists")));
    idp::manage::upstreams::remove(&app.services, "corp", actor())
        .await
        .unwrap();
    assert!(app.services.store.list_upstreams().await.unwrap().is_empty());
    let events = app
        .services
        .store
        .query_events(&idp::audit::EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(
        kinds.contains(&"upstream_created") && kinds.contains(&"upstream_deleted"),
        "{kinds:?}"
    );
}

/// An upstream identity (issuer + subject) is linked to at most one account, found by those
/// two alone, and goes with the account.
async fn an_upstream_identity_links_to_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.services.store;
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;
    let now = app.services.clock.now();
    let link = |user_id, subject: &str| idp::domain::upstream::FederatedIdentity {
        issuer: "https://login.example.com".into(),
        subject: subject.into(),
        user_id,
        upstream: "corp".into(),
        email: Some("alice@example.com".into()),
        created_at: now,
        last_login_at: None,
    };
    store
        .link_identity(&link(alice.id, "248289761001"))
        .await
        .unwrap();
    // The same identity cannot be linked to a second account.
    let taken = store.link_identity(&link(bob.id, "248289761001")).await;
    assert!(
        matches!(taken, Err(idp::store::StoreError::Conflict(_))),
        "{taken:?}"
    );
    // Another issuer's same subject is another identity.
    let other = idp::domain::upstream::FederatedIdentity {
        issuer: "https://accounts.example.org".into(),
        ..link(bob.id, "248289761001")
    };
    store.link_identity(&other).await.unwrap();

    let found = store
        .find_identity("https://login.example.com", "248289761001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, alice.id);
    assert_eq!(found.last_login_at, None);
    store
        .touch_identity("https://login.example.com", "248289761001", now)
        .await
        .unwrap();
    let touched = store.identities_of_user(alice.id).await.unwrap();
    assert_eq!(touched.len(), 1);
    assert_eq!(
        touched[0].last_login_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    // Unlinking names the account: bob cannot unlink alice's identity.
    assert!(
        !store
            .unlink_identity(bob.id, "https://login.example.com", "248289761001")
            .await
            .unwrap()
    );
    assert!(
        store
            .unlink_identity(alice.id, "https://login.example.com", "248289761001")
            .await
            .unwrap()
    );
    assert!(store.identities_of_user(alice.id).await.unwrap().is_empty());
    // Deleting an account removes its links.
    assert!(store.delete_user(bob.id).await.unwrap());
    assert!(
        store
            .find_identity("https://accounts.example.org", "248289761001")
            .await
            .unwrap()
            .is_none()
    );
}

on_both_backends!(
    the_client_secret_is_stored_sealed_and_bound_to_its_provider,
    an_upstream_identity_links_to_one_account,
);
