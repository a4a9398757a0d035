//! The admin portal as a browser sees it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use e2e::{Server, rendered_dom, screenshot};

#[test]
fn the_admin_portal_renders_in_chromium() {
    let server = Server::start(&[("IDP_BOOTSTRAP_ADMIN_PASSWORD", "e2e-admin-password")]);
    let dom = rendered_dom(&format!("{}/admin/", server.base));
    // `portal-ready` exists only once the wasm app has run: the static index.html has an empty body.
    assert!(
        dom.contains("id=\"portal-ready\""),
        "portal did not render: {dom}"
    );
    assert!(dom.contains("AImpact Identity"));
    let shot = screenshot(&format!("{}/admin/", server.base), "portal-overview");
    assert!(std::fs::metadata(shot).unwrap().len() > 1000);
}

#[test]
fn a_client_side_route_survives_a_reload() {
    let server = Server::start(&[("IDP_BOOTSTRAP_ADMIN_PASSWORD", "e2e-admin-password")]);
    // No file exists at this path: the server answers with index.html and the app routes it.
    let dom = rendered_dom(&format!("{}/admin/users/deep/link", server.base));
    assert!(
        dom.contains("Page not found"),
        "history-API fallback failed: {dom}"
    );
}
