//! First start: make sure an administrator and signing keys exist.

use secrecy::{ExposeSecret, SecretString};

use super::users::{AddUser, add_user};
use super::{Actor, ManageError};
use crate::security::random;
use crate::services::Services;

pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Creates the `admin` user when no active administrator exists. The password comes from
/// `bootstrap_admin_password`, or is random and printed once on standard error.
pub async fn ensure_admin(services: &Services) -> Result<(), ManageError> {
    if services.store.admin_exists().await? {
        return Ok(());
    }
    let (password, generated) = match &services.settings.bootstrap_admin_password {
        Some(p) => (p.clone(), false),
        None => {
            let p = random::token::<18>().map_err(|e| ManageError::Internal(e.to_string()))?;
            (SecretString::from(p), true)
        }
    };
    let request = AddUser {
        username: BOOTSTRAP_ADMIN.into(),
        email: None,
        name: Some("Administrator".into()),
        password: password.clone(),
        admin: true,
    };
    match add_user(services, request, Actor::System).await {
        Ok(user) => {
            tracing::warn!(user_id = %user.id, "no administrator existed: created user `admin`");
            if generated {
                // Printed once, to the operator's terminal or container log, never stored anywhere.
                eprintln!(
                    "\n==== First start: administrator created ====\n  username: admin\n  password: {}\n  Change it after logging in. This password is not shown again.\n============================================\n",
                    password.expose_secret()
                );
            }
            Ok(())
        }
        // Another replica created it first.
        Err(ManageError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
