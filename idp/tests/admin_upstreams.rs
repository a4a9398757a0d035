//! Upstream identity providers through the admin API (federation): registered, changed,
//! disabled, tested against a real OpenID provider (a second `idp` on 127.0.0.1) and removed;
//! the client secret is never returned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_support;
mod common;

use admin_support::{assert_problem, setup};
use common::{Backend, spawn_app};
use serde_json::{Value, json};

async fn upstreams_are_managed_and_tested_through_the_admin_api(backend: Backend) {
    let admin = setup(backend).await;
    // The upstream: another provider, found by its discovery document.
    let upstream = spawn_app(Backend::Sqlite).await;
    let secret = "upstream-secret-7c1e";
    let response = admin
        .post(
            "/upstreams",
            json!({
                "slug": "corp", "display_name": "Corporate login", "issuer": upstream.base,
                "client_id": "aimpact", "client_secret": secret, "scopes": ["email"], "jit": true,
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["scopes"], json!(["openid", "email"]));
    assert_eq!(
        created["redirect_uri"],
        format!("{}/upstream/corp/callback", admin.app.base)
    );
    assert!(!created.to_string().contains(secret), "never returned");
    let again = admin
        .post(
            "/upstreams",
            json!({"slug": "corp", "display_name": "X", "issuer": upstream.base, "client_id": "a", "client_secret": "s"}),
        )
        .await;
    assert_problem(again, 409).await;
    let bad = admin
        .post(
            "/upstreams",
            json!({"slug": "bad", "display_name": "X", "issuer": "http://login.example.com", "client_id": "a", "client_secret": "s"}),
        )
        .await;
    assert_problem(bad, 400).await;

    // Test connection: the discovery document names the issuer.
    let tested = admin
        .call(reqwest::Method::POST, "/upstreams/corp/test", None)
        .await;
    assert_eq!(tested.status(), 200);
    let tested: Value = tested.json().await.unwrap();
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["token_endpoint"], format!("{}/token", upstream.base));
    assert_eq!(tested["iss_parameter_supported"], true);

    // Disabled, with a new secret; the listing never shows one.
    let changed = admin
        .call(
            reqwest::Method::PATCH,
            "/upstreams/corp",
            Some(json!({"enabled": false, "client_secret": "rotated-secret", "allowed_domains": ["Example.com"]})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["allowed_domains"], json!(["example.com"]));

    // Claim mapping and linking by address: the latter only with trusted addresses.
    let mapped = admin
        .call(
            reqwest::Method::PATCH,
            "/upstreams/corp",
            Some(json!({"claim_username": "upn", "trust_email": true, "auto_link_domains": ["example.com"]})),
        )
        .await;
    assert_eq!(mapped.status(), 200);
    let mapped: Value = mapped.json().await.unwrap();
    assert_eq!(mapped["claim_username"], "upn");
    assert_eq!(mapped["claim_email"], "email", "unchanged");
    assert_eq!(mapped["auto_link_domains"], json!(["example.com"]));
    let untrusted = admin
        .call(
            reqwest::Method::PATCH,
            "/upstreams/corp",
            Some(json!({"trust_email": false})),
        )
        .await;
    assert_problem(untrusted, 400).await;
    let bad_claim = admin
        .call(
            reqwest::Method::PATCH,
            "/upstreams/corp",
            Some(json!({"claim_name": "full name"})),
        )
        .await;
    assert_problem(bad_claim, 400).await;
    let stored = admin
        .app
        .services
        .store
        .find_upstream("corp")
        .await
        .unwrap()
        .unwrap();
    let opened = idp::manage::upstreams::client_secret(&admin.app.services, &stored).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), "rotated-secret");
    let listed = admin.get("/upstreams").await;
    assert_eq!(listed["items"][0]["slug"], "corp");
    assert!(!listed.to_string().contains("rotated-secret"));
    assert!(admin.audited("upstream_changed").await);

    // A provider whose document names another issuer fails the test, saying why.
    admin
        .post(
            "/upstreams",
            json!({"slug": "mixup", "display_name": "Mix-up", "issuer": format!("{}/", upstream.base),
                   "client_id": "a", "client_secret": "s"}),
        )
        .await;
    let tested: Value = admin
        .call(reqwest::Method::POST, "/upstreams/mixup/test", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], false);
    assert!(
        tested["error"].as_str().unwrap().contains("calls itself"),
        "{tested}"
    );

    let removed = admin.call(reqwest::Method::DELETE, "/upstreams/corp", None).await;
    assert_eq!(removed.status(), 204);
    assert_problem(
        admin.call(reqwest::Method::DELETE, "/upstreams/corp", None).await,
        404,
    )
    .await;
    assert_problem(
        admin
            .call(reqwest::Method::POST, "/upstreams/corp/test", None)
            .await,
        404,
    )
    .await;
}

