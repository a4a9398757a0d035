//! The provider's own pages: login and consent, rendered from themes, with CSRF tokens,
//! a strict Content-Security-Policy and server-side sessions.

pub mod cookies;
pub mod flow;
pub mod interaction;
pub mod mfa;
pub mod pages;
pub mod passkey;
pub mod password;
pub mod protection;
pub mod recovery;
pub mod register;
pub mod session;
pub mod themes;
pub mod upstream;
pub mod verify_gate;
