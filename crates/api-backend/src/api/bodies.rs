//! The frontend API's JSON: camelCase, ids as `id`. Inputs refuse unknown fields (a typo is a 422, not a
//! silently ignored field) and are checked before anything is sent to HighLevel.

use crate::error::ApiError;
use highlevel_client::resources::{
    prices::{Interval, NewPrice, Price, PriceType, Recurring},
    products::{Product, ProductMedia, ProductType},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_IMAGES: usize = 10;
pub const MAX_PRICES: usize = 20;

fn text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.chars().count() > max {
        return Err(ApiError::Validation(format!(
            "`{field}` must be 1-{max} characters"
        )));
    }
    Ok(())
}

fn optional_text(field: &str, v: &Option<String>, max: usize) -> Result<(), ApiError> {
    match v {
        Some(v) if v.chars().count() > max => Err(ApiError::Validation(format!(
            "`{field}` must be at most {max} characters"
        ))),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecurringInput {
    #[schema(value_type = String, example = "month")]
    pub interval: Interval,
    pub interval_count: u32,
}

/// A price: `amount` in decimal major units (99.99, not cents).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceInput {
    pub name: String,
    /// `one_time` or `recurring`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "one_time")]
    pub kind: PriceType,
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
    pub amount: f64,
    #[serde(default)]
    pub recurring: Option<RecurringInput>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub compare_at_price: Option<f64>,
}

impl PriceInput {
    pub fn validate(&self, at: &str) -> Result<(), ApiError> {
        text(&format!("{at}name"), &self.name, 200)?;
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(ApiError::Validation(format!(
                "`{at}currency` must be a 3-letter ISO 4217 code such as USD"
            )));
        }
        if !self.amount.is_finite() || self.amount < 0.0 || self.amount > 1e9 {
            return Err(ApiError::Validation(format!(
                "`{at}amount` must be a number from 0 to 1e9, in major units (99.99, not cents)"
            )));
        }
        if self
            .compare_at_price
            .is_some_and(|c| !c.is_finite() || c < 0.0)
        {
            return Err(ApiError::Validation(format!(
                "`{at}compareAtPrice` must be a non-negative number"
            )));
        }
        match (self.kind, &self.recurring) {
            (PriceType::Recurring, None) => {
                return Err(ApiError::Validation(format!(
                    "`{at}recurring` {{interval, intervalCount}} is required for a recurring price"
                )))
            }
            (PriceType::OneTime, Some(_)) => {
                return Err(ApiError::Validation(format!(
                    "`{at}recurring` is only for `type: recurring`"
                )))
            }
            (_, Some(r)) if !(1..=365).contains(&r.interval_count) => {
                return Err(ApiError::Validation(format!(
                    "`{at}recurring.intervalCount` must be 1-365"
                )))
            }
            _ => {}
        }
        optional_text(&format!("{at}description"), &self.description, 2000)
    }

    pub fn to_highlevel(&self, location: &str) -> NewPrice {
        NewPrice {
            name: self.name.clone(),
            kind: self.kind,
            currency: self.currency.to_ascii_uppercase(),
            amount: self.amount,
            location_id: location.to_owned(),
            recurring: self.recurring.as_ref().map(|r| Recurring {
                interval: r.interval,
                interval_count: r.interval_count,
            }),
            description: self.description.clone(),
            compare_at_price: self.compare_at_price,
        }
    }
}

/// The composite create: images (URLs or media ids) become the product's media, then the product, then
/// its prices — all or nothing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    pub name: String,
    /// `DIGITAL`, `PHYSICAL`, `SERVICE` or `PHYSICAL/DIGITAL`.
    #[schema(value_type = String, example = "DIGITAL")]
    pub product_type: ProductType,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub available_in_store: Option<bool>,
    /// Up to 10: `https://…` URLs (uploaded to the media library) or ids of media already in it.
    #[serde(default)]
    pub images: Vec<String>,
    /// Up to 20 prices.
    #[serde(default)]
    pub prices: Vec<PriceInput>,
}

/// One image of a product create, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Url(String),
    Media(String),
}

