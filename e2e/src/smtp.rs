//! A real SMTP server for the tests (these and the idp crate's): aiosmtpd (PyPI, installed
//! pinned by `scripts/install-tools.sh --test`) storing every message it accepts in a
//! Maildir, which the tests read back as a mail client would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The aiosmtpd the project's scripts install (`AIOSMTPD` overrides).
fn aiosmtpd() -> PathBuf {
    if let Some(path) = std::env::var_os("AIOSMTPD") {
        return path.into();
    }
    let tools =
        std::env::var_os("TOOLS_DIR").map_or_else(|| PathBuf::from("/var/tmp/aimpact-tools"), PathBuf::from);
    let path = tools.join("aiosmtpd-1.4.6/bin/aiosmtpd");
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/install-tools.sh --test` (tests send mail through a real SMTP server)",
        path.display()
    );
    path
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

/// A message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Received {
    /// The first URL in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no link to {prefix} in {:?}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(crate::free_port()).await
    }

    /// A server on `port` (one that was stopped, to come back where the IdP expects it).
    pub async fn start_on(port: u16) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(aiosmtpd())
            .args([
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let server = Self { child, port, maildir };
        // Python's start-up takes seconds when the test run has every CPU busy (a CI run
        // once saw more than 5 s): wait up to 30 s, which costs nothing when it is quick.
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {port} within 30 s");
    }

    /// `IDP_SMTP_URL` for a server using this one (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<_> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir.path().join("mail").join(sub)).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .map(|raw| parse(&raw))
            .collect()
    }

    /// The messages to `recipient`, oldest first.
    pub fn messages_to(&self, recipient: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.contains(recipient))
            .collect()
    }

    /// Waits (up to 20 s) until `count` messages to `recipient` have arrived; returns them.
    pub async fn wait_for(&self, recipient: &str, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let found = self.messages_to(recipient);
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} message(s) to {recipient} did not arrive; have: {:?}",
            self.messages()
        );
    }

    /// Waits (up to 20 s) until `count` messages to `recipient` carry a link starting with
    /// `prefix`; returns those messages, oldest first.
    pub async fn wait_for_link(&self, recipient: &str, prefix: &str, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let found: Vec<_> = self
                .messages_to(recipient)
                .into_iter()
                .filter(|m| m.text.contains(prefix))
                .collect();
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} message(s) to {recipient} with a link to {prefix} did not arrive; have: {:?}",
            self.messages()
        );
    }

    /// Stops the server (mail sent now fails until it is started again).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse(raw: &[u8]) -> Received {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable message");
    let address = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string()
    };
    Received {
        from: address(message.from()),
        to: address(message.to()),
        subject: message.subject().unwrap_or_default().to_string(),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: message.body_html(0).map(|t| t.into_owned()),
    }
}
