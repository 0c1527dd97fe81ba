//! The composite create: images → media, the product with those media, its prices. All or nothing: a
//! failure removes what this request made and says what it could not remove.
//!
//! A create is never sent twice blindly. When HighLevel may have acted but its answer was lost (a 5xx or a
//! dropped connection after sending), the workflow first looks for what the call would have made (a product
//! with this name and type created since the request began; a price with this name, amount and currency; a
//! hosted file with this URL) and adopts it. Two concurrent requests creating identically named products in
//! the same second could adopt each other's product: callers that need more use `Idempotency-Key`.
//!
//! A retry with an `Idempotency-Key` whose earlier attempt failed (`retry_of`) looks first, before creating
//! anything, for the product and prices that attempt may have left (its answer lost, its lookup failed, or
//! its rollback could not finish) and adopts them.

use crate::api::bodies::{ImageRef, MediaRef, PriceOut, ProductInput, ProductOut};
use crate::bridge::Tokens;
use crate::error::ApiError;
use highlevel_client::resources::medias::Upload;
use highlevel_client::resources::prices::{NewPrice, Price};
use highlevel_client::resources::products::{
    ListQuery, MediaType, NewProduct, Product, ProductMedia,
};
use highlevel_client::{HighLevelClient, HlError};

/// When this attempt began, and when an earlier attempt with the same idempotency key did (if any).
struct When {
    started: chrono::DateTime<chrono::Utc>,
    earlier: Option<chrono::DateTime<chrono::Utc>>,
}

/// What this request has made so far, for the rollback.
#[derive(Debug, Default)]
struct Made {
    medias: Vec<String>,
    product: Option<String>,
    prices: Vec<String>,
}

pub async fn create(
    hl: &HighLevelClient,
    tokens: &Tokens,
    location: &str,
    input: &ProductInput,
    images: &[ImageRef],
    retry_of: Option<i64>,
) -> Result<ProductOut, ApiError> {
    let started = chrono::Utc::now();
    let earlier = retry_of.and_then(chrono::DateTime::from_timestamp_millis);
    let mut made = Made::default();
    let when = When { started, earlier };
    match run(hl, tokens, location, input, images, &when, &mut made).await {
        Ok(out) => Ok(out),
        Err(cause) => {
            let leftovers = rollback(hl, tokens, location, &made).await;
            tracing::warn!(location, error = %cause, ?leftovers, "composite product create failed; rolled back");
            if made.medias.is_empty() && made.product.is_none() {
                // Nothing was made: the cause itself is the answer.
                return Err(cause);
            }
            Err(ApiError::RolledBack {
                detail: if leftovers.is_empty() {
                    format!("the product was not created ({cause}); everything made on the way was removed")
                } else {
                    format!("the product was not created ({cause}); {} resource(s) could not be removed", leftovers.len())
                },
                cause: Box::new(cause),
                leftovers,
            })
        }
    }
}

async fn run(
    hl: &HighLevelClient,
    tokens: &Tokens,
    location: &str,
    input: &ProductInput,
    images: &[ImageRef],
    when: &When,
    made: &mut Made,
) -> Result<ProductOut, ApiError> {
    let (started, earlier) = (when.started, when.earlier);
    // Media ids are checked before anything is made.
    let mut library = None;
    for img in images {
        if let ImageRef::Media(id) = img {
            if library.is_none() {
                library = Some(
                    hl.list_media(tokens, location, Some(100), None)
                        .await?
                        .files,
                );
            }
            if !library.iter().flatten().any(|f| &f.id == id) {
                return Err(ApiError::Validation(format!(
                    "media `{id}` is not in this location's media library"
                )));
            }
        }
    }
    let mut medias = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let (id, url) = match img {
            ImageRef::Media(id) => {
                let url = library
                    .iter()
                    .flatten()
                    .find(|f| &f.id == id)
                    .and_then(|f| f.url.clone())
                    .unwrap_or_default();
                (id.clone(), url)
            }
            ImageRef::Url(url) => {
                let up = match hl
                    .upload_media(tokens, location, &Upload::Url(url.clone()), None)
                    .await
                {
                    Ok(up) => (up.file_id, up.url),
                    Err(HlError::Unavailable {
                        maybe_applied: true,
                        ..
                    }) => {
                        let files = hl
                            .list_media(tokens, location, Some(100), None)
                            .await?
                            .files;
                        let found = files
                            .into_iter()
                            .find(|f| {
                                f.url.as_deref() == Some(url.as_str())
                                    && !made.medias.contains(&f.id)
                            })
                            .ok_or_else(|| HlError::Unavailable {
                                reason: format!(
                                    "uploading {url} failed and no such file is in the library"
                                ),
                                maybe_applied: false,
                            })?;
                        tracing::info!(location, media = %found.id, "adopted a media upload whose answer was lost");
                        (found.id, found.url.unwrap_or_else(|| url.clone()))
                    }
                    Err(e) => return Err(e.into()),
                };
                made.medias.push(up.0.clone());
                up
            }
        };
        medias.push(ProductMedia {
            id,
            url,
            kind: MediaType::Image,
            title: None,
            is_featured: Some(i == 0),
        });
    }
    let new = NewProduct {
        name: input.name.clone(),
        location_id: location.to_owned(),
        product_type: input.product_type,
        description: input.description.clone(),
        image: medias.first().map(|m| m.url.clone()),
        available_in_store: input.available_in_store,
        medias,
    };
    let adopted = match earlier {
        Some(since) => find_product(hl, tokens, &new, since).await?,
        None => None,
    };
    if let Some(p) = &adopted {
        tracing::info!(location, product = %p.id, "retry: adopted the product an earlier attempt made");
    }
    let product = match adopted {
        Some(p) => p,
        None => match hl.create_product(tokens, &new).await {
            Ok(p) => p,
            Err(HlError::Unavailable {
                maybe_applied: true,
                reason,
            }) => {
                let p = second_look(|| find_product(hl, tokens, &new, started))
                    .await?
                    .ok_or_else(|| HlError::Unavailable {
                        reason: format!("{reason}; no product was made"),
                        maybe_applied: false,
                    })?;
                tracing::info!(location, product = %p.id, "adopted a product whose create answer was lost");
                p
            }
            Err(e) => return Err(e.into()),
        },
    };
    made.product = Some(product.id.clone());
    let mut prices = Vec::new();
    for p in &input.prices {
        let new_price = p.to_highlevel(location);
        let adopted = match earlier {
            Some(_) => {
                find_price(hl, tokens, location, &product.id, &new_price, &made.prices).await?
            }
            None => None,
        };
        let price = match adopted {
            Some(found) => found,
            None => match hl.create_price(tokens, &product.id, &new_price).await {
                Ok(price) => price,
                Err(HlError::Unavailable {
                    maybe_applied: true,
                    reason,
                }) => {
                    let found = second_look(|| {
                        find_price(hl, tokens, location, &product.id, &new_price, &made.prices)
                    })
                    .await?
                    .ok_or_else(|| HlError::Unavailable {
                        reason: format!("{reason}; no price was made"),
                        maybe_applied: false,
                    })?;
                    tracing::info!(location, price = %found.id, "adopted a price whose create answer was lost");
                    found
                }
                Err(e) => return Err(e.into()),
            },
        };
        made.prices.push(price.id.clone());
        prices.push(PriceOut::from(price));
    }
    let mut out = ProductOut::from(product);
    if out.medias.is_empty() {
        out.medias = new
            .medias
            .iter()
            .map(|m| MediaRef {
                id: m.id.clone(),
                url: m.url.clone(),
                kind: "image".into(),
            })
            .collect();
    }
    out.prices = Some(prices);
    Ok(out)
}

