//! Passkeys (W3C WebAuthn Level 3) through the `webauthn-rs` crate, which does every
//! verification of the ceremonies: origin and relying party id, challenge, user presence and
//! verification, signature, counter. This module only fixes our choices:
//!
//! - The relying party id is the issuer's host (or `passkey_rp_id`), the allowed origins the
//!   issuer's origin and `passkey_origins`. Browsers refuse an IP address as RP id (§5.1.3,
//!   "valid domain"), so with such an issuer passkeys are simply not offered.
//! - Registration asks for a discoverable credential (`residentKey: required`, §5.4.6), so the
//!   same passkey signs in without a username, and user verification is always required
//!   (the passkey is then two factors by itself).
//! - A passkey is stored as the crate's `Passkey` (public key, counter, backup flags) in JSON,
//!   encrypted at rest like a TOTP secret, with the factor id as associated data.

use secrecy::{ExposeSecret, SecretBox};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

use super::keys::{KeyEncryptor, KeyError};
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkey configuration: {0}")]
    Config(String),
    /// The browser's answer does not verify (wrong origin, challenge, signature, no user
    /// verification...): the user is told it did not work, nothing more.
    #[error("the passkey could not be verified: {0}")]
    Rejected(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("stored passkey unreadable: {0}")]
    Corrupt(String),
}

pub struct Passkeys {
    webauthn: Webauthn,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passkeys")
    }
}

impl Passkeys {
    /// The WebAuthn relying party of this deployment, or `None` when the issuer is addressed
    /// by IP and no `passkey_rp_id` is set (no browser would create a passkey for it).
    pub fn from_settings(settings: &Settings, product: &str) -> Result<Option<Self>, PasskeyError> {
        let issuer = &settings.issuer;
        let rp_id = match &settings.passkey_rp_id {
            Some(id) => id.trim().to_ascii_lowercase(),
            None => match issuer.domain() {
                Some(domain) => domain.to_ascii_lowercase(),
                None => return Ok(None),
            },
        };
        let origin = Url::parse(&issuer.origin().ascii_serialization())
            .map_err(|e| PasskeyError::Config(format!("issuer origin: {e}")))?;
        let mut builder = WebauthnBuilder::new(&rp_id, &origin)
            .map_err(|_| {
                PasskeyError::Config(format!(
                    "passkey_rp_id {rp_id:?} is not the issuer's host or a parent domain of it"
                ))
            })?
            .rp_name(product);
        for extra in settings
            .passkey_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            let url = Url::parse(extra)
                .map_err(|e| PasskeyError::Config(format!("passkey_origins: {extra:?}: {e}")))?;
            let within = url
                .domain()
                .is_some_and(|d| d == rp_id || d.ends_with(&format!(".{rp_id}")));
            if !within {
                return Err(PasskeyError::Config(format!(
                    "passkey_origins: {extra:?} is not within the relying party id {rp_id:?}"
                )));
            }
            builder = builder.append_allowed_origin(&url);
        }
        let webauthn = builder.build().map_err(|e| PasskeyError::Config(e.to_string()))?;
        Ok(Some(Self { webauthn }))
    }

    /// Options for `navigator.credentials.create()`, and the state to check the answer with.
    /// `existing` are the user's passkeys, which the authenticator will not register twice.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        username: &str,
        display_name: &str,
        existing: &[Passkey],
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), PasskeyError> {
        let exclude: Vec<CredentialID> = existing.iter().map(|p| p.cred_id().clone()).collect();
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user_id, username, display_name, Some(exclude))
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        // A discoverable credential, so that it can also sign in without a username (§5.4.6).
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
            selection.user_verification = UserVerificationPolicy::Required;
        }
        Ok((options, state))
    }

    pub fn finish_registration(
        &self,
        answer: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey, PasskeyError> {
        self.webauthn
            .finish_passkey_registration(answer, state)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))
    }

    /// A second factor: one of these passkeys must sign.
    pub fn start_authentication(
        &self,
        passkeys: &[Passkey],
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication), PasskeyError> {
        self.webauthn
            .start_passkey_authentication(passkeys)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))
    }

    pub fn finish_authentication(
        &self,
        answer: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<AuthenticationResult, PasskeyError> {
        self.webauthn
            .finish_passkey_authentication(answer, state)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))
    }

    /// A sign-in without a username: any discoverable passkey for this relying party.
    pub fn start_discoverable(
        &self,
    ) -> Result<(RequestChallengeResponse, DiscoverableAuthentication), PasskeyError> {
        self.webauthn
            .start_discoverable_authentication()
            .map_err(|e| PasskeyError::Rejected(e.to_string()))
    }

    /// The account (user handle) and credential id a discoverable answer claims; unverified
    /// until [`Self::finish_discoverable`] checks it against that account's passkey.
    pub fn identify(&self, answer: &PublicKeyCredential) -> Result<(Uuid, String), PasskeyError> {
        let (user, credential) = self
            .webauthn
            .identify_discoverable_authentication(answer)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        Ok((user, credential_id_text(credential)))
    }

    pub fn finish_discoverable(
        &self,
        answer: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        passkey: Passkey,
    ) -> Result<AuthenticationResult, PasskeyError> {
        self.webauthn
            .finish_discoverable_authentication_v2(
                answer,
                state,
                webauthn_rs::prelude::Credential::from(passkey),
            )
            .map_err(|e| PasskeyError::Rejected(e.to_string()))
    }
}

/// How a credential id is stored and looked up: unpadded base64url.
pub fn credential_id_text(raw: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn encrypt(
    encryptor: &KeyEncryptor,
    factor_id: Uuid,
    passkey: &Passkey,
) -> Result<Vec<u8>, PasskeyError> {
    let json = serde_json::to_vec(passkey).map_err(|e| PasskeyError::Corrupt(e.to_string()))?;
    Ok(encryptor.encrypt(&factor_id.to_string(), &SecretBox::new(Box::new(json)))?)
}

pub fn decrypt(encryptor: &KeyEncryptor, factor_id: Uuid, sealed: &[u8]) -> Result<Passkey, PasskeyError> {
    let json = encryptor.decrypt(&factor_id.to_string(), sealed)?;
    serde_json::from_slice(json.expose_secret()).map_err(|e| PasskeyError::Corrupt(e.to_string()))
}
