//! Plain domain types with no I/O. Constructors parse, so an invalid value cannot exist.

pub mod client;
pub mod client_security;
pub mod clock;
pub mod grant;
pub mod mfa;
pub mod resource;
pub mod scope;
pub mod session;
pub mod upstream;
pub mod user;

/// Why a value given by an operator or a client is unacceptable. Shown to them verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
