//! Types shared by the server and the admin portal, so the two cannot drift.
