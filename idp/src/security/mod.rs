//! Security primitives, each with one home: randomness, the master key and what is derived
//! from it, password hashing, client-secret hashing, signing keys.

pub mod client_keys;
pub mod client_secret;
pub mod denylist;
pub mod keyring;
pub mod keys;
pub mod master_key;
pub mod outbound;
pub mod passkeys;
pub mod password;
pub mod random;
pub mod ratelimit;
pub mod recovery_codes;
pub mod redis_connections;
pub mod replay;
pub mod totp;
