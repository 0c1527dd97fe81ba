//! The third-party payments custom provider (payments.json): a Location token and `?locationId=` on every
//! call. `provider` registers the app as the location's gateway; `connect` hands HighLevel the api and
//! publishable keys for test and live mode.

use crate::client::{Body, HighLevelClient, Request, TokenSource};
use crate::endpoints::{self as ep, Endpoint};
use crate::error::HlError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /payments/custom-provider/provider` body; every field is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewProvider {
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub query_url: String,
    pub payments_url: String,
    pub supports_subscription_schedule: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderKeys {
    pub api_key: String,
    pub publishable_key: String,
}

impl std::fmt::Debug for ProviderKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderKeys")
            .field("api_key", &"<redacted>")
            .field("publishable_key", &self.publishable_key)
            .finish()
    }
}

/// `POST /payments/custom-provider/connect` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectKeys {
    pub live: ProviderKeys,
    pub test: ProviderKeys,
}

/// HighLevel's own record of what is being paid: a transaction (`GET /payments/transactions/{id}`) or an
/// order (`GET /payments/orders/{id}`), amount in decimal major units (payments.json `GetTxnResponseSchema`,
/// `GetOrderResponseSchema`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    #[serde(rename = "_id")]
    pub id: String,
    /// The location the record belongs to (with `altType` `location`).
    #[serde(default)]
    pub alt_id: Option<String>,
    pub amount: f64,
    pub currency: String,
    #[serde(default)]
    pub live_mode: Option<bool>,
    #[serde(default)]
    pub contact_id: Option<String>,
    /// For a transaction: the order it pays (`entityType` `order`).
    #[serde(default)]
    pub entity_id: Option<String>,
}

/// HighLevel's own record of a subscription (`GET /payments/subscriptions/{id}`, payments.json
/// `GetSubscriptionResponseSchema`): whose it is, in which currency and mode, the order it came from
/// (`entityType` `order`, `entityId`) and the recurring product bought (`recurringProduct`, an object whose
/// fields the spec leaves open: see [`SubscriptionRecord::recurring_ids`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRecord {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub alt_id: Option<String>,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    /// "Subscription value", decimal major units.
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default)]
    pub live_mode: Option<bool>,
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    /// HighLevel's subscription id as the provider knows it (`subscriptionId`), when one is set.
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub status: Option<Value>,
    #[serde(default)]
    pub recurring_product: Option<Value>,
}

impl SubscriptionRecord {
    /// The product and price the subscription is for, from `recurringProduct`: `productId`/`priceId`, or the
    /// embedded `product._id`/`price._id` (an order item's shape). `None` when the record names neither.
    pub fn recurring_ids(&self) -> Option<(String, String)> {
        let r = self.recurring_product.as_ref()?;
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let product = text(&r["productId"]).or_else(|| text(&r["product"]["_id"]))?;
        let price = text(&r["priceId"]).or_else(|| text(&r["price"]["_id"]))?;
        Some((product, price))
    }
}

/// Where a provider reports asynchronous outcomes (`payment.captured`, `subscription.*`), with its apiKey in
/// the body.
pub const PROVIDER_WEBHOOK_PATH: &str = "/payments/custom-provider/webhook";

fn call_of(e: &'static Endpoint, location: &str, body: Body) -> Request {
    Request {
        endpoint: e,
        path: e.path.to_owned(),
        query: vec![("locationId".to_owned(), location.to_owned())],
        body,
        location: Some(location.to_owned()),
    }
}

/// A record read by id (already checked with [`shared_types::check_id`]): `altId` and `altType` are required by both
/// endpoints.
fn record_of(e: &'static Endpoint, placeholder: &str, id: &str, location: &str) -> Request {
    Request {
        endpoint: e,
        path: e.path.replace(placeholder, id),
        query: vec![
            ("altId".to_owned(), location.to_owned()),
            ("altType".to_owned(), "location".to_owned()),
            ("locationId".to_owned(), location.to_owned()),
        ],
        body: Body::Empty,
        location: Some(location.to_owned()),
    }
}

impl HighLevelClient {
    /// Registers (or re-registers: HighLevel keeps one per location and app) the custom provider.
    pub async fn create_provider<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        p: &NewProvider,
    ) -> Result<Value, HlError> {
        let body = Body::Json(serde_json::to_value(p).unwrap_or_default());
        self.call(s, &call_of(&ep::PROVIDER_CREATE, location, body))
            .await?
            .json()
    }

    pub async fn delete_provider<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
    ) -> Result<(), HlError> {
        self.call(s, &call_of(&ep::PROVIDER_DELETE, location, Body::Empty))
            .await
            .map(|_| ())
    }

    pub async fn connect_provider<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        keys: &ConnectKeys,
    ) -> Result<Value, HlError> {
        let body = Body::Json(serde_json::to_value(keys).unwrap_or_default());
        self.call(s, &call_of(&ep::CONNECT_CREATE, location, body))
            .await?
            .json()
    }

    pub async fn provider_config<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
    ) -> Result<Value, HlError> {
        self.call(s, &call_of(&ep::CONNECT_GET, location, Body::Empty))
            .await?
            .json()
    }

    /// Reports a payment event; `event` must carry `apiKey`, `locationId` and `event`.
    pub async fn report_provider_event(&self, event: &Value) -> Result<(), HlError> {
        self.post_unauthenticated("custom_provider.webhook", PROVIDER_WEBHOOK_PATH, event)
            .await
    }

    /// HighLevel's record of a transaction of the location.
    pub async fn transaction<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<PaymentRecord, HlError> {
        self.call(
            s,
            &record_of(&ep::TRANSACTION_GET, "{transactionId}", id, location),
        )
        .await?
        .json()
    }

    /// HighLevel's record of an order of the location.
    pub async fn order<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<PaymentRecord, HlError> {
        self.call(s, &record_of(&ep::ORDER_GET, "{orderId}", id, location))
            .await?
            .json()
    }

    /// HighLevel's record of a subscription of the location.
    pub async fn subscription<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<SubscriptionRecord, HlError> {
        self.call(
            s,
            &record_of(&ep::SUBSCRIPTION_GET, "{subscriptionId}", id, location),
        )
        .await?
        .json()
    }

    /// Tells HighLevel whether the provider schedules (renews) subscriptions itself for the location
    /// (`PUT /payments/custom-provider/capabilities {supportsSubscriptionSchedules, locationId}`).
    pub async fn provider_capabilities<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        supports_subscription_schedules: bool,
    ) -> Result<(), HlError> {
        let body = Body::Json(serde_json::json!({
            "supportsSubscriptionSchedules": supports_subscription_schedules,
            "locationId": location,
        }));
        self.call(s, &call_of(&ep::CAPABILITIES, location, body))
            .await
            .map(|_| ())
    }

    pub async fn disconnect_provider<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        live_mode: bool,
    ) -> Result<(), HlError> {
        let body = Body::Json(serde_json::json!({ "liveMode": live_mode }));
        self.call(s, &call_of(&ep::DISCONNECT, location, body))
            .await
            .map(|_| ())
    }
}
