//! Products and their prices (products.json): ids as `_id`, list totals as `[{"total": N}]`,
//! prices in decimal major units.

use crate::access::{self, authorize};
use crate::errors::{HlError, HlResult};
use crate::routes::{
    merge_update, page, query, remove_by_id, require_version, required_params, stamp_new,
};
use crate::state::Sim;
use crate::validate::{json_object, Check};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

const PRODUCT_TYPES: &[&str] = &["DIGITAL", "PHYSICAL", "SERVICE", "PHYSICAL/DIGITAL"];
const PRICE_TYPES: &[&str] = &["one_time", "recurring"];
const INTERVALS: &[&str] = &["day", "month", "week", "year"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/products/", "/products"])
            .route(web::post().to(create_product))
            .route(web::get().to(list_products)),
    )
    .service(
        web::resource("/products/{productId}")
            .route(web::get().to(get_product))
            .route(web::put().to(update_product))
            .route(web::delete().to(delete_product)),
    )
    .service(
        web::resource("/products/{productId}/price")
            .route(web::post().to(create_price))
            .route(web::get().to(list_prices)),
    )
    .service(
        web::resource("/products/{productId}/price/{priceId}")
            .route(web::get().to(get_price))
            .route(web::put().to(update_price))
            .route(web::delete().to(delete_price)),
    );
}

fn product_not_found() -> HlError {
    HlError::not_found("Product not found")
}

fn check_product(body: &Value) -> HlResult<()> {
    Check::new(body)
        .string("name", true)
        .string("locationId", true)
        .one_of("productType", PRODUCT_TYPES, true)
        .string("description", false)
        .string("image", false)
        .boolean("availableInStore", false)
        .array("medias")
        .array("variants")
        .finish()
}

fn body_location(body: &Value) -> Option<&str> {
    body.get("locationId").and_then(Value::as_str)
}

async fn create_product(
    req: HttpRequest,
    sim: web::Data<Sim>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let body = json_object(&body)?;
    authorize(&req, &access::PRODUCTS_CREATE, body_location(&body))?;
    check_product(&body)?;
    let mut product = body.clone();
    stamp_new(&mut product);
    if product.get("availableInStore").is_none() {
        product["availableInStore"] = json!(false);
    }
    let location = body_location(&body).unwrap_or_default().to_owned();
    sim.world()
        .products
        .entry(location)
        .or_default()
        .push(product.clone());
    Ok(HttpResponse::Created().json(product))
}

async fn list_products(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::PRODUCTS_LIST,
        q.get("locationId").map(String::as_str),
    )?;
    required_params(&q, &["locationId"])?;
    let search = q.get("search").map(|s| s.to_lowercase());
    let world = sim.world_read();
    let all = world
        .products
        .get(&q["locationId"])
        .map(Vec::as_slice)
        .unwrap_or_default();
    let hits: Vec<&Value> = all
        .iter()
        .filter(|p| {
            search.as_ref().is_none_or(|s| {
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.to_lowercase().contains(s.as_str()))
            })
        })
        .collect();
    // Serialised from borrowed products: a list answer copies nothing.
    #[derive(serde::Serialize)]
    struct Total {
        total: usize,
    }
    #[derive(serde::Serialize)]
    struct List<'a> {
        products: Vec<&'a Value>,
        total: [Total; 1],
    }
    let total = hits.len();
    let body = serde_json::to_vec(&List {
        products: page(&hits, &q, 100),
        total: [Total { total }],
    })
    .map_err(|_| HlError::bad_request("unserializable product"))?;
    drop(world);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

fn find_product<'a>(list: Option<&'a mut Vec<Value>>, id: &str) -> HlResult<&'a mut Value> {
    list.and_then(|l| l.iter_mut().find(|p| p["_id"] == id))
        .ok_or_else(product_not_found)
}

async fn get_product(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::PRODUCTS_GET,
        q.get("locationId").map(String::as_str),
    )?;
    required_params(&q, &["locationId"])?;
    let mut world = sim.world();
    let p = find_product(world.products.get_mut(&q["locationId"]), &path)?;
    Ok(HttpResponse::Ok().json(&*p))
}

