//! `idp resource` and `idp client add --resource`, run as an operator would: the real binary
//! in an empty directory (the embedded default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/process.rs"]
mod process;

use process::{assert_one_line_failure, run, stdout};
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", process::stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

#[test]
fn resources_are_added_given_to_clients_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let api = "https://api.example.com/orders";
    let added = json_of(&run(
        dir,
        &[
            "resource",
            "add",
            "--identifier",
            api,
            "--scope",
            "orders:read",
            "--scope",
            "orders:write",
            "--json",
        ],
        "",
    ));
    assert_eq!(added["identifier"], api);
    assert_eq!(
        added["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );

    // A client given the resource; the same flags as always, `--json` unchanged.
    let client = json_of(&run(
        dir,
        &[
            "client",
            "add",
            "--name",
            "shop",
            "--redirect-uri",
            "https://shop.example/cb",
            "--resource",
            api,
            "--json",
        ],
        "",
    ));
    assert!(client["client_id"].is_string() && client["client_secret"].is_string());
    let clients = json_of(&run(dir, &["client", "list", "--json"], ""));
    assert_eq!(clients[0]["resources"], serde_json::json!([api]));

    // Mistakes: one line, a non-zero exit, nothing written.
    for (args, needle) in [
        (
            vec!["resource", "add", "--identifier", "/orders"],
            "not an absolute URI",
        ),
        (
            vec!["resource", "add", "--identifier", "https://a.example/#f"],
            "fragment",
        ),
        (vec!["resource", "add", "--identifier", api], "already exists"),
        (
            vec![
                "resource",
                "add",
                "--identifier",
                "https://b.example/",
                "--client-id",
                "nobody",
            ],
            "not found",
        ),
        (
            vec!["resource", "remove", "https://nothing.example/"],
            "not found",
        ),
        (
            vec![
                "client",
                "add",
                "--name",
                "x",
                "--redirect-uri",
                "https://x.example/cb",
                "--resource",
                "https://unregistered.example/",
            ],
            "not registered",
        ),
    ] {
        assert_one_line_failure(&run(dir, &args, ""), needle);
    }
    let listed = json_of(&run(dir, &["resource", "list", "--json"], ""));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let text = stdout(&run(dir, &["resource", "list"], ""));
    assert!(
        text.starts_with(&format!("{api}\torders:read orders:write\t-")),
        "{text}"
    );

    // Removed: gone from the list and from the client.
    let out = run(dir, &["resource", "remove", api], "");
    assert!(out.status.success());
    assert_eq!(
        json_of(&run(dir, &["resource", "list", "--json"], "")),
        serde_json::json!([])
    );
    let clients = json_of(&run(dir, &["client", "list", "--json"], ""));
    assert_eq!(clients.as_array().unwrap().len(), 1);
    assert_eq!(clients[0]["resources"], serde_json::json!([]));
}
