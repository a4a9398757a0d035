//! SQL for upstream identity providers (federation).

use crate::domain::upstream::{FederatedIdentity, Protocol, TokenAuth, Upstream};
use crate::store::rows::{from_json, time};
use crate::store::{StoreError, StoreResult};

#[derive(sqlx::FromRow)]
pub(crate) struct UpstreamRow {
    slug: String,
    display_name: String,
    issuer: String,
    client_id: String,
    client_secret_sealed: Vec<u8>,
    scopes: String,
    jit: bool,
    trust_email: bool,
    claim_username: String,
    claim_email: String,
    claim_name: String,
    allowed_domains: String,
    auto_link_domains: String,
    allowed_clients: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    kind: String,
    oauth2_endpoints: Option<String>,
    claim_subject: String,
    token_endpoint_auth_method: String,
    icon: Option<String>,
}

macro_rules! upstream_columns {
    () => {
        "slug, display_name, issuer, client_id, client_secret_sealed, scopes, jit, trust_email, \
         claim_username, claim_email, claim_name, allowed_domains, allowed_clients, enabled, created_at, \
         updated_at, auto_link_domains, kind, oauth2_endpoints, claim_subject, token_endpoint_auth_method, icon"
    };
}
pub(crate) use upstream_columns;

impl TryFrom<UpstreamRow> for Upstream {
    type Error = StoreError;

