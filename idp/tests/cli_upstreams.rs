//! `idp upstream`, run as an operator would: the real binary in an empty directory. The
//! client secret comes from standard input only and is never printed again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/process.rs"]
mod process;

use process::{assert_one_line_failure, run, stdout};
use serde_json::Value;

const SECRET: &str = "upstream-client-secret-3f9a";

fn add(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "upstream",
        "add",
        "--name",
        "corp",
        "--display-name",
        "Corporate login",
        "--issuer",
        "https://login.example.com/tenant",
        "--client-id",
        "aimpact",
        "--client-secret-stdin",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn upstreams_are_added_listed_and_removed_without_showing_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let args = add(&[
        "--scope",
        "email",
        "--jit",
        "--allowed-domain",
        "Example.com",
        "--claim-username",
        "upn",
        "--allowed-client",
        "portal-app",
        "--json",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir, &args, &format!("{SECRET}\n"));
    assert!(out.status.success(), "{}", process::stderr(&out));
    let added: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(added["slug"], "corp");
    assert_eq!(added["scopes"], serde_json::json!(["openid", "email"]));
    assert_eq!(added["jit"], true);
    assert_eq!(added["allowed_domains"], serde_json::json!(["example.com"]));
    assert_eq!(added["claims"]["username"], "upn");
    assert_eq!(added["claims"]["email"], "email");
    assert_eq!(added["kind"], "oidc");
    assert_eq!(added["claims"]["subject"], "sub");
    assert_eq!(added["auto_link_domains"], serde_json::json!([]));
    assert_eq!(added["allowed_clients"], serde_json::json!(["portal-app"]));
    // The redirect URI to register at the provider, under this provider's issuer.
    assert!(
        added["redirect_uri"]
            .as_str()
            .unwrap()
            .ends_with("/upstream/corp/callback"),
        "{added}"
    );
    assert!(!stdout(&out).contains(SECRET), "the secret is never printed");

    let listed = stdout(&run(dir, &["upstream", "list", "--json"], ""));
    assert!(!listed.contains(SECRET));
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["display_name"], "Corporate login");
    assert_eq!(listed[0]["enabled"], true);
    assert!(listed[0].get("client_secret_sealed").is_none());
    let text = stdout(&run(dir, &["upstream", "list"], ""));
    assert!(
        text.starts_with("corp\tCorporate login\toidc\thttps://login.example.com/tenant\tenabled"),
        "{text}"
    );

    // Mistakes: one line, a non-zero exit, nothing written.
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (add(&[]), "already exists", SECRET),
        (add(&[]), "no client secret on standard input", ""),
        // Linking by address without trusting the provider's verified addresses.
        (add(&["--auto-link-domain", "example.com"]), "trust_email", SECRET),
        (
            add(&[])
                .into_iter()
                .map(|a| if a == "corp" { "Corp!".into() } else { a })
                .collect(),
            "not a slug",
            SECRET,
        ),
        (
            add(&[])
                .into_iter()
                .map(|a| {
                    if a.starts_with("https://login") {
                        "http://login.example.com".into()
                    } else {
                        a
                    }
                })
                .collect(),
            "https",
            SECRET,
        ),
        (
            ["upstream", "remove", "nothing"].map(String::from).to_vec(),
            "not found",
            "",
        ),
    ];
    for (args, needle, stdin) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_one_line_failure(&run(dir, &args, stdin), needle);
    }
    let listed: Value =
        serde_json::from_str(&stdout(&run(dir, &["upstream", "list", "--json"], ""))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    assert!(run(dir, &["upstream", "remove", "corp"], "").status.success());
    let listed: Value =
        serde_json::from_str(&stdout(&run(dir, &["upstream", "list", "--json"], ""))).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}

