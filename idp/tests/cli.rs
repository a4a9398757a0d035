//! The `idp` command line, run as a new user would: the real binary in an empty directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/process.rs"]
mod process;

use process::{assert_one_line_failure, cli as idp, run, stderr, stdout};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

#[test]
fn user_add_reads_the_password_from_stdin_and_prints_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        "s3cret-passw0rd\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    let list = run(dir.path(), &["user", "list", "--json"], "");
    let users: Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["id"], id.as_str());
    assert_eq!(users[0]["username"], "alice");
    assert!(
        !stdout(&list).contains("s3cret"),
        "no password material in listings"
    );
}

#[test]
fn a_duplicate_username_fails_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(
            dir.path(),
            &["user", "add", "bob", "--password-stdin"],
            "bob's first passphrase"
        )
        .status
        .success()
    );
    let dup = run(
        dir.path(),
        &[
            "user",
            "add",
            "BOB",
            "--email",
            "b@example.com",
            "--password-stdin",
        ],
        "a second passphrase",
    );
    assert_one_line_failure(&dup, "already exists");
    let list = run(dir.path(), &["user", "list", "--json"], "");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&list))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn user_add_without_a_password_or_with_a_short_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_failure(
        &run(dir.path(), &["user", "add", "carol", "--password-stdin"], ""),
        "no password",
    );
    assert_one_line_failure(
        &run(dir.path(), &["user", "add", "carol", "--password-stdin"], "short"),
        "at least 8",
    );
    // NIST SP 800-63B: common passwords and ones built from the username are refused, with why.
    assert_one_line_failure(
        &run(
            dir.path(),
            &["user", "add", "carol", "--password-stdin"],
            "Password123!",
        ),
        "too easy to guess",
    );
    assert_one_line_failure(
        &run(
            dir.path(),
            &["user", "add", "carolina", "--password-stdin"],
            "carolina2026",
        ),
        "based on your username",
    );
    assert_one_line_failure(
        &run(
            dir.path(),
            &["user", "add", "root2", "--admin", "--password-stdin"],
            "tq8#Vz!pK",
        ),
        "at least 12 characters for an administrator",
    );
    assert_one_line_failure(
        &run(
            dir.path(),
            &["user", "add", "bad name", "--password-stdin"],
            "long enough",
        ),
        "username",
    );
}

