//! One module per section of the portal.

pub mod clients;
pub mod events;
pub mod keys;
pub mod overview;
pub mod resources;
pub mod upstreams;
pub mod users;
