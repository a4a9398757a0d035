//! Second factors, MFA policies and the authentication facts a login establishes
//! (`amr`, RFC 8176; `acr`, OIDC Core §2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Invalid;

/// Whether a second factor is asked for. Ordered: a client may raise the deployment's
/// policy, never lower it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Never asked, not even of users who enrolled one.
    Off,
    /// Asked of every user who has one; enrolment is up to them.
    Optional,
    /// Every user must have one: those without enrol right after their password.
    Required,
}

impl MfaPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim() {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(Invalid::new(format!(
                "mfa must be off, optional or required, not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorKind {
    /// A time-based one-time password app (RFC 6238).
    Totp,
    /// A WebAuthn credential: a security key, or a phone's or computer's platform authenticator.
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "totp" => Some(Self::Totp),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }
}

/// A second factor of a user. Its secret is stored encrypted, never shown again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: FactorKind,
    pub name: String,
    /// The encrypted secret (`security::totp`) or passkey credential (`security::passkeys`).
    pub secret: Vec<u8>,
    /// A passkey's WebAuthn credential id (base64url), by which a discoverable passkey finds
    /// its account.
    pub credential_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `None` while the enrolment is unfinished: such a factor never counts.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The last TOTP time step accepted: it and every earlier one are refused (RFC 6238 §5.2).
    pub last_used_step: Option<i64>,
}

impl Factor {
    pub fn confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// RFC 8176 authentication method references.
pub mod amr {
    pub const PASSWORD: &str = "pwd";
    pub const OTP: &str = "otp";
    /// Proof of possession of a hardware-secured key: a passkey.
    pub const HARDWARE_KEY: &str = "hwk";
    /// The authenticator verified the user (PIN or biometric) before a passkey signed.
    pub const USER: &str = "user";
    pub const MFA: &str = "mfa";
    /// Signed in through an upstream identity provider (federation).
    pub const FED: &str = "fed";

    /// Whether `method` is in the IANA registry of RFC 8176 §2 (an upstream's other values
    /// are not repeated in this provider's tokens).
    pub fn is_registered(method: &str) -> bool {
        const REGISTERED: [&str; 20] = [
            "face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pwd", "rba", "retina",
            "sc", "sms", "swk", "tel", "user", "vbm", "wia",
        ];
        REGISTERED.contains(&method)
    }
}

/// The authentication context classes this provider asserts, weakest first.
pub const ACR_PASSWORD: &str = "urn:aimpact:acr:pwd";
pub const ACR_MFA: &str = "urn:aimpact:acr:mfa";
/// Phishing-resistant (OpenID EAP ACR Values 1.0 §2.1 `phr`): a passkey, whose signature is
/// bound to this provider's origin, so no look-alike site can relay it.
pub const ACR_PHISHING_RESISTANT: &str = "phr";
pub const ACR_VALUES_SUPPORTED: [&str; 3] = [ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT];

/// The class an authentication with these methods reached.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == amr::HARDWARE_KEY) && amr.iter().any(|m| m == amr::MFA) {
        ACR_PHISHING_RESISTANT
    } else if amr.iter().any(|m| m == amr::MFA) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// The strength of a class this provider knows (`None`: not one of ours).
pub fn acr_level(acr: &str) -> Option<u8> {
    ACR_VALUES_SUPPORTED
        .iter()
        .position(|known| *known == acr)
        .and_then(|p| u8::try_from(p).ok())
}

/// Whether an authentication with these methods satisfies class `acr`.
pub fn satisfies(amr: &[String], acr: &str) -> bool {
    match (acr_level(acr_of(amr)), acr_level(acr)) {
        (Some(reached), Some(wanted)) => reached >= wanted,
        _ => false,
    }
}

/// The methods of a login that proved `amr` and then a one-time code.
pub fn with_second_factor(amr: &[String]) -> Vec<String> {
    with_methods(amr, &[amr::OTP])
}

/// The methods of a login that proved `amr` and then a passkey with user verification: the
/// passkey alone is two factors (possession, and the PIN or biometric that unlocked it).
pub fn with_passkey(amr: &[String]) -> Vec<String> {
    with_methods(amr, &[amr::HARDWARE_KEY, amr::USER])
}

fn with_methods(amr: &[String], added: &[&str]) -> Vec<String> {
    let mut methods: Vec<String> = amr.iter().filter(|m| *m != amr::MFA).cloned().collect();
    for method in added {
        if !methods.iter().any(|m| m == method) {
            methods.push((*method).into());
        }
    }
    methods.push(amr::MFA.into());
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_policy_only_raises_the_deployments() {
        assert_eq!(MfaPolicy::Optional.max(MfaPolicy::Off), MfaPolicy::Optional);
        assert_eq!(MfaPolicy::Off.max(MfaPolicy::Required), MfaPolicy::Required);
        assert!(MfaPolicy::parse("sometimes").is_err());
    }

    #[test]
    fn the_acr_follows_the_methods() {
        let pwd = vec!["pwd".to_string()];
        let both = with_second_factor(&pwd);
        assert_eq!(both, ["pwd", "otp", "mfa"]);
        assert_eq!(with_second_factor(&both), both);
        assert_eq!(acr_of(&pwd), ACR_PASSWORD);
        assert_eq!(acr_of(&both), ACR_MFA);
        assert!(satisfies(&both, ACR_PASSWORD) && satisfies(&both, ACR_MFA));
        assert!(!satisfies(&pwd, ACR_MFA) && !satisfies(&both, ACR_PHISHING_RESISTANT));
    }

    #[test]
    fn a_passkey_is_phishing_resistant_and_satisfies_every_weaker_class() {
        let passwordless = with_passkey(&[]);
        assert_eq!(passwordless, ["hwk", "user", "mfa"]);
        assert_eq!(acr_of(&passwordless), ACR_PHISHING_RESISTANT);
        let after_password = with_passkey(&["pwd".to_string()]);
        assert_eq!(after_password, ["pwd", "hwk", "user", "mfa"]);
        for class in ACR_VALUES_SUPPORTED {
            assert!(satisfies(&after_password, class));
        }
    }
}