#[test]
fn user_disable_marks_the_user_disabled() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        &["user", "add", "dave", "--password-stdin"],
        "dave's garden shed",
    );
    let out = run(dir.path(), &["user", "disable", "dave"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let users: Value =
        serde_json::from_str(&stdout(&run(dir.path(), &["user", "list", "--json"], ""))).unwrap();
    assert_eq!(users[0]["status"], "disabled");
    assert_one_line_failure(&run(dir.path(), &["user", "disable", "nobody"], ""), "not found");
}

#[test]
fn user_mfa_list_and_reset_and_the_client_mfa_policy() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        &["user", "add", "dave", "--password-stdin"],
        "dave's garden shed",
    );
    let list = |dir: &Path| -> Value {
        let out = run(dir, &["user", "mfa", "list", "dave", "--json"], "");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let before = list(dir.path());
    assert_eq!(before["factors"], serde_json::json!([]));
    assert_eq!(before["recovery_codes_left"], 0);
    assert_eq!(before["enrolment_required"], false);
    let out = run(
        dir.path(),
        &["user", "mfa", "reset", "dave", "--require-enrolment"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("they must enrol at their next login"),
        "{}",
        stdout(&out)
    );
    assert_eq!(list(dir.path())["enrolment_required"], true);
    assert_one_line_failure(
        &run(dir.path(), &["user", "mfa", "list", "nobody"], ""),
        "not found",
    );

    let out = run(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Bank",
            "--redirect-uri",
            "https://bank.example/cb",
            "--mfa",
            "required",
            "--json",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_one_line_failure(
        &run(dir.path(), &["client", "update", &id, "--mfa", "sometimes"], ""),
        "mfa must be off, optional or required",
    );
    let out = run(dir.path(), &["client", "update", &id, "--mfa", "default"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("mfa default"), "{}", stdout(&out));
}

/// Issue 15 #10: a duration beyond its bound is refused with one line, and nothing is written.
#[test]
fn a_huge_refresh_idle_timeout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_failure(
        &run(
            dir.path(),
            &[
                "client",
                "add",
                "--name",
                "Huge",
                "--redirect-uri",
                "https://app.example.com/cb",
                "--refresh-idle-timeout",
                "4611686018427387903",
            ],
            "",
        ),
        "idle timeout must be 60 seconds to 365 days",
    );
    let list = stdout(&run(dir.path(), &["client", "list", "--json"], ""));
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        serde_json::json!([])
    );
}

/// Issue 15 #13: a client's own rate limits are set at registration and changed later.
#[test]
fn client_rate_limits_are_set_and_changed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Resource server",
            "--grant-type",
            "client_credentials",
            "--scope",
            "api",
            "--rate-limit-token",
            "600000",
            "--rate-limit-introspect",
            "0",
            "--json",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let limits = |dir: &Path| {
        let list: Value =
            serde_json::from_str(&stdout(&run(dir, &["client", "list", "--json"], ""))).unwrap();
        (
            list[0]["rate_limit_token_per_minute"].clone(),
            list[0]["rate_limit_introspect_per_minute"].clone(),
        )
    };
    assert_eq!(limits(dir.path()), (Value::from(600000), Value::from(0)));
    let out = run(
        dir.path(),
        &["client", "update", &id, "--rate-limit-token", "default"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("token rate limit default, introspection rate limit 0"));
    assert_eq!(limits(dir.path()), (Value::Null, Value::from(0)));
    assert_one_line_failure(
        &run(
            dir.path(),
            &["client", "update", &id, "--rate-limit-introspect", "lots"],
            "",
        ),
        "requests per minute",
    );
    assert_one_line_failure(
        &run(
            dir.path(),
            &["client", "update", &id, "--rate-limit-token=-5"],
            "",
        ),
        "rate limit must be 0",
    );
}

#[test]
fn client_add_prints_a_secret_once_for_confidential_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Web app",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--json",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "at least 256 bits");
    let client_id = created["client_id"].as_str().unwrap();

    let out = run(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:3000/cb",
            "--json",
        ],
        "",
    );
    let public: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(public.get("client_secret").is_none());

    let list = stdout(&run(dir.path(), &["client", "list", "--json"], ""));
    let clients: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 2);
    assert_eq!(
        clients[0]["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert!(!list.contains(secret), "the secret is never shown again");

    assert!(
        run(dir.path(), &["client", "remove", client_id], "")
            .status
            .success()
    );
    assert_one_line_failure(
        &run(dir.path(), &["client", "remove", client_id], ""),
        "not found",
    );
    // A client id may begin with a dash; it is still an id, not a flag.
    assert_one_line_failure(&run(dir.path(), &["client", "remove", "-5x0Q"], ""), "not found");
}

#[test]
fn a_malformed_redirect_uri_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (uri, needle) in [
        ("/relative", "absolute"),
        ("https://app.example.com/cb#frag", "fragment"),
        ("http://app.example.com/cb", "non-loopback"),
    ] {
        let out = run(
            dir.path(),
            &["client", "add", "--name", "x", "--redirect-uri", uri],
            "",
        );
        assert_one_line_failure(&out, needle);
    }
    let bad_grant = run(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "https://a.example/cb",
            "--grant-type",
            "password",
        ],
        "",
    );
    assert_one_line_failure(&bad_grant, "grant type");
    let list = stdout(&run(dir.path(), &["client", "list", "--json"], ""));
    assert_eq!(list.trim(), "[]");
}

