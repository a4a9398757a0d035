//! The interaction: a validated authorization request carried through the login and consent
//! pages as a signed, time-limited form value. Stateless, so any replica can continue it;
//! signed, so the browser cannot alter what was validated; it holds nothing secret (every
//! field came from the browser's own request).

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::oidc::request::AuthRequest;

/// How long a user may take between the authorization request and finishing login/consent.
pub const LIFETIME_S: i64 = 30 * 60;

/// Where a login stands. Each page continues only from its own step, so a value sealed for
/// one page cannot be posted to another (a password-change form's interaction posted to
/// `/consent`, say) to skip what lies between. Which step follows a proof is decided in one
/// place (`login::flow::next`), from what is proven and what the user and policies need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Who the user is must be established (or established again).
    #[default]
    Authenticate,
    /// The password is proven; a second factor is asked (`/mfa`).
    SecondFactor(Proven),
    /// The user proved a temporary password set by an administrator and must replace it.
    /// No session exists yet: one starts only once the password is their own.
    ChangePassword(Proven),
    /// The user must enrol a second factor: `factor` is the unfinished one shown (`/mfa/enrol`).
    Enrol { proven: Proven, factor: uuid::Uuid },
    /// The new factor works; its recovery codes were shown once and the login goes on when
    /// the user says they are kept.
    RecoveryCodes(Proven),
    /// Logged in with session `login_sid`; the client wants a verified email address and
    /// the user's is not (`/login/verify-email`).
    VerifyEmail,
    /// Logged in with session `login_sid`; the user is asked to consent.
    Consent,
}

/// What a login has proven so far, and the browser it happens in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proven {
    pub user_id: uuid::Uuid,
    /// RFC 8176 methods proven so far, e.g. `["pwd"]`.
    pub amr: Vec<String>,
    pub binding: Binding,
}

/// What ties a step to the browser that began it, so that a sealed interaction copied out of
/// a URL (history, a proxy log) is worth nothing elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// A MAC of this browser's CSRF cookie (a login without a session yet).
    Browser(String),
    /// The session (its `sid`) being stepped up to a second factor.
    Session(String),
}

/// An upstream identity waiting to be linked to the account that this login proves (it
/// signed in at the upstream, but no account here is linked to it yet), and the browser that
/// signed in there: the link is made only for a local proof in that same browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLink {
    /// The provider's slug and the name its button shows.
    pub upstream: String,
    pub display_name: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// The browser binding of the upstream sign-in (a MAC of its CSRF cookie).
    pub binding: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub request: AuthRequest,
    /// The `sid` of a login completed within this interaction: it satisfies `prompt=login`
    /// and `max_age` for the rest of the interaction.
    pub login_sid: Option<String>,
    pub issued_at: i64,
    #[serde(default)]
    pub step: Step,
    /// An upstream identity to link once the login is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<PendingLink>,
    /// The upstream sign-in this login is, for the session it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<crate::domain::session::UpstreamSession>,
}

impl Interaction {
    /// The same interaction, the account page's action done (so it is not done twice).
    pub fn action_done(mut self) -> Self {
        self.request.account_action = None;
        self
    }

    /// The same interaction at `step`.
    pub fn at(self, step: Step) -> Self {
        Self { step, ..self }
    }
}

pub struct InteractionSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for InteractionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InteractionSigner")
    }
}

impl InteractionSigner {
    pub fn new(key: &crate::security::master_key::DerivedKey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.expose()),
        }
    }

    pub fn seal(&self, interaction: &Interaction) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(interaction).unwrap_or_default());
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The interaction, if the value is authentic and not older than [`LIFETIME_S`].
    pub fn open(&self, sealed: &str, now: DateTime<Utc>) -> Option<Interaction> {
        let (body, tag) = sealed.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, body.as_bytes(), &tag).ok()?;
        let interaction: Interaction = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        let age = now.timestamp() - interaction.issued_at;
        (0..=LIFETIME_S).contains(&age).then_some(interaction)
    }

    /// Seals any value for one `purpose`: a value sealed for one purpose (a passkey
    /// ceremony, say) never opens as another, nor as an interaction.
    pub fn seal_for<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default());
        format!("{body}.{}", self.tag(purpose, &body))
    }

    /// The value sealed by [`Self::seal_for`] for `purpose`, if authentic.
    pub fn open_for<T: serde::de::DeserializeOwned>(&self, purpose: &str, sealed: &str) -> Option<T> {
        let (body, tag) = sealed.split_once('.')?;
        let expected = self.tag(purpose, body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), tag.as_bytes())) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }

    /// A MAC over `value` for one purpose, e.g. CSRF tokens bound to a cookie.
    pub fn tag(&self, purpose: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::oidc::request::ResponseMode;
    use crate::security::master_key::MasterKey;

    fn interaction(now: DateTime<Utc>) -> Interaction {
        Interaction {
            request: AuthRequest {
                client_id: "c".into(),
                redirect_uri: "https://app.example.com/cb".into(),
                response_mode: ResponseMode::Query,
                scope: "openid".into(),
                state: Some("s".into()),
                nonce: None,
                code_challenge: None,
                prompt: vec![],
                max_age: None,
                login_hint: None,
                redirect_uri_omitted: false,
                acr: None,
                account_action: None,
                dpop_jkt: None,
                resources: vec![],
                idp_hint: None,
            },
            login_sid: None,
            issued_at: now.timestamp(),
            step: Step::Consent,
            link: None,
            upstream: None,
        }
    }

    #[test]
    fn a_sealed_interaction_opens_and_a_tampered_one_does_not() {
        let signer = InteractionSigner::new(&MasterKey::generate().unwrap().derive("i"));
        let now = Utc::now();
        let sealed = signer.seal(&interaction(now));
        assert_eq!(signer.open(&sealed, now), Some(interaction(now)));
        let mut forged = interaction(now);
        forged.request.redirect_uri = "https://evil.example/cb".into();
        let forged_body = signer.seal(&forged);
        let spliced = format!(
            "{}.{}",
            forged_body.split('.').next().unwrap(),
            sealed.split('.').nth(1).unwrap()
        );
        assert_eq!(signer.open(&spliced, now), None);
    }

    #[test]
    fn an_old_interaction_expires() {
        let signer = InteractionSigner::new(&MasterKey::generate().unwrap().derive("i"));
        let then = Utc::now() - chrono::Duration::seconds(LIFETIME_S + 1);
        assert_eq!(signer.open(&signer.seal(&interaction(then)), Utc::now()), None);
    }
}
