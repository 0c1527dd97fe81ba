//! `/api/locations/{locationId}/products[/{productId}]`: list, composite create (with `Idempotency-Key`),
//! get, update, delete.

use super::bodies::{Paging, ProductInput, ProductListOut, ProductOut, ProductUpdate};
use super::{id, idempotency_key, Located, State};
use crate::error::ApiError;
use crate::store::{self, idempotency::Claim, now_ms};
use actix_web::{web, HttpRequest, HttpResponse};
use highlevel_client::resources::products::{ListQuery, NewProduct};
use shared_types::Problem;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/locations/{locationId}/products")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/locations/{locationId}/products/{productId}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    );
}

/// List products of a location.
#[utoipa::path(get, path = "/api/locations/{locationId}/products", operation_id = "listProducts", tag = "products",
    params(("locationId" = String, Path), Paging),
    responses((status = 200, body = ProductListOut), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    at: Located,
    state: State,
    path: web::Path<String>,
    q: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let (limit, offset) = q.checked()?;
    let tokens = at.tokens(&state);
    let query = ListQuery {
        limit: Some(limit),
        offset: Some(offset),
        search: q.search.clone(),
    };
    let list = state.hl.list_products(&tokens, &location, &query).await?;
    let total = list.total();
    Ok(HttpResponse::Ok().json(ProductListOut {
        products: list.products.into_iter().map(ProductOut::from).collect(),
        total,
        limit,
        offset,
    }))
}

/// Create a product with its images and prices, all or nothing. Safe to retry with `Idempotency-Key`.
#[utoipa::path(post, path = "/api/locations/{locationId}/products", operation_id = "createProduct", tag = "products",
    params(("locationId" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "same key + same body → the first answer")),
    request_body = ProductInput,
    responses((status = 201, body = ProductOut), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    at: Located,
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    body: web::Json<ProductInput>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let input = body.into_inner();
    let images = input.validate()?;
    let tokens = at.tokens(&state);
    let key = idempotency_key(&req)?;
    let mut retry_of = None;
    // While this request runs, its key is leased to this instance and the lease renewed; a crash stops the
    // renewals and lets a retry take the key over once the lease has run out.
    let mut _lease = None;
    if let Some(key) = &key {
        let hash = request_hash(&input);
        let (l, k, leases) = (location.clone(), key.clone(), state.leases.clone());
        let claim = state
            .db
            .run(move |c| {
                let now = now_ms();
                store::idempotency::claim_held(c, &l, &k, &hash, leases.holder(now), now)
            })
            .await?;
        match claim {
            Claim::Run { retry_of: earlier } => {
                retry_of = earlier;
                _lease = Some(state.leases.hold(&state.db, &location, key));
            }
            Claim::Replay { status, body } => {
                state.metrics.idempotent_replays.inc();
                let mut res = HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(status)
                        .unwrap_or(actix_web::http::StatusCode::OK),
                );
                res.insert_header(("Idempotent-Replayed", "true"));
                if status >= 400 {
                    res.content_type(Problem::CONTENT_TYPE);
                } else {
                    res.content_type("application/json");
                }
                return Ok(res.body(body));
            }
            Claim::Mismatch => return Err(ApiError::IdempotencyKeyReused),
            Claim::InProgress => return Err(ApiError::IdempotencyInProgress),
        }
    }
    let result =
        crate::products::create::create(&state.hl, &tokens, &location, &input, &images, retry_of)
            .await;
    let Some(key) = key else {
        return result.map(|p| HttpResponse::Created().json(p));
    };
    // Keep the answer for a repeat: successes and refusals are final; transient failures release the key.
    let (status, text, out) = match result {
        Ok(p) => (201, serde_json::to_string(&p).unwrap_or_default(), Ok(p)),
        Err(e) => {
            let p = e.problem();
            (
                p.status,
                serde_json::to_string(&p).unwrap_or_default(),
                Err(e),
            )
        }
    };
    // HighLevel may have acted: the record must survive a short database outage, or a retry after it would
    // find the key stale and create the product again. Only the lease's holder writes the outcome: a key taken
    // over by another instance (this one stopped renewing for longer than the lease) is answered by it.
    drop(_lease);
    let (l, k, owner) = (location.clone(), key.clone(), state.leases.owner.clone());
    let within = std::time::Duration::from_secs(30);
    let kept = if status < 500 && status != 429 {
        let at = now_ms();
        state
            .db
            .run_until_reachable(within, move |c| {
                store::idempotency::complete_held(c, &l, &k, &owner, status, &text, at)
            })
            .await?
    } else {
        state
            .db
            .run_until_reachable(within, move |c| {
                store::idempotency::release_held(c, &l, &k, &owner, now_ms())
            })
            .await?
    };
    if !kept {
        tracing::warn!(location, key, "the Idempotency-Key was taken over by another instance while this request ran; its outcome is that instance's to record");
    }
    out.map(|p| HttpResponse::Created().json(p))
}

/// The body's hash, over its canonical JSON (keys sorted), so formatting does not count as a change.
fn request_hash(input: &ProductInput) -> String {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::to_value(input)
        .map(|v| v.to_string())
        .unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// One product.
#[utoipa::path(get, path = "/api/locations/{locationId}/products/{productId}", operation_id = "getProduct", tag = "products",
    params(("locationId" = String, Path), ("productId" = String, Path)),
    responses((status = 200, body = ProductOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn get(
    at: Located,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (location, product) = path.into_inner();
    id("product id", &product)?;
    let tokens = at.tokens(&state);
    let p = state.hl.get_product(&tokens, &location, &product).await?;
    Ok(HttpResponse::Ok().json(ProductOut::from(p)))
}

/// Replace a product's fields.
#[utoipa::path(put, path = "/api/locations/{locationId}/products/{productId}", operation_id = "updateProduct", tag = "products",
    params(("locationId" = String, Path), ("productId" = String, Path)), request_body = ProductUpdate,
    responses((status = 200, body = ProductOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn update(
    at: Located,
    state: State,
    path: web::Path<(String, String)>,
    body: web::Json<ProductUpdate>,
) -> Result<HttpResponse, ApiError> {
    let (location, product) = path.into_inner();
    id("product id", &product)?;
    body.validate()?;
    let tokens = at.tokens(&state);
    let u = body.into_inner();
    let new = NewProduct {
        name: u.name,
        location_id: location.clone(),
        product_type: u.product_type,
        description: u.description,
        image: u.image,
        available_in_store: u.available_in_store,
        medias: Vec::new(),
    };
    let p = state.hl.update_product(&tokens, &product, &new).await?;
    Ok(HttpResponse::Ok().json(ProductOut::from(p)))
}

/// Delete a product (and its prices).
#[utoipa::path(delete, path = "/api/locations/{locationId}/products/{productId}", operation_id = "deleteProduct", tag = "products",
    params(("locationId" = String, Path), ("productId" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    at: Located,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (location, product) = path.into_inner();
    id("product id", &product)?;
    let tokens = at.tokens(&state);
    state
        .hl
        .delete_product(&tokens, &location, &product)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
