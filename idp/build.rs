//! `sqlx::migrate!` embeds the migration files at compile time; this makes Cargo rebuild the
//! crate when one is added or changed (as `sqlx migrate build-script` would).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