#[test]
fn client_add_registers_high_security_clients() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("client-keys.json");
    std::fs::write(
        &jwks,
        r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
    )
    .unwrap();
    let jwks_arg = jwks.to_str().unwrap();
    let base = [
        "client",
        "add",
        "--name",
        "bank",
        "--redirect-uri",
        "https://bank.example/cb",
        "--json",
    ];
    let out = run(
        dir.path(),
        &[
            &base[..],
            &[
                "--token-endpoint-auth-method",
                "private_key_jwt",
                "--jwks",
                jwks_arg,
                "--require-par",
                "--dpop-bound-access-tokens",
            ],
        ]
        .concat(),
        "",
    );
    let added: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(added.get("client_secret").is_none(), "private_key_jwt: no secret");
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&run(dir.path(), &["client", "list", "--json"], ""))).unwrap();
    let client = &list[0];
    assert_eq!(client["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(client["jwks"]["keys"][0]["kid"], "k1");
    assert_eq!(client["require_par"], true);
    assert_eq!(client["dpop_bound_access_tokens"], true);

    // Each mistake is one line and a non-zero exit, and writes nothing.
    let private = dir.path().join("private.json");
    std::fs::write(&private, r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).unwrap();
    for (extra, needle) in [
        (
            vec!["--token-endpoint-auth-method", "private_key_jwt"],
            "needs the client's public keys",
        ),
        (
            vec!["--token-endpoint-auth-method", "tls_client_auth"],
            "unknown token endpoint auth method",
        ),
        (vec!["--jwks", private.to_str().unwrap()], "private or symmetric"),
        (
            vec!["--jwks", "/nonexistent/keys.json"],
            "cannot read the JWKS file",
        ),
        (vec!["--jwks-uri", "http://keys.example.com/jwks"], "jwks_uri"),
        (
            vec!["--jwks", jwks_arg, "--jwks-uri", "https://keys.example.com/jwks"],
            "not both",
        ),
    ] {
        assert_one_line_failure(&run(dir.path(), &[&base[..], &extra[..]].concat(), ""), needle);
    }
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&run(dir.path(), &["client", "list", "--json"], ""))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn a_wrong_flag_is_a_usage_error_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["user", "add", "eve", "--pasword-stdin"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--pasword-stdin"));
}

#[test]
fn a_malformed_config_file_stops_with_exit_code_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("idp.toml"),
        "issuer = \"https://idp.example.com\"\nlisten = [\n",
    )
    .unwrap();
    let out = run(dir.path(), &["--config", "idp.toml", "migrate"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "idp.toml");

    std::fs::write(
        dir.path().join("idp.toml"),
        "isuer = \"https://idp.example.com\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["--config", "idp.toml", "migrate"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "isuer");
}

#[test]
fn an_invalid_issuer_in_the_environment_stops_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = idp(dir.path())
        .args(["serve"])
        .env("IDP_ISSUER", "https://idp.example.com/#x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "issuer");
}

#[test]
fn a_missing_database_directory_stops_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = idp(dir.path())
        .args(["migrate"])
        .env("IDP_DATABASE_URL", "sqlite:///nonexistent/dir/idp.db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "database_url");
}

#[test]
fn a_read_only_data_directory_stops_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    // /proc/self is read-only for every user, root included (CI runs as root, where
    // permission bits alone would not stop a write).
    let out = idp(dir.path())
        .args(["serve"])
        .env("IDP_DATA_DIR", "/proc/self")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "data_dir");
}

#[test]
fn an_unreachable_postgres_stops_serve_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = idp(dir.path())
        .args(["serve"])
        .env("IDP_DATABASE_URL", "postgres://postgres@127.0.0.1:1/idp")
        .env("IDP_MASTER_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .env("IDP_DATABASE_ACQUIRE_TIMEOUT_MS", "1000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "cannot reach the database");
}

#[test]
fn postgres_without_a_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = idp(dir.path())
        .args(["migrate"])
        .env("IDP_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_failure(&out, "master_key");
}

#[test]
fn migrate_twice_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["migrate"], "").status.success());
    let again = run(dir.path(), &["migrate"], "");
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn config_docs_prints_the_committed_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config", "docs"], "");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    assert_eq!(stdout(&out), committed);
}

#[test]
fn serve_with_no_configuration_starts_on_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = process::free_port();
    let mut child = idp(dir.path())
        .args(["serve"])
        .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
        .env("IDP_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    process::wait_ready(port);
    assert!(dir.path().join("data/idp.db").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    process::terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");
    let lines: Vec<String> = rx.try_iter().collect();
    let log = lines.join("\n");
    assert!(
        log.contains("password:"),
        "the generated admin password is printed once: {log}"
    );
    let json_lines: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(json_lines.iter().any(|l| l["message"] == "listening"), "{log}");
    assert!(json_lines.iter().any(|l| l["message"] == "stopped"), "{log}");
}
