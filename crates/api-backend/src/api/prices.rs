//! `/api/locations/{locationId}/products/{productId}/prices[/{priceId}]`: list, create, get, update, delete.

use super::bodies::{PriceInput, PriceListOut, PriceOut};
use super::{id, Located, State};
use crate::error::ApiError;
use actix_web::{web, HttpResponse};
use shared_types::Problem;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/locations/{locationId}/products/{productId}/prices")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/locations/{locationId}/products/{productId}/prices/{priceId}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    );
}

/// Prices of a product.
#[utoipa::path(get, path = "/api/locations/{locationId}/products/{productId}/prices", operation_id = "listPrices", tag = "prices",
    params(("locationId" = String, Path), ("productId" = String, Path)),
    responses((status = 200, body = PriceListOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list(
    at: Located,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (location, product) = path.into_inner();
    id("product id", &product)?;
    let tokens = at.tokens(&state);
    let list = state
        .hl
        .list_prices(&tokens, &location, &product, Some(100), None)
        .await?;
    let total = list.total.unwrap_or(list.prices.len() as u64);
    Ok(HttpResponse::Ok().json(PriceListOut {
        prices: list.prices.into_iter().map(PriceOut::from).collect(),
        total,
    }))
}

/// Add a price to a product.
#[utoipa::path(post, path = "/api/locations/{locationId}/products/{productId}/prices", operation_id = "createPrice", tag = "prices",
    params(("locationId" = String, Path), ("productId" = String, Path)), request_body = PriceInput,
    responses((status = 201, body = PriceOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn create(
    at: Located,
    state: State,
    path: web::Path<(String, String)>,
    body: web::Json<PriceInput>,
) -> Result<HttpResponse, ApiError> {
    let (location, product) = path.into_inner();
    id("product id", &product)?;
    body.validate("")?;
    let tokens = at.tokens(&state);
    let p = state
        .hl
        .create_price(&tokens, &product, &body.to_highlevel(&location))
        .await?;
    Ok(HttpResponse::Created().json(PriceOut::from(p)))
}

/// One price.
#[utoipa::path(get, path = "/api/locations/{locationId}/products/{productId}/prices/{priceId}", operation_id = "getPrice", tag = "prices",
    params(("locationId" = String, Path), ("productId" = String, Path), ("priceId" = String, Path)),
    responses((status = 200, body = PriceOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn get(
    at: Located,
    state: State,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (location, product, price) = path.into_inner();
    id("product id", &product)?;
    id("price id", &price)?;
    let tokens = at.tokens(&state);
    let p = state
        .hl
        .get_price(&tokens, &location, &product, &price)
        .await?;
    Ok(HttpResponse::Ok().json(PriceOut::from(p)))
}

/// Replace a price's fields.
#[utoipa::path(put, path = "/api/locations/{locationId}/products/{productId}/prices/{priceId}", operation_id = "updatePrice", tag = "prices",
    params(("locationId" = String, Path), ("productId" = String, Path), ("priceId" = String, Path)), request_body = PriceInput,
    responses((status = 200, body = PriceOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn update(
    at: Located,
    state: State,
    path: web::Path<(String, String, String)>,
    body: web::Json<PriceInput>,
) -> Result<HttpResponse, ApiError> {
    let (location, product, price) = path.into_inner();
    id("product id", &product)?;
    id("price id", &price)?;
    body.validate("")?;
    let tokens = at.tokens(&state);
    let p = state
        .hl
        .update_price(&tokens, &product, &price, &body.to_highlevel(&location))
        .await?;
    Ok(HttpResponse::Ok().json(PriceOut::from(p)))
}

/// Delete a price.
#[utoipa::path(delete, path = "/api/locations/{locationId}/products/{productId}/prices/{priceId}", operation_id = "deletePrice", tag = "prices",
    params(("locationId" = String, Path), ("productId" = String, Path), ("priceId" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    at: Located,
    state: State,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (location, product, price) = path.into_inner();
    id("product id", &product)?;
    id("price id", &price)?;
    let tokens = at.tokens(&state);
    state
        .hl
        .delete_price(&tokens, &location, &product, &price)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
