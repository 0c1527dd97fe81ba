//! `/api/locations/{locationId}/payments/provider`: register the app as the location's third-party payment
//! provider (HighLevel's custom provider, with a Location token — never the white-label endpoint), connect
//! freshly generated test and live keys, show it, remove it.

use super::{Located, LocationAdmin, State};
use crate::error::ApiError;
use crate::payments::keys::{self, Mode};
use crate::store::{self, now_ms, providers::ProviderRow};
use actix_web::{web, HttpResponse};
use highlevel_client::resources::payments::{ConnectKeys, NewProvider, ProviderKeys};
use highlevel_client::HlError;
use serde::{Deserialize, Serialize};
use service_common::crypto::token_hash;
use service_common::TokenKind;
use shared_types::Problem;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/locations/{locationId}/payments/provider")
            .route(web::put().to(put))
            .route(web::get().to(get))
            .route(web::delete().to(delete)),
    );
}

pub use crate::store::providers::Gateway;

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaytrCredentials {
    pub merchant_id: String,
    pub merchant_key: String,
    pub merchant_salt: String,
    /// The merchant holds PayTR's Direct API, Non3D and recurring-payment permissions (granted by PayTR on
    /// request). Then cards are kept in PayTR's card storage and charged off-session: card on file and
    /// subscriptions renewed here. Default `false`: one-time payments through PayTR's iFrame only.
    #[serde(default)]
    pub direct_api: bool,
}

impl std::fmt::Debug for PaytrCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaytrCredentials")
            .field("merchant_id", &self.merchant_id)
            .field("direct_api", &self.direct_api)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderInput {
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub gateway: Gateway,
    #[serde(default)]
    pub paytr: Option<PaytrCredentials>,
}