impl ProductInput {
    pub fn validate(&self) -> Result<Vec<ImageRef>, ApiError> {
        text("name", &self.name, 200)?;
        optional_text("description", &self.description, 5000)?;
        if self.images.len() > MAX_IMAGES {
            return Err(ApiError::Validation(format!("at most {MAX_IMAGES} images")));
        }
        if self.prices.len() > MAX_PRICES {
            return Err(ApiError::Validation(format!("at most {MAX_PRICES} prices")));
        }
        for (i, p) in self.prices.iter().enumerate() {
            p.validate(&format!("prices[{i}]."))?;
        }
        self.images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                image_ref(img).map_err(|why| ApiError::Validation(format!("`images[{i}]`: {why}")))
            })
            .collect()
    }
}

/// A URL (http or https) or a HighLevel media id.
pub fn image_ref(s: &str) -> Result<ImageRef, String> {
    if s.starts_with("https://") || s.starts_with("http://") {
        let u = url::Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
        if u.host_str().is_none() || s.len() > 2048 {
            return Err("not a usable URL".into());
        }
        return Ok(ImageRef::Url(s.to_owned()));
    }
    shared_types::check_id("media id", s).map(|_| ImageRef::Media(s.to_owned()))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductUpdate {
    pub name: String,
    #[schema(value_type = String, example = "DIGITAL")]
    pub product_type: ProductType,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub available_in_store: Option<bool>,
    #[serde(default)]
    pub image: Option<String>,
}

impl ProductUpdate {
    pub fn validate(&self) -> Result<(), ApiError> {
        text("name", &self.name, 200)?;
        optional_text("description", &self.description, 5000)?;
        if let Some(i) = &self.image {
            match image_ref(i) {
                Ok(ImageRef::Url(_)) => {}
                _ => {
                    return Err(ApiError::Validation(
                        "`image` must be an http(s) URL".into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MediaRef {
    pub id: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PriceOut {
    pub id: String,
    pub product_id: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub currency: String,
    pub amount: f64,
    #[schema(value_type = Option<Object>)]
    pub recurring: Option<Recurring>,
    pub description: Option<String>,
    pub compare_at_price: Option<f64>,
    pub created_at: Option<String>,
}

impl From<Price> for PriceOut {
    fn from(p: Price) -> Self {
        PriceOut {
            id: p.id,
            product_id: p.product,
            name: p.name,
            kind: serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            currency: p.currency,
            amount: p.amount,
            recurring: p.recurring,
            description: p.description,
            compare_at_price: p.compare_at_price,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProductOut {
    pub id: String,
    pub location_id: String,
    pub name: String,
    pub product_type: String,
    pub description: Option<String>,
    pub image: Option<String>,
    pub available_in_store: Option<bool>,
    pub medias: Vec<MediaRef>,
    /// Present on a create: the prices made with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<Vec<PriceOut>>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<Product> for ProductOut {
    fn from(p: Product) -> Self {
        ProductOut {
            id: p.id,
            location_id: p.location_id,
            name: p.name,
            product_type: p.product_type,
            description: p.description,
            image: p.image,
            available_in_store: p.available_in_store,
            medias: p.medias.into_iter().map(media_ref).collect(),
            prices: None,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

fn media_ref(m: ProductMedia) -> MediaRef {
    MediaRef {
        id: m.id,
        url: m.url,
        kind: serde_json::to_value(m.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductListOut {
    pub products: Vec<ProductOut>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceListOut {
    pub prices: Vec<PriceOut>,
    pub total: u64,
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    /// 1-100 (default 20).
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// Products whose name contains this text.
    pub search: Option<String>,
}

impl Paging {
    pub fn checked(&self) -> Result<(u32, u32), ApiError> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::InvalidRequest("`limit` must be 1-100".into()));
        }
        if self.search.as_ref().is_some_and(|s| s.len() > 200) {
            return Err(ApiError::InvalidRequest(
                "`search` must be at most 200 characters".into(),
            ));
        }
        Ok((limit, self.offset.unwrap_or(0).min(1_000_000)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MediaOut {
    pub id: String,
    pub url: String,
    pub name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaListOut {
    pub files: Vec<MediaOut>,
}

/// `{"url"}` mode of the media upload: HighLevel fetches the file itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaUrlInput {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionInput {
    /// The encrypted user context HighLevel's parent window hands the app's page.
    pub sso: String,
}

impl std::fmt::Debug for SessionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInput")
            .field("sso", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOut {
    pub token: String,
    pub expires_at: String,
    pub company_id: String,
    pub location_id: Option<String>,
    pub user_id: String,
    pub role: Option<String>,
}

impl std::fmt::Debug for SessionOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOut")
            .field("token", &"<redacted>")
            .field("location_id", &self.location_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}