/// A plain OAuth 2.0 provider: GitHub's preset, its endpoints changed, tested by reaching
/// its user API; an OpenID provider's endpoints cannot be set.
async fn plain_oauth2_providers_are_managed_through_the_admin_api(backend: Backend) {
    let admin = setup(backend).await;
    let response = admin
        .post(
            "/upstreams",
            json!({"kind": "github", "slug": "github", "display_name": "GitHub", "client_id": "Iv1.abc",
                   "client_secret": "s3cret", "jit": true}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["kind"], "oauth2");
    assert_eq!(created["issuer"], "https://github.com");
    assert_eq!(created["userinfo_endpoint"], "https://api.github.com/user");
    assert_eq!(created["claim_subject"], "id");
    assert_eq!(created["claim_username"], "login");
    assert_eq!(created["scopes"], json!(["read:user", "user:email"]));
    let incomplete = admin
        .post(
            "/upstreams",
            json!({"kind": "oauth2", "slug": "forge", "display_name": "Forge", "issuer": "https://forge.example.com",
                   "client_id": "a", "client_secret": "s", "authorization_endpoint": "https://forge.example.com/authorize"}),
        )
        .await;
    assert_problem(incomplete, 400).await;

    // Pointed at an API that answers (this provider's own userinfo, which refuses without a
    // token: reachable), then at a closed port.
    let changed = admin
        .call(
            reqwest::Method::PATCH,
            "/upstreams/github",
            Some(json!({"userinfo_endpoint": format!("{}/userinfo", admin.app.base), "claim_subject": "node_id"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["claim_subject"], "node_id");
    assert_eq!(
        changed["emails_endpoint"], "https://api.github.com/user/emails",
        "unchanged"
    );
    let tested: Value = admin
        .call(reqwest::Method::POST, "/upstreams/github/test", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(
        tested["token_endpoint"],
        "https://github.com/login/oauth/access_token"
    );
    let closed = format!("http://127.0.0.1:{}/user", e2e::free_port());
    admin
        .call(
            reqwest::Method::PATCH,
            "/upstreams/github",
            Some(json!({"userinfo_endpoint": closed})),
        )
        .await;
    let tested: Value = admin
        .call(reqwest::Method::POST, "/upstreams/github/test", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], false, "{tested}");

    // The login button's icon: a small data: URI of an image, or none.
    let icon = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnLz4=";
    for (change, status, shown) in [
        (json!({"icon": icon}), 200, json!(icon)),
        (json!({"icon": "https://example.com/logo.png"}), 400, json!(icon)),
        (json!({"icon": ""}), 200, Value::Null),
    ] {
        let response = admin
            .call(reqwest::Method::PATCH, "/upstreams/github", Some(change))
            .await;
        assert_eq!(response.status(), status);
        let listed = admin.get("/upstreams").await;
        assert_eq!(listed["items"][0]["icon"], shown);
    }

    // An OpenID provider is found by discovery: no endpoints, its subject is `sub`.
    admin
        .post(
            "/upstreams",
            json!({"slug": "corp", "display_name": "Corp", "issuer": "https://login.example.com",
                   "client_id": "a", "client_secret": "s"}),
        )
        .await;
    for change in [
        json!({"token_endpoint": "https://login.example.com/token"}),
        json!({"claim_subject": "email"}),
    ] {
        let refused = admin
            .call(reqwest::Method::PATCH, "/upstreams/corp", Some(change))
            .await;
        assert_problem(refused, 400).await;
    }
}

/// A user's linked identities in their detail, and unlinked by an administrator.
async fn linked_identities_are_shown_and_unlinked(backend: Backend) {
    let admin = setup(backend).await;
    let rita = admin.user_id("rita").await;
    let user_id = uuid::Uuid::parse_str(&rita).unwrap();
    admin
        .app
        .services
        .store
        .link_identity(&idp::domain::upstream::FederatedIdentity {
            issuer: "https://login.example.com".into(),
            subject: "rita-at-corp".into(),
            user_id,
            upstream: "corp".into(),
            email: Some("rita@example.com".into()),
            created_at: admin.app.services.clock.now(),
            last_login_at: None,
        })
        .await
        .unwrap();
    let detail = admin.get(&format!("/users/{rita}")).await;
    assert_eq!(detail["identities"][0]["subject"], "rita-at-corp");
    assert_eq!(detail["identities"][0]["upstream"], "corp");
    let path =
        format!("/users/{rita}/identities?issuer=https%3A%2F%2Flogin.example.com&subject=rita-at-corp");
    // rita has a password: the identity may go.
    let removed = admin.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(removed.status(), 204);
    assert_eq!(
        admin.get(&format!("/users/{rita}")).await["identities"],
        json!([])
    );
    assert_problem(admin.call(reqwest::Method::DELETE, &path, None).await, 404).await;
    assert!(admin.audited("identity_unlinked").await);
}

on_both_backends!(
    plain_oauth2_providers_are_managed_through_the_admin_api,
    upstreams_are_managed_and_tested_through_the_admin_api,
    linked_identities_are_shown_and_unlinked,
);