impl ProviderInput {
    fn validate(&self) -> Result<(), ApiError> {
        let bad = |m: &str| Err(ApiError::Validation(m.into()));
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return bad("`name` must be 1-100 characters");
        }
        if self.description.trim().is_empty() || self.description.len() > 1000 {
            return bad("`description` must be 1-1000 characters");
        }
        if !matches!(
            super::bodies::image_ref(&self.image_url),
            Ok(super::bodies::ImageRef::Url(_))
        ) {
            return bad("`imageUrl` must be an http(s) URL");
        }
        match (self.gateway, &self.paytr) {
            (Gateway::Paytr, None) => bad(
                "`paytr` {merchantId, merchantKey, merchantSalt} is required for the paytr gateway",
            ),
            (Gateway::Sandbox, Some(_)) => bad("`paytr` is only for the paytr gateway"),
            (Gateway::Paytr, Some(p)) => {
                if p.merchant_id.is_empty()
                    || !p.merchant_id.chars().all(|c| c.is_ascii_digit())
                    || p.merchant_id.len() > 20
                {
                    return bad("`paytr.merchantId` must be PayTR's numeric merchant id");
                }
                if p.merchant_key.is_empty()
                    || p.merchant_salt.is_empty()
                    || p.merchant_key.len() > 200
                    || p.merchant_salt.len() > 200
                {
                    return bad("`paytr.merchantKey` and `paytr.merchantSalt` are required (from PayTR's merchant panel)");
                }
                Ok(())
            }
            (Gateway::Sandbox, None) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishableKeys {
    pub test: String,
    pub live: String,
}

/// The provider as the frontend sees it: publishable keys only, never api keys or gateway secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOut {
    pub location_id: String,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub gateway: String,
    pub query_url: Option<String>,
    pub payments_url: Option<String>,
    pub publishable_keys: PublishableKeys,
    /// PayTR only: whether the merchant holds PayTR's Direct API, Non3D and recurring permissions.
    pub paytr_direct_api: bool,
    /// Whether cards are kept on file and subscriptions renewed for this location (what HighLevel is told:
    /// `addCardOnFileSupported` on the payment page, `supportsSubscriptionSchedules` in the capabilities).
    pub card_on_file: bool,
    pub updated_at: String,
}

fn out(row: &ProviderRow, base: Option<&str>) -> ProviderOut {
    ProviderOut {
        location_id: row.location_id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        image_url: row.image_url.clone(),
        gateway: row.gateway.as_str().to_owned(),
        query_url: base.map(|b| format!("{b}/payments/query")),
        payments_url: base.map(|b| format!("{b}/payments/page?locationId={}", row.location_id)),
        publishable_keys: PublishableKeys {
            test: row.test_publishable_key.clone(),
            live: row.live_publishable_key.clone(),
        },
        paytr_direct_api: row.paytr_direct_api,
        card_on_file: crate::payments::checkout::keeps_cards(row),
        updated_at: chrono::DateTime::from_timestamp_millis(row.updated_at)
            .unwrap_or_default()
            .to_rfc3339(),
    }
}

/// Register the custom provider and connect new test and live keys.
#[utoipa::path(put, path = "/api/locations/{locationId}/payments/provider", operation_id = "putProvider", tag = "payments",
    params(("locationId" = String, Path)), request_body = ProviderInput,
    responses((status = 200, body = ProviderOut), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn put(
    LocationAdmin(at): LocationAdmin,
    state: State,
    path: web::Path<String>,
    body: web::Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    body.validate()?;
    let base = state.settings.public_base_url.clone().ok_or_else(|| {
        ApiError::Validation("PUBLIC_BASE_URL is not set: HighLevel needs a public queryUrl and paymentsUrl to call; set it to this service's public URL".into())
    })?;
    let sealed = match &body.paytr {
        Some(p) => {
            let keys = state.keys.as_ref().ok_or_else(|| {
                ApiError::Validation("TOKEN_ENCRYPTION_KEYS is not set on api-backend: it is needed to keep PayTR credentials sealed".into())
            })?;
            let json = serde_json::json!({"merchantId": p.merchant_id, "merchantKey": p.merchant_key, "merchantSalt": p.merchant_salt});
            Some(keys.encrypt(
                &json.to_string(),
                &format!("provider/{location}"),
                TokenKind::Secret,
            ))
        }
        None => None,
    };
    let tokens = at.tokens(&state);
    let input = body.into_inner();
    // Subscriptions are renewed here from saved cards: only where the gateway keeps cards (the sandbox; PayTR
    // where the merchant holds its Direct API, Non3D and recurring permissions).
    let direct_api = input.paytr.as_ref().is_some_and(|p| p.direct_api);
    let schedules = crate::payments::checkout::gateway_keeps_cards(input.gateway, direct_api);
    let provider = NewProvider {
        name: input.name.clone(),
        description: input.description.clone(),
        image_url: input.image_url.clone(),
        query_url: format!("{base}/payments/query"),
        // The location in the page's URL lets the page say at once what the location's gateway can do
        // (card on file) in its first `custom_provider_ready`.
        payments_url: format!("{base}/payments/page?locationId={location}"),
        supports_subscription_schedule: schedules,
    };
    let salt = keys::new_salt();
    let secret = &state.settings.service_jwt_secret;
    let connect = ConnectKeys {
        live: ProviderKeys {
            api_key: keys::api_key(secret, &location, Mode::Live, &salt),
            publishable_key: keys::publishable_key(Mode::Live),
        },
        test: ProviderKeys {
            api_key: keys::api_key(secret, &location, Mode::Test, &salt),
            publishable_key: keys::publishable_key(Mode::Test),
        },
    };
    let registered = state
        .hl
        .create_provider(&tokens, &location, &provider)
        .await?;
    state
        .hl
        .connect_provider(&tokens, &location, &connect)
        .await?;
    state
        .hl
        .provider_capabilities(&tokens, &location, schedules)
        .await?;
    let now = now_ms();
    let row = ProviderRow {
        location_id: location.clone(),
        installation_id: tokens.installation.clone(),
        name: input.name,
        description: input.description,
        image_url: input.image_url,
        gateway: input.gateway,
        gateway_credentials: sealed,
        api_key_salt: salt,
        test_api_key_hash: token_hash(&connect.test.api_key),
        live_api_key_hash: token_hash(&connect.live.api_key),
        test_publishable_key: connect.test.publishable_key.clone(),
        live_publishable_key: connect.live.publishable_key.clone(),
        created_at: now,
        updated_at: now,
        marketplace_app_id: registered["marketplaceAppId"].as_str().map(str::to_owned),
        paytr_direct_api: direct_api,
    };
    let stored = row.clone();
    state
        .db
        .run(move |c| store::providers::upsert(c, &stored))
        .await?;
    tracing::info!(%location, gateway = row.gateway.as_str(), "payments provider registered and keys connected");
    Ok(HttpResponse::Ok().json(out(&row, Some(&base))))
}

/// The location's provider.
#[utoipa::path(get, path = "/api/locations/{locationId}/payments/provider", operation_id = "getProvider", tag = "payments",
    params(("locationId" = String, Path)),
    responses((status = 200, body = ProviderOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn get(
    _checked: Located,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let l = location.clone();
    let row = state
        .db
        .run(move |c| store::providers::get(c, &l))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no payments provider is registered for location `{location}`"
            ))
        })?;
    Ok(HttpResponse::Ok().json(out(&row, state.settings.public_base_url.as_deref())))
}

/// Disconnect both modes and remove the provider, at HighLevel and here.
#[utoipa::path(delete, path = "/api/locations/{locationId}/payments/provider", operation_id = "deleteProvider", tag = "payments",
    params(("locationId" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    LocationAdmin(at): LocationAdmin,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let tokens = at.tokens(&state);
    // "No such config" (400/404) means already gone: removal is idempotent.
    let gone = |r: Result<(), HlError>| match r {
        Err(HlError::Refused {
            status: 400 | 404, ..
        }) => Ok(()),
        other => other,
    };
    gone(
        state
            .hl
            .disconnect_provider(&tokens, &location, false)
            .await,
    )?;
    gone(state.hl.disconnect_provider(&tokens, &location, true).await)?;
    gone(state.hl.delete_provider(&tokens, &location).await)?;
    let l = location.clone();
    state
        .db
        .run(move |c| store::providers::delete(c, &l))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
