//! The payments custom provider per location. Api keys are stored as SHA-256 hashes only (the queryUrl
//! compares hashes); publishable keys are public by design; gateway credentials are sealed.

use crate::db::schema::payment_providers::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;
use service_common::with_conn;

/// Which gateway takes a location's payments (the `gateway` column of providers and charges).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    Sandbox,
    Paytr,
}

impl Gateway {
    pub fn as_str(self) -> &'static str {
        match self {
            Gateway::Sandbox => "sandbox",
            Gateway::Paytr => "paytr",
        }
    }

    pub fn parse(s: &str) -> Option<Gateway> {
        [Gateway::Sandbox, Gateway::Paytr]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

service_common::text_column!(Gateway, "sandbox or paytr");

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::payment_providers)]
pub struct ProviderRow {
    pub location_id: String,
    pub installation_id: String,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub gateway: Gateway,
    pub gateway_credentials: Option<String>,
    pub api_key_salt: String,
    pub test_api_key_hash: String,
    pub live_api_key_hash: String,
    pub test_publishable_key: String,
    pub live_publishable_key: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// What HighLevel answered as `marketplaceAppId` when the provider was registered.
    pub marketplace_app_id: Option<String>,
    /// PayTR only: the merchant holds PayTR's Direct API, Non3D and recurring permissions, so cards can be
    /// kept (PayTR's card storage) and charged off-session. Without them PayTR takes one-time iFrame payments.
    pub paytr_direct_api: bool,
}

pub fn get(conn: &mut DbConn, location: &str) -> Result<Option<ProviderRow>, DbError> {
    dsl::payment_providers
        .find(location)
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()
        .map_err(|e| DbError::naming(e, || format!("payment provider of {location}")))
}

/// Inserts or replaces the location's provider (keys are regenerated on every registration).
pub fn upsert(conn: &mut DbConn, row: &ProviderRow) -> Result<(), DbError> {
    with_conn!(conn, c => diesel::insert_into(dsl::payment_providers)
        .values(row)
        .on_conflict(dsl::location_id)
        .do_update()
        .set((
            dsl::installation_id.eq(&row.installation_id),
            dsl::name.eq(&row.name),
            dsl::description.eq(&row.description),
            dsl::image_url.eq(&row.image_url),
            dsl::gateway.eq(row.gateway),
            dsl::gateway_credentials.eq(&row.gateway_credentials),
            dsl::api_key_salt.eq(&row.api_key_salt),
            dsl::test_api_key_hash.eq(&row.test_api_key_hash),
            dsl::live_api_key_hash.eq(&row.live_api_key_hash),
            dsl::test_publishable_key.eq(&row.test_publishable_key),
            dsl::live_publishable_key.eq(&row.live_publishable_key),
            dsl::updated_at.eq(row.updated_at),
            dsl::paytr_direct_api.eq(row.paytr_direct_api),
        ))
        .execute(c))?;
    Ok(())
}

pub fn delete(conn: &mut DbConn, location: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(dsl::payment_providers.find(location)).execute(conn)? == 1)
}

/// The provider whose test or live api key has this hash, and whether it is the live one.
pub fn by_api_key_hash(
    conn: &mut DbConn,
    hash: &str,
) -> Result<Option<(ProviderRow, bool)>, DbError> {
    let row: Option<ProviderRow> = dsl::payment_providers
        .filter(
            dsl::test_api_key_hash
                .eq(hash)
                .or(dsl::live_api_key_hash.eq(hash)),
        )
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()
        .map_err(|e| {
            DbError::naming(e, || {
                // The row's key (its location), never the api key's hash.
                let location = dsl::payment_providers
                    .filter(
                        dsl::test_api_key_hash
                            .eq(hash)
                            .or(dsl::live_api_key_hash.eq(hash)),
                    )
                    .select(dsl::location_id)
                    .first::<String>(conn);
                match location {
                    Ok(l) => format!("payment provider of {l}"),
                    Err(_) => "the payment provider of an api key".to_owned(),
                }
            })
        })?;
    Ok(row.map(|r| {
        let live = r.live_api_key_hash == hash;
        (r, live)
    }))
}
