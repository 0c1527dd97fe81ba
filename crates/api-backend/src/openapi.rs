//! `GET /openapi.json`, generated from the route annotations and the body types.

use crate::api;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "api-backend", description = "Products, prices, media and the payments custom provider of a HighLevel marketplace app, with HighLevel's refusals explained."),
    paths(
        api::sessions::open,
        api::products::list, api::products::create, api::products::get, api::products::update, api::products::delete,
        api::prices::list, api::prices::create, api::prices::get, api::prices::update, api::prices::delete,
        api::media::list, api::media::upload, api::media::delete,
        api::provider::put, api::provider::get, api::provider::delete,
        api::diagnostics::diagnostics,
        service_common::ops::healthz, service_common::ops::readyz, service_common::ops::metrics, api::ops::openapi,
        api::payments::query::query,
        api::payments::page::page, api::payments::page::page_js, api::payments::page::page_css,
        api::payments::page::check, api::payments::page::charge, api::payments::page::setup, api::payments::page::status,
        api::payments::page::paytr_checkout, api::payments::page::paytr_setup,
        api::payments::page::subscribe, api::payments::page::paytr_subscribe, api::payments::page::paytr_subscription_status,
        api::payments::paytr_callback::receive,
        api::proxy::location_call, api::proxy::company_call,
    ),
    components(schemas(shared_types::Problem, shared_types::Diagnosis, shared_types::Cause)),
    modifiers(&Bearer, &AnyMethod)
)]
struct Doc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some("A session token from POST /api/sessions, or a service JWT signed with SERVICE_JWT_SECRET"))
                        .build(),
                ),
            );
        }
    }
}

/// The proxy routes take every method HighLevel's API uses: the documented `post` is copied to the others, each
/// with an operationId of its own (`proxyLocationGet`, …); `get` and `delete` carry no body.
struct AnyMethod;

impl Modify for AnyMethod {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::HttpMethod;
        for item in openapi.paths.paths.values_mut() {
            let Some(post) = item.post.clone() else {
                continue;
            };
            let Some(id) = post
                .operation_id
                .clone()
                .filter(|id| id.starts_with("proxy"))
            else {
                continue;
            };
            for (method, name, body) in [
                (HttpMethod::Get, "Get", false),
                (HttpMethod::Put, "Put", true),
                (HttpMethod::Patch, "Patch", true),
                (HttpMethod::Delete, "Delete", false),
            ] {
                let mut op = post.clone();
                op.operation_id = Some(format!("{id}{name}"));
                if !body {
                    op.request_body = None;
                }
                match method {
                    HttpMethod::Get => item.get = Some(op),
                    HttpMethod::Put => item.put = Some(op),
                    HttpMethod::Patch => item.patch = Some(op),
                    _ => item.delete = Some(op),
                }
            }
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

#[cfg(test)]
mod tests {
    /// OpenAPI wants every operationId unique; generated clients (openapi-typescript's `operations`) key on it.
    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                    if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                        panic!("operationId `{id}` is used by {other} and {method} {path}: give one an operation_id");
                    }
                }
            }
        }
    }
}
