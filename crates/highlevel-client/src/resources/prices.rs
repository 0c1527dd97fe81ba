//! Prices (products.json): `POST|GET /products/{productId}/price`, `GET|PUT|DELETE …/price/{priceId}`.
//! Amounts are decimal major units (99.99, not cents).

use super::{paging, path, request};
use crate::client::{Body, HighLevelClient, TokenSource};
use crate::endpoints as ep;
use crate::error::HlError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceType {
    OneTime,
    Recurring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

/// RecurringDto: required `interval`, `intervalCount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recurring {
    pub interval: Interval,
    pub interval_count: u32,
}

/// CreatePriceDto: required `name`, `type`, `currency`, `amount`, `locationId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPrice {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PriceType,
    pub currency: String,
    pub amount: f64,
    pub location_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring: Option<Recurring>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_at_price: Option<f64>,
}

/// DefaultPriceResponseDto.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PriceType,
    pub currency: String,
    pub amount: f64,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub location_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub compare_at_price: Option<f64>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PriceList {
    pub prices: Vec<Price>,
    #[serde(default)]
    pub total: Option<u64>,
}

impl HighLevelClient {
    pub async fn create_price<S: TokenSource>(
        &self,
        s: &S,
        product_id: &str,
        p: &NewPrice,
    ) -> Result<Price, HlError> {
        let path = path(&ep::PRICES_CREATE, &[("productId", product_id)]);
        let body = Body::Json(serde_json::to_value(p).unwrap_or_default());
        let req = request(&ep::PRICES_CREATE, path, vec![], body, &p.location_id);
        self.call(s, &req).await?.json()
    }

    pub async fn list_prices<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        product_id: &str,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<PriceList, HlError> {
        let path = path(&ep::PRICES_LIST, &[("productId", product_id)]);
        let mut query = vec![("locationId", location.to_owned())];
        paging(&mut query, limit, offset);
        let req = request(&ep::PRICES_LIST, path, query, Body::Empty, location);
        self.call(s, &req).await?.json()
    }

    pub async fn get_price<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        product_id: &str,
        price_id: &str,
    ) -> Result<Price, HlError> {
        let path = path(
            &ep::PRICES_GET,
            &[("productId", product_id), ("priceId", price_id)],
        );
        let req = request(
            &ep::PRICES_GET,
            path,
            vec![("locationId", location.to_owned())],
            Body::Empty,
            location,
        );
        self.call(s, &req).await?.json()
    }

    pub async fn update_price<S: TokenSource>(
        &self,
        s: &S,
        product_id: &str,
        price_id: &str,
        p: &NewPrice,
    ) -> Result<Price, HlError> {
        let path = path(
            &ep::PRICES_UPDATE,
            &[("productId", product_id), ("priceId", price_id)],
        );
        let body = Body::Json(serde_json::to_value(p).unwrap_or_default());
        let req = request(&ep::PRICES_UPDATE, path, vec![], body, &p.location_id);
        self.call(s, &req).await?.json()
    }

    pub async fn delete_price<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        product_id: &str,
        price_id: &str,
    ) -> Result<(), HlError> {
        let path = path(
            &ep::PRICES_DELETE,
            &[("productId", product_id), ("priceId", price_id)],
        );
        let req = request(
            &ep::PRICES_DELETE,
            path,
            vec![("locationId", location.to_owned())],
            Body::Empty,
            location,
        );
        self.call(s, &req).await.map(|_| ())
    }
}