async fn update_product(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let body = json_object(&body)?;
    authorize(&req, &access::PRODUCTS_UPDATE, body_location(&body))?;
    check_product(&body)?;
    let location = body_location(&body).unwrap_or_default().to_owned();
    let mut world = sim.world();
    let p = find_product(world.products.get_mut(&location), &path)?;
    merge_update(p, body, &[]);
    Ok(HttpResponse::Ok().json(&*p))
}

async fn delete_product(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::PRODUCTS_DELETE,
        q.get("locationId").map(String::as_str),
    )?;
    required_params(&q, &["locationId"])?;
    let mut world = sim.world();
    let list = world
        .products
        .get_mut(&q["locationId"])
        .ok_or_else(product_not_found)?;
    if !remove_by_id(list, &path) {
        return Err(product_not_found());
    }
    world.prices.remove(path.as_str());
    Ok(HttpResponse::Ok().json(json!({"status": true})))
}

fn check_price(body: &Value) -> HlResult<()> {
    let recurring = body.get("type").and_then(Value::as_str) == Some("recurring");
    Check::new(body)
        .string("name", true)
        .one_of("type", PRICE_TYPES, true)
        .string("currency", true)
        .number("amount", true)
        .string("locationId", true)
        .object("recurring", recurring, |c| {
            c.one_of("interval", INTERVALS, true)
                .number("intervalCount", true)
        })
        .number("compareAtPrice", false)
        .finish()
}

fn product_exists(sim: &Sim, location: &str, product_id: &str) -> HlResult<()> {
    let world = sim.world();
    let found = world
        .products
        .get(location)
        .is_some_and(|l| l.iter().any(|p| p["_id"] == product_id));
    if found {
        Ok(())
    } else {
        Err(product_not_found())
    }
}

async fn create_price(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let body = json_object(&body)?;
    authorize(&req, &access::PRICES_CREATE, body_location(&body))?;
    check_price(&body)?;
    let location = body_location(&body).unwrap_or_default();
    product_exists(&sim, location, &path)?;
    let mut price = body.clone();
    stamp_new(&mut price);
    price["product"] = json!(path.as_str());
    sim.world()
        .prices
        .entry(path.into_inner())
        .or_default()
        .push(price.clone());
    Ok(HttpResponse::Created().json(price))
}

async fn list_prices(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::PRICES_LIST,
        q.get("locationId").map(String::as_str),
    )?;
    required_params(&q, &["locationId"])?;
    product_exists(&sim, &q["locationId"], &path)?;
    let world = sim.world();
    let all = world
        .prices
        .get(path.as_str())
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({"prices": page(all, &q, 100), "total": all.len()})))
}

fn price_not_found() -> HlError {
    HlError::not_found("Price not found")
}

async fn get_price(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<(String, String)>,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::PRICES_GET,
        q.get("locationId").map(String::as_str),
    )?;
    required_params(&q, &["locationId"])?;
    let (product_id, price_id) = path.into_inner();
    product_exists(&sim, &q["locationId"], &product_id)?;
    let world = sim.world();
    let price = world
        .prices
        .get(&product_id)
        .and_then(|l| l.iter().find(|p| p["_id"] == price_id.as_str()))
        .ok_or_else(price_not_found)?;
    Ok(HttpResponse::Ok().json(price))
}

async fn update_price(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let body = json_object(&body)?;
    authorize(&req, &access::PRICES_UPDATE, body_location(&body))?;
    check_price(&body)?;
    let (product_id, price_id) = path.into_inner();
    product_exists(&sim, body_location(&body).unwrap_or_default(), &product_id)?;
    let mut world = sim.world();
    let price = world
        .prices
        .get_mut(&product_id)
        .and_then(|l| l.iter_mut().find(|p| p["_id"] == price_id.as_str()))
        .ok_or_else(price_not_found)?;
    merge_update(price, body, &["product"]);
    Ok(HttpResponse::Ok().json(&*price))
}

async fn delete_price(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<(String, String)>,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::PRICES_DELETE,
        q.get("locationId").map(String::as_str),
    )?;
    required_params(&q, &["locationId"])?;
    let (product_id, price_id) = path.into_inner();
    product_exists(&sim, &q["locationId"], &product_id)?;
    let mut world = sim.world();
    let list = world
        .prices
        .get_mut(&product_id)
        .ok_or_else(price_not_found)?;
    if !remove_by_id(list, &price_id) {
        return Err(price_not_found());
    }
    Ok(HttpResponse::Ok().json(json!({"status": true})))
}
