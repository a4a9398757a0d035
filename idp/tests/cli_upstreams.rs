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
    assert_eq!(added["auto_link_domains"], serde_json::json!([]));
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
        text.starts_with("corp\tCorporate login\thttps://login.example.com/tenant\tenabled"),
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
