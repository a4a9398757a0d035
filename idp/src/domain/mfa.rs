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
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        (raw == "totp").then_some(Self::Totp)
    }
}

/// A second factor of a user. Its secret is stored encrypted, never shown again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: FactorKind,
    pub name: String,
    /// The encrypted secret (`security::totp`).
    pub secret: Vec<u8>,
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
    pub const MFA: &str = "mfa";
}

/// The authentication context classes this provider asserts, weakest first.
pub const ACR_PASSWORD: &str = "urn:aimpact:acr:pwd";
pub const ACR_MFA: &str = "urn:aimpact:acr:mfa";
pub const ACR_VALUES_SUPPORTED: [&str; 2] = [ACR_PASSWORD, ACR_MFA];

/// The class an authentication with these methods reached.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == amr::MFA) {
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

/// The methods of a login by password and then a one-time code.
pub fn with_second_factor(amr: &[String]) -> Vec<String> {
    let mut methods: Vec<String> = amr.iter().filter(|m| *m != amr::MFA).cloned().collect();
    if !methods.iter().any(|m| m == amr::OTP) {
        methods.push(amr::OTP.into());
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
        assert!(!satisfies(&pwd, ACR_MFA) && !satisfies(&both, "phr"));
    }
}