/// `--kind github` fills in GitHub's endpoints, claims and scopes; `--kind oauth2` needs its
/// endpoints; an OpenID provider takes none.
#[test]
fn github_and_plain_oauth2_providers_are_added_with_their_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let github = [
        "upstream",
        "add",
        "--kind",
        "github",
        "--name",
        "github",
        "--display-name",
        "GitHub",
        "--client-id",
        "Iv1.abc",
        "--client-secret-stdin",
        "--jit",
        "--json",
    ];
    let out = run(dir, &github, &format!("{SECRET}\n"));
    assert!(out.status.success(), "{}", process::stderr(&out));
    let added: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(added["kind"], "oauth2");
    assert_eq!(added["issuer"], "https://github.com");
    assert_eq!(
        added["authorization_endpoint"],
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(
        added["token_endpoint"],
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(added["userinfo_endpoint"], "https://api.github.com/user");
    assert_eq!(added["emails_endpoint"], "https://api.github.com/user/emails");
    assert_eq!(added["scopes"], serde_json::json!(["read:user", "user:email"]));
    assert_eq!(added["claims"]["subject"], "id");
    assert_eq!(added["claims"]["username"], "login");
    assert!(
        added["redirect_uri"]
            .as_str()
            .unwrap()
            .ends_with("/upstream/github/callback")
    );
    let text = stdout(&run(dir, &["upstream", "list"], ""));
    assert!(
        text.starts_with("github\tGitHub\toauth2\thttps://github.com\tenabled"),
        "{text}"
    );

    let plain = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "upstream",
            "add",
            "--kind",
            "oauth2",
            "--name",
            "forge",
            "--display-name",
            "Forge",
            "--issuer",
            "https://forge.example.com",
            "--client-id",
            "idp",
            "--client-secret-stdin",
            "--json",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let endpoints = [
        "--authorization-endpoint",
        "https://forge.example.com/oauth/authorize",
        "--token-endpoint",
        "https://forge.example.com/oauth/token",
        "--userinfo-endpoint",
        "https://forge.example.com/api/v4/user",
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (plain(&endpoints[..4]), "userinfo endpoint"),
        (
            plain(
                &[
                    &endpoints[..4],
                    &["--userinfo-endpoint", "http://forge.example.com/user"],
                ]
                .concat(),
            ),
            "https",
        ),
        (
            add(&["--token-endpoint", "https://login.example.com/token"]),
            "discovery",
        ),
        (add(&["--claim-subject", "email"]), "sub"),
        (add(&["--kind", "saml"]), "oidc, oauth2 or github"),
        (
            add(&["--token-endpoint-auth-method", "tls_client_auth"]),
            "client_secret_basic or private_key_jwt",
        ),
        (
            [
                &github[..github.len() - 1],
                &["--token-endpoint-auth-method", "private_key_jwt"],
            ]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "OpenID providers",
        ),
        (
            add(&[])
                .into_iter()
                .filter(|a| a != "--client-secret-stdin")
                .collect(),
            "--client-secret-stdin",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_one_line_failure(&run(dir, &args, SECRET), needle);
    }
    let args = plain(
        &[
            &endpoints[..],
            &["--claim-subject", "uuid", "--scope", "read_user"],
        ]
        .concat(),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir, &args, SECRET);
    assert!(out.status.success(), "{}", process::stderr(&out));
    let added: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(added["scopes"], serde_json::json!(["read_user"]), "no openid");
    assert_eq!(added["claims"]["subject"], "uuid");
    assert_eq!(added["emails_endpoint"], Value::Null);

    // private_key_jwt: this provider's own keys, no secret asked for or kept; an icon file.
    std::fs::write(dir.join("keyed.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    std::fs::write(dir.join("keyed.txt"), "not an image").unwrap();
    let keyed = |icon: &str| {
        [
            "upstream",
            "add",
            "--name",
            "keyed",
            "--display-name",
            "Keyed",
            "--issuer",
            "https://login.example.com",
            "--client-id",
            "idp",
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--icon-file",
            icon,
            "--json",
        ]
        .map(String::from)
    };
    let args = keyed("keyed.txt");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_one_line_failure(&run(dir, &args, ""), ".svg");
    let args = keyed("keyed.svg");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir, &args, "");
    assert!(out.status.success(), "{}", process::stderr(&out));
    let added: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(added["token_auth"], "private_key_jwt");
    assert!(
        added["icon"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"),
        "{added}"
    );
    assert!(
        added["backchannel_logout_uri"]
            .as_str()
            .unwrap()
            .ends_with("/upstream/keyed/backchannel-logout")
    );
}
