//! Outgoing mail. A request that wants a message sent renders it from the theme, encrypts
//! it into the outbox table and returns; a background worker on every replica claims due
//! messages (atomically, so no two replicas send one message) and hands them to the SMTP
//! server with `lettre`, retrying with exponential backoff. A request never waits on SMTP
//! and a crash loses nothing: an unsent message stays in the outbox.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Settings;
use crate::login::themes::Theme;
use crate::services::Services;
use crate::store::StoreError;
use crate::store::account::{OutgoingMail, QueuedMail};

/// Attempts before a message is given up (the last about 4 hours after the first).
const MAX_ATTEMPTS: i64 = 8;
/// The first retry waits this long; each later one twice as long as the one before.
const FIRST_RETRY_S: i64 = 30;
/// How long a worker holds a claimed message before another may try it (a worker that
/// died mid-send).
const LEASE_S: i64 = 300;
/// Outbox rows (sent, failed or not) are deleted by housekeeping this long after creation.
const KEEP_DAYS: i64 = 7;
/// How often each worker looks for due messages besides being woken by a new one.
const POLL: Duration = Duration::from_secs(2);
const BATCH: u32 = 20;

/// A rendered message, as it is kept (encrypted) in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The SMTP connection settings, checked at start-up.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Wakes the workers of this process when a message is queued.
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer the settings describe; `None` without `smtp_url`. The error names what is
    /// wrong (never the URL itself: it may hold a password).
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, (&'static str, String)> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        let url = url.expose_secret();
        let from: Mailbox = settings
            .smtp_from
            .as_deref()
            .ok_or(("smtp_from", "required when smtp_url is set".to_string()))?
            .parse()
            .map_err(|e| ("smtp_from", format!("not a mailbox: {e}")))?;
        let parsed = url::Url::parse(url).map_err(|_| ("smtp_url", "not a URL".to_string()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| ("smtp_url", format!("unusable: {e}")))?
            .timeout(Some(Duration::from_millis(settings.smtp_timeout_ms.max(1))));
        if let Some(ca_file) = &settings.smtp_ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| ("smtp_ca_file", format!("{}: {e}", ca_file.display())))?;
            let ca = Certificate::from_pem(&pem).map_err(|e| ("smtp_ca_file", e.to_string()))?;
            let host = parsed.host_str().unwrap_or_default().to_string();
            let tls = TlsParameters::builder(host)
                .add_root_certificate(ca)
                .build_rustls()
                .map_err(|e| ("smtp_ca_file", e.to_string()))?;
            let tls_mode = parsed
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            builder = builder.tls(match (parsed.scheme(), tls_mode.as_deref()) {
                ("smtps", _) => Tls::Wrapper(tls),
                (_, Some("opportunistic")) => Tls::Opportunistic(tls),
                _ => Tls::Required(tls),
            });
        }
        Ok(Some(Self {
            transport: builder.build(),
            from,
            wake: tokio::sync::Notify::new(),
        }))
    }

    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), String> {
        let to: Mailbox = recipient.parse().map_err(|e| format!("recipient: {e}"))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject);
        let email = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html.clone(),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(message.text.clone()),
        }
        .map_err(|e| format!("message: {e}"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Renders `mail/<template>.txt` (its first line `Subject: …`, then a blank line, then the
/// text) and, when the theme has it, `mail/<template>.html`.
pub fn compose(theme: &Theme, template: &str, context: minijinja::Value) -> Result<Rendered, String> {
    let text = theme.render(&format!("mail/{template}.txt"), context.clone())?;
    let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| format!("mail/{template}.txt must begin with a `Subject:` line"))?
        .trim()
        .to_string();
    let html = theme.render(&format!("mail/{template}.html"), context).ok();
    Ok(Rendered {
        subject,
        text: body.trim_start_matches('\n').to_string(),
        html,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("no SMTP server is configured")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not encrypt the message")]
    Encryption,
}

/// Queues `message` for `recipient` and wakes the worker.
pub async fn enqueue(
    services: &Services,
    recipient: &str,
    template: &str,
    message: &Rendered,
) -> Result<(), MailError> {
    let Some(mailer) = &services.mailer else {
        return Err(MailError::NotConfigured);
    };
    let id = Uuid::now_v7();
    let plain = SecretBox::new(Box::new(
        serde_json::to_vec(message).map_err(|_| MailError::Encryption)?,
    ));
    let message_enc = services
        .mail_key
        .encrypt(&id.to_string(), &plain)
        .map_err(|_| MailError::Encryption)?;
    let now = services.clock.now();
    services
        .store
        .enqueue_mail(&OutgoingMail {
            id,
            recipient: recipient.to_string(),
            template: template.to_string(),
            message_enc,
            created_at: now,
            expires_at: now + chrono::Duration::days(KEEP_DAYS),
        })
        .await?;
    metrics::counter!("idp_mail_queued_total", "template" => template.to_string()).increment(1);
    mailer.wake.notify_one();
    Ok(())
}

/// Sends every message due now (a batch at a time); returns how many were sent.
pub async fn deliver_due(services: &Services) -> Result<usize, StoreError> {
    let Some(mailer) = &services.mailer else {
        return Ok(0);
    };
    let mut sent = 0;
    loop {
        let now = services.clock.now();
        let batch = services
            .store
            .claim_mail(now, now + chrono::Duration::seconds(LEASE_S), BATCH)
            .await?;
        let claimed = batch.len();
        for mail in batch {
            if deliver(services, mailer, &mail).await? {
                sent += 1;
            }
        }
        if claimed < BATCH as usize {
            return Ok(sent);
        }
    }
}

async fn deliver(services: &Services, mailer: &Mailer, mail: &QueuedMail) -> Result<bool, StoreError> {
    let outcome = match services.mail_key.decrypt(&mail.id.to_string(), &mail.message_enc) {
        Ok(plain) => match serde_json::from_slice::<Rendered>(plain.expose_secret()) {
            Ok(message) => mailer.send(&mail.recipient, &message).await,
            Err(e) => Err(format!("stored message unreadable: {e}")),
        },
        Err(_) => Err("stored message cannot be decrypted (was the master key changed?)".to_string()),
    };
    let now = services.clock.now();
    let template = mail.template.clone();
    match outcome {
        Ok(()) => {
            services.store.mail_sent(mail.id, now).await?;
            metrics::counter!("idp_mail_sent_total", "template" => template, "outcome" => "sent")
                .increment(1);
            tracing::info!(mail_id = %mail.id, template = %mail.template, "mail sent");
            Ok(true)
        }
        Err(error) => {
            let retry_at = retry_at(mail.attempts, now);
            services.store.mail_failed(mail.id, &error, retry_at, now).await?;
            let outcome = if retry_at.is_some() { "retry" } else { "failed" };
            metrics::counter!("idp_mail_sent_total", "template" => template, "outcome" => outcome)
                .increment(1);
            tracing::warn!(mail_id = %mail.id, template = %mail.template, attempts = mail.attempts, %error, outcome, "mail not sent");
            Ok(false)
        }
    }
}

/// When to try again after `attempts` failed attempts; `None` once they are used up.
fn retry_at(attempts: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (attempts < MAX_ATTEMPTS).then(|| {
        let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
        now + chrono::Duration::seconds(FIRST_RETRY_S.saturating_mul(1 << exponent))
    })
}

/// Runs the delivery worker of this process, when SMTP is configured.
pub fn spawn(services: Services) {
    let Some(mailer) = services.mailer.clone() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            if let Err(e) = deliver_due(&services).await {
                tracing::warn!(error = %e, "mail outbox unreachable; will retry");
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = mailer.wake.notified() => {}
            }
        }
    });
}

/// Whether mail can be sent, for pages and the portal to say so when not.
pub fn configured(services: &Services) -> bool {
    services.mailer.is_some()
}

pub type SharedMailer = Arc<Mailer>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_and_stop() {
        let now = Utc::now();
        let delays: Vec<i64> = (1..MAX_ATTEMPTS)
            .map(|n| (retry_at(n, now).map(|t| (t - now).num_seconds())).unwrap_or(-1))
            .collect();
        assert_eq!(delays, vec![30, 60, 120, 240, 480, 960, 1920]);
        assert_eq!(retry_at(MAX_ATTEMPTS, now), None);
    }
}