/// A request whose answer we gave up on (a timeout) may still be running at HighLevel: when the first look
/// finds nothing, look once more after this pause before concluding that nothing was made.
const SECOND_LOOK_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

async fn second_look<T, F, Fut>(look: F) -> Result<Option<T>, HlError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, HlError>>,
{
    if let Some(found) = look().await? {
        return Ok(Some(found));
    }
    tokio::time::sleep(SECOND_LOOK_AFTER).await;
    look().await
}

/// The product a lost create answer may have made.
async fn find_product(
    hl: &HighLevelClient,
    tokens: &Tokens,
    new: &NewProduct,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Product>, HlError> {
    let q = ListQuery {
        limit: Some(100),
        offset: None,
        search: Some(new.name.clone()),
    };
    let list = hl.list_products(tokens, &new.location_id, &q).await?;
    let type_name = serde_json::to_value(new.product_type).ok();
    // Clocks differ: allow a minute of skew between HighLevel's createdAt and ours.
    let earliest = since - chrono::Duration::seconds(60);
    Ok(list
        .products
        .into_iter()
        .filter(|p| {
            p.name == new.name
                && type_name.as_ref().and_then(|t| t.as_str()) == Some(p.product_type.as_str())
        })
        .filter(|p| {
            p.created_at
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .is_none_or(|c| c >= earliest)
        })
        .max_by(|a, b| a.created_at.cmp(&b.created_at)))
}

async fn find_price(
    hl: &HighLevelClient,
    tokens: &Tokens,
    location: &str,
    product: &str,
    new: &NewPrice,
    known: &[String],
) -> Result<Option<Price>, HlError> {
    let list = hl
        .list_prices(tokens, location, product, Some(100), None)
        .await?;
    Ok(list.prices.into_iter().find(|p| {
        !known.contains(&p.id)
            && p.name == new.name
            && p.currency == new.currency
            && (p.amount - new.amount).abs() < 1e-9
    }))
}

/// Removes what was made, newest first; answers what could not be removed.
async fn rollback(
    hl: &HighLevelClient,
    tokens: &Tokens,
    location: &str,
    made: &Made,
) -> Vec<String> {
    let mut leftovers = Vec::new();
    if let Some(product) = &made.product {
        for price in made.prices.iter().rev() {
            if let Err(e) = hl.delete_price(tokens, location, product, price).await {
                if !e.is_not_found() {
                    leftovers.push(format!("price {price} of product {product}: {e}"));
                }
            }
        }
        if let Err(e) = hl.delete_product(tokens, location, product).await {
            if !e.is_not_found() {
                leftovers.push(format!("product {product}: {e}"));
            }
        }
    }
    for media in made.medias.iter().rev() {
        if let Err(e) = hl.delete_media(tokens, location, media).await {
            if !e.is_not_found() {
                leftovers.push(format!("media {media}: {e}"));
            }
        }
    }
    leftovers
}
