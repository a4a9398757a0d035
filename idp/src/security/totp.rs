//! Time-based one-time passwords (RFC 6238) through the `totp-rs` crate: SHA-1, six digits,
//! 30-second steps, one step of drift either way (RFC 6238 §5.2) — what every authenticator
//! app understands. Secrets are 160 random bits (RFC 4226 §4), stored encrypted under a key
//! derived from the master key, with the factor's id as associated data so that a secret
//! cannot be moved to another factor row.

use secrecy::{ExposeSecret, SecretBox};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

use super::keys::{KeyEncryptor, KeyError};
use super::random::{self, RandomError};

pub const DIGITS: u8 = 6;
pub const STEP_S: u64 = 30;
const SECRET_BYTES: usize = 20;

/// A TOTP secret in the clear: only ever in memory, while enrolling or checking a code.
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl TotpSecret {
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(SecretBox::new(Box::new(
            random::bytes::<SECRET_BYTES>()?.to_vec(),
        ))))
    }

    pub fn encrypt(&self, encryptor: &KeyEncryptor, factor_id: Uuid) -> Result<Vec<u8>, KeyError> {
        encryptor.encrypt(&factor_id.to_string(), &self.0)
    }

    pub fn decrypt(encryptor: &KeyEncryptor, factor_id: Uuid, sealed: &[u8]) -> Result<Self, KeyError> {
        encryptor.decrypt(&factor_id.to_string(), sealed).map(Self)
    }

    fn totp(&self, account: &str, issuer: &str) -> Totp {
        // The parameters are fixed and valid (6 digits, 30 s, 160-bit secret); an account
        // or issuer label the otpauth format cannot carry only affects `otpauth_url`.
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(1)
            .with_step_duration(STEP_S)
            .with_secret(Secret::from(self.0.expose_secret().clone()))
            .with_account_name(account.replace(':', ""))
            .with_issuer(Some(issuer.replace(':', "")))
            .build_noncompliant()
    }

    /// The key as the user types it into an app: base32, in groups of four.
    pub fn manual_key(&self) -> String {
        let encoded = Secret::from(self.0.expose_secret().clone()).to_base32();
        encoded
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `otpauth://totp/...` URI that authenticator apps scan.
    pub fn otpauth_url(&self, account: &str, issuer: &str) -> Option<String> {
        self.totp(account, issuer).to_url().ok()
    }

    /// The time step a code matches at `unix_time` (±1 step), if any. Codes are compared in
    /// full by the crate; a code of the wrong shape matches nothing.
    pub fn matching_step(&self, code: &str, unix_time: i64) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let time = u64::try_from(unix_time).ok()?;
        let step = self.totp("", "").check(&code, time)?;
        i64::try_from(step).ok()
    }

    /// The code for `unix_time` (what the user's app shows).
    pub fn code_at(&self, unix_time: i64) -> String {
        self.totp("", "")
            .generate(u64::try_from(unix_time).unwrap_or_default())
            .to_string()
    }
}

/// The QR code of `text` as an SVG image, drawn on the server: the page needs no script.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret(SecretBox::new(Box::new(b"12345678901234567890".to_vec())))
    }

    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        // RFC 6238 Appendix B, SHA-1, the last six of the eight digits.
        let secret = rfc_secret();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
        ] {
            assert_eq!(secret.code_at(time), code);
            assert_eq!(secret.matching_step(code, time), Some(time / 30));
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_no_more() {
        let secret = rfc_secret();
        let code = secret.code_at(1_000_000_000);
        let step = 1_000_000_000 / 30;
        assert_eq!(secret.matching_step(&code, 1_000_000_000 + 30), Some(step));
        assert_eq!(secret.matching_step(&code, 1_000_000_000 - 30), Some(step));
        assert_eq!(secret.matching_step(&code, 1_000_000_000 + 61), None);
        assert_eq!(secret.matching_step("12345", 1_000_000_000), None);
        assert_eq!(secret.matching_step("abcdef", 1_000_000_000), None);
    }

    #[test]
    fn a_secret_opens_only_under_its_own_factor_id() {
        let master = crate::security::master_key::MasterKey::generate().unwrap();
        let encryptor = KeyEncryptor::new(&master.derive("t")).unwrap();
        let secret = TotpSecret::generate().unwrap();
        let (id, other) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = secret.encrypt(&encryptor, id).unwrap();
        let opened = TotpSecret::decrypt(&encryptor, id, &sealed).unwrap();
        assert_eq!(opened.manual_key(), secret.manual_key());
        assert!(TotpSecret::decrypt(&encryptor, other, &sealed).is_err());
    }

    #[test]
    fn the_enrolment_uri_and_qr_code_carry_the_secret() {
        let secret = rfc_secret();
        let url = secret.otpauth_url("ada", "AImpact Identity").unwrap();
        assert!(url.starts_with("otpauth://totp/"), "{url}");
        assert!(url.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{url}");
        assert!(qr_svg(&url).unwrap().starts_with("<?xml"));
    }
}
