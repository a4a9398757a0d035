//! Users: who can log in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Invalid;

/// A login name: 1 to 64 characters, letters, digits and `. _ - @ +`.
/// Compared case-insensitively through [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Invalid::new("username must be 1 to 64 characters"));
        }
        if !name.chars().all(|c| c.is_alphanumeric() || "._-@+".contains(c)) {
            return Err(Invalid::new(
                "username may contain only letters, digits and . _ - @ +",
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and lookup.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// An email address, checked for shape only (deliverability is not our business).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                   && !domain.starts_with('.') && !domain.ends_with('.'));
        if !valid {
            return Err(Invalid::new(format!("{raw:?} is not an email address")));
        }
        Ok(Self(email.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

pub const ADMIN_ROLE: &str = api_types::ADMIN_ROLE;

/// A role name: 1 to 64 of `a-z 0-9 _ - . :`. Kept this narrow so that roles can be
/// matched inside their stored JSON array without escaping.
pub fn parse_role(raw: &str) -> Result<String, Invalid> {
    let role = raw.trim();
    let valid = !role.is_empty()
        && role.len() <= 64
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.:".contains(c));
    if !valid {
        return Err(Invalid::new(format!(
            "role {raw:?} must be 1 to 64 of a-z, 0-9 and _ - . :"
        )));
    }
    Ok(role.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: Uuid,
    pub username: Username,
    pub email: Option<Email>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub status: UserStatus,
    pub roles: Vec<String>,
    pub failed_login_count: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub must_change_password: bool,
    /// An administrator asked that the user enrol a second factor at their next login.
    pub mfa_enrolment_required: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
}

/// What is needed to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Option<Email>,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_compared_case_insensitively() {
        assert_eq!(Username::parse("Alice").map(|u| u.key()), Ok("alice".to_string()));
    }

    #[test]
    fn usernames_with_spaces_or_empty_are_refused() {
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        for bad in ["", "a", "@example.com", "a@", "a@@b", "a b@c.d", "a@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
