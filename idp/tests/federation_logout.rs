//! Back-channel logout from an upstream OpenID provider (OpenID Connect Back-Channel Logout
//! 1.0, this provider as the relying party): signing out at the upstream (a second `idp`,
//! which sends real logout tokens) ends the sessions its sign-ins started here; forged,
//! replayed and malformed logout tokens are refused with 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::form;
use common::federation::{at_upstream, continue_with_upstream, events, federation, redeem, upstream_url};
use common::{Backend, TestApp};
use idp::security::keys::Alg;
use serde_json::{Value, json};

/// The live sessions here that sign-ins at `issuer` started.
async fn federated_sessions(app: &TestApp, issuer: &str) -> Vec<idp::domain::session::Session> {
    let now = app.services.clock.now();
    app.services
        .store
        .sessions_from_upstream(issuer, None, None, now)
        .await
        .unwrap()
}

async fn signing_out_at_the_upstream_ends_the_sessions_it_started_here(backend: Backend) {
    let f = federation(backend).await;
    f.upstream.add_user("ursula").await;
    let issuer = upstream_url(&f.upstream);
    let browser = f.app.browser();
    let claims = redeem(&f, continue_with_upstream(&f, &browser, "ursula").await).await;
    let sessions = federated_sessions(&f.app, &issuer).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].user_id, claims["sub"].as_str().unwrap());
    assert!(
        sessions[0].upstream.as_ref().unwrap().sid.is_some(),
        "the upstream's sid is kept"
    );
    // A local session of someone else is not the upstream's to end.
    f.app.add_user("local").await;
    f.app.tokens(&f.client, "local", "openid").await;

    // Ursula signs out at the upstream, which tells this provider over the back channel.
    let at = at_upstream(&browser, &f.upstream);
    let (_, _, page) = at.visit(&format!("{issuer}/logout")).await.page();
    at.submit(&form(&page)).await;
    let mut ended = false;
    for _ in 0..100 {
        if federated_sessions(&f.app, &issuer).await.is_empty() {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "the upstream's logout ended the session here");
    // Counted per provider (the count follows the sessions' end: wait for it too).
    let mut counted = 0.0;
    for _ in 0..50 {
        let metrics = f.app.metrics().await;
        counted = common::metric_value(&metrics, "idp_upstream_logouts_total", &[("upstream", "corp")]);
        if counted > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counted, 1.0);
    let logouts = events(&f.app, "logout").await;
    assert_eq!(logouts.len(), 1, "only ursula's session");
    assert_eq!(logouts[0].user_id.as_deref(), claims["sub"].as_str());
    // Her session cookie no longer signs her in silently.
    let silent = format!("{}&prompt=none", f.app.authorize_url(&f.client.id, "openid"));
    assert_eq!(
        browser.visit(&silent).await.query("error").as_deref(),
        Some("login_required")
    );
}

async fn forged_replayed_and_malformed_logout_tokens_are_refused(backend: Backend) {
    let f = federation(backend).await;
    let ursula = f.upstream.add_user("ursula").await;
    let issuer = upstream_url(&f.upstream);
    let browser = f.app.browser();
    redeem(&f, continue_with_upstream(&f, &browser, "ursula").await).await;
    let client_id = f
        .app
        .services
        .store
        .find_upstream("corp")
        .await
        .unwrap()
        .unwrap()
        .client_id;
    let now = f.upstream.services.clock.now();
    let claims = |change: &dyn Fn(&mut Value)| {
        let mut claims = json!({
            "iss": issuer, "aud": client_id, "iat": now.timestamp(), "exp": now.timestamp() + 120,
            "jti": uuid::Uuid::new_v4().to_string(), "sub": ursula.id.to_string(),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        change(&mut claims);
        claims
    };
    let signed_by = |app: &TestApp, typ: &str, claims: &Value| {
        app.services
            .keys
            .current()
            .sign(Alg::RS256, typ, claims, now)
            .unwrap()
    };
    let post = |slug: &str, body: String| {
        let http = f.app.http.clone();
        let url = format!("{}/upstream/{slug}/backchannel-logout", f.app.base);
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let as_form = |token: &str| format!("logout_token={token}");
    let refused = [
        ("no logout token", post("corp", String::new()).await),
        (
            "another provider's key",
            post(
                "corp",
                as_form(&signed_by(&f.app, "logout+jwt", &claims(&|_| {}))),
            )
            .await,
        ),
        (
            "another audience",
            post(
                "corp",
                as_form(&signed_by(
                    &f.upstream,
                    "logout+jwt",
                    &claims(&|c| c["aud"] = json!("someone-else")),
                )),
            )
            .await,
        ),
        (
            "a nonce",
            post(
                "corp",
                as_form(&signed_by(
                    &f.upstream,
                    "logout+jwt",
                    &claims(&|c| c["nonce"] = json!("n")),
                )),
            )
            .await,
        ),
        (
            "no logout event",
            post(
                "corp",
                as_form(&signed_by(
                    &f.upstream,
                    "logout+jwt",
                    &claims(&|c| c["events"] = json!({})),
                )),
            )
            .await,
        ),
        (
            "neither sub nor sid",
            post(
                "corp",
                as_form(&signed_by(
                    &f.upstream,
                    "logout+jwt",
                    &claims(&|c| {
                        c.as_object_mut().unwrap().remove("sub");
                    }),
                )),
            )
            .await,
        ),
        (
            "expired",
            post(
                "corp",
                as_form(&signed_by(
                    &f.upstream,
                    "logout+jwt",
                    &claims(&|c| c["exp"] = json!(now.timestamp() - 600)),
                )),
            )
            .await,
        ),
        (
            "another kind of JWT",
            post(
                "corp",
                as_form(&signed_by(&f.upstream, "at+jwt", &claims(&|_| {}))),
            )
            .await,
        ),
        (
            "no such provider",
            post(
                "nobody",
                as_form(&signed_by(&f.upstream, "logout+jwt", &claims(&|_| {}))),
            )
            .await,
        ),
    ];
    for (why, response) in refused {
        assert_eq!(response.status(), 400, "{why}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{why}: {body}");
    }
    assert_eq!(
        federated_sessions(&f.app, &issuer).await.len(),
        1,
        "nothing ended yet"
    );

    // A session id the upstream never gave here: accepted, nothing to end.
    let other_sid = claims(&|c| {
        c.as_object_mut().unwrap().remove("sub");
        c["sid"] = json!("not-a-session-here");
    });
    let response = post("corp", as_form(&signed_by(&f.upstream, "logout+jwt", &other_sid))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(federated_sessions(&f.app, &issuer).await.len(), 1);

    // The user's own logout token ends her session, once; its replay is refused.
    let token = signed_by(&f.upstream, "logout+jwt", &claims(&|_| {}));
    assert_eq!(post("corp", as_form(&token)).await.status(), 200);
    assert!(federated_sessions(&f.app, &issuer).await.is_empty());
    assert_eq!(post("corp", as_form(&token)).await.status(), 400, "replayed jti");
}

on_both_backends!(
    signing_out_at_the_upstream_ends_the_sessions_it_started_here,
    forged_replayed_and_malformed_logout_tokens_are_refused,
);