    fn try_from(r: UpstreamRow) -> StoreResult<Self> {
        let protocol = match (r.kind.as_str(), &r.oauth2_endpoints) {
            ("oidc", _) => Protocol::Oidc,
            ("oauth2", Some(endpoints)) => {
                Protocol::OAuth2(from_json("upstream oauth2_endpoints", endpoints)?)
            }
            (kind, _) => return Err(StoreError::Corrupt(format!("upstream kind {kind:?}"))),
        };
        Ok(Upstream {
            protocol,
            token_auth: TokenAuth::parse(&r.token_endpoint_auth_method)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            scopes: from_json("upstream scopes", &r.scopes)?,
            allowed_domains: from_json("upstream allowed_domains", &r.allowed_domains)?,
            auto_link_domains: from_json("upstream auto_link_domains", &r.auto_link_domains)?,
            allowed_clients: from_json("upstream allowed_clients", &r.allowed_clients)?,
            slug: r.slug,
            display_name: r.display_name,
            icon: r.icon,
            issuer: r.issuer,
            client_id: r.client_id,
            client_secret_sealed: r.client_secret_sealed,
            jit: r.jit,
            trust_email: r.trust_email,
            claims: crate::domain::upstream::ClaimMapping {
                subject: r.claim_subject,
                username: r.claim_username,
                email: r.claim_email,
                name: r.claim_name,
            },
            enabled: r.enabled,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

/// A plain OAuth 2.0 provider's endpoints as stored (NULL for an OpenID provider).
pub(crate) fn endpoints_json(protocol: &Protocol) -> Option<String> {
    match protocol {
        Protocol::Oidc => None,
        Protocol::OAuth2(endpoints) => Some(crate::store::rows::json(endpoints)),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdentityRow {
    issuer: String,
    subject: String,
    user_id: String,
    upstream: String,
    email: Option<String>,
    created_at: i64,
    last_login_at: Option<i64>,
}

macro_rules! identity_columns {
    () => {
        "issuer, subject, user_id, upstream, email, created_at, last_login_at"
    };
}
pub(crate) use identity_columns;

impl TryFrom<IdentityRow> for FederatedIdentity {
    type Error = StoreError;

    fn try_from(r: IdentityRow) -> StoreResult<Self> {
        Ok(FederatedIdentity {
            user_id: crate::store::rows::uuid(&r.user_id)?,
            issuer: r.issuer,
            subject: r.subject,
            upstream: r.upstream,
            email: r.email,
            created_at: time(r.created_at)?,
            last_login_at: r.last_login_at.map(time).transpose()?,
        })
    }
}

macro_rules! impl_upstream_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::UpstreamStore for $store {
            async fn create_upstream(
                &self,
                u: &$crate::domain::upstream::Upstream,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(concat!(
                    "INSERT INTO upstream_providers (",
                    $crate::store::sql::upstreams::upstream_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
                ))
                .bind(&u.slug)
                .bind(&u.display_name)
                .bind(&u.issuer)
                .bind(&u.client_id)
                .bind(&u.client_secret_sealed)
                .bind(rows::json(&u.scopes))
                .bind(u.jit)
                .bind(u.trust_email)
                .bind(&u.claims.username)
                .bind(&u.claims.email)
                .bind(&u.claims.name)
                .bind(rows::json(&u.allowed_domains))
                .bind(rows::json(&u.allowed_clients))
                .bind(u.enabled)
                .bind(rows::ms(u.created_at))
                .bind(rows::ms(u.updated_at))
                .bind(rows::json(&u.auto_link_domains))
                .bind(u.protocol.kind())
                .bind($crate::store::sql::upstreams::endpoints_json(&u.protocol))
                .bind(&u.claims.subject)
                .bind(u.token_auth.as_str())
                .bind(u.icon.as_deref())
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)
                .map(|_| ())
            }

            async fn find_upstream(
                &self,
                slug: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::upstream::Upstream>> {
                let row: Option<$crate::store::sql::upstreams::UpstreamRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::sql::upstreams::upstream_columns!(),
                    " FROM upstream_providers WHERE slug = $1"
                ))
                .bind(slug)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_upstreams(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::upstream::Upstream>> {
                let found: Vec<$crate::store::sql::upstreams::UpstreamRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::sql::upstreams::upstream_columns!(),
                    " FROM upstream_providers ORDER BY slug"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn update_upstream(
                &self,
                u: &$crate::domain::upstream::Upstream,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::{map_sqlx, rows};
                let done = sqlx::query(
                    "UPDATE upstream_providers SET display_name = $1, client_id = $2, \
                     client_secret_sealed = $3, scopes = $4, jit = $5, trust_email = $6, \
                     allowed_domains = $7, allowed_clients = $8, enabled = $9, updated_at = $10, \
                     claim_username = $11, claim_email = $12, claim_name = $13, auto_link_domains = $14, \
                     oauth2_endpoints = $15, claim_subject = $16, token_endpoint_auth_method = $17, \
                     icon = $18 WHERE slug = $19",
                )
                .bind(&u.display_name)
                .bind(&u.client_id)
                .bind(&u.client_secret_sealed)
                .bind(rows::json(&u.scopes))
                .bind(u.jit)
                .bind(u.trust_email)
                .bind(rows::json(&u.allowed_domains))
                .bind(rows::json(&u.allowed_clients))
                .bind(u.enabled)
                .bind(rows::ms(u.updated_at))
                .bind(&u.claims.username)
                .bind(&u.claims.email)
                .bind(&u.claims.name)
                .bind(rows::json(&u.auto_link_domains))
                .bind($crate::store::sql::upstreams::endpoints_json(&u.protocol))
                .bind(&u.claims.subject)
                .bind(u.token_auth.as_str())
                .bind(u.icon.as_deref())
                .bind(&u.slug)
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn link_identity(
                &self,
                i: &$crate::domain::upstream::FederatedIdentity,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::{map_sqlx, rows};
                sqlx::query(
                    "INSERT INTO federated_identities (issuer, subject, user_id, upstream, email, created_at, \
                     last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&i.issuer)
                .bind(&i.subject)
                .bind(i.user_id.to_string())
                .bind(&i.upstream)
                .bind(i.email.as_deref())
                .bind(rows::ms(i.created_at))
                .bind(i.last_login_at.map(rows::ms))
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)
                .map(|_| ())
            }

            async fn find_identity(
                &self,
                issuer: &str,
                subject: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::upstream::FederatedIdentity>> {
                let row: Option<$crate::store::sql::upstreams::IdentityRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::sql::upstreams::identity_columns!(),
                    " FROM federated_identities WHERE issuer = $1 AND subject = $2"
                ))
                .bind(issuer)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn identities_of_user(
                &self,
                user_id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::upstream::FederatedIdentity>> {
                let found: Vec<$crate::store::sql::upstreams::IdentityRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::sql::upstreams::identity_columns!(),
                    " FROM federated_identities WHERE user_id = $1 ORDER BY created_at"
                ))
                .bind(user_id.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                found.into_iter().map(TryInto::try_into).collect()
            }

            async fn touch_identity(
                &self,
                issuer: &str,
                subject: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE federated_identities SET last_login_at = $1 WHERE issuer = $2 AND subject = $3")
                    .bind($crate::store::rows::ms(now))
                    .bind(issuer)
                    .bind(subject)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)
                    .map(|_| ())
            }

            async fn unlink_identity(
                &self,
                user_id: uuid::Uuid,
                issuer: &str,
                subject: &str,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "DELETE FROM federated_identities WHERE user_id = $1 AND issuer = $2 AND subject = $3",
                )
                .bind(user_id.to_string())
                .bind(issuer)
                .bind(subject)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_upstream(&self, slug: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM upstream_providers WHERE slug = $1")
                    .bind(slug)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_upstream_store;
