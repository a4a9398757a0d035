//! Sealed values the browser brings back: the `interaction` parameter of the login, consent
//! and password forms (authenticated encryption; anything altered must be refused).
#![no_main]

use std::sync::OnceLock;

use idp::login::interaction::InteractionSigner;
use idp::security::master_key::MasterKey;
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static InteractionSigner {
    static SIGNER: OnceLock<InteractionSigner> = OnceLock::new();
    SIGNER.get_or_init(|| InteractionSigner::new(&MasterKey::generate().unwrap().derive("interactions")))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = std::str::from_utf8(data) {
        assert!(signer().open(sealed, chrono::Utc::now()).is_none());
    }
});
