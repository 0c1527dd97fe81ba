//! `GET /openapi.json`, generated from the route annotations.

use crate::api;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "oauth-backend", description = "The token service of a HighLevel marketplace app: installs, sealed tokens refreshed exactly once, Location tokens, HighLevel's webhooks verified, acted on and forwarded to the app."),
    paths(
        api::install::install, api::install::callback,
        api::installations::list, api::installations::get, api::installations::uninstall,
        api::token_access::get_token, api::token_access::refresh,
        api::webhooks::receive,
        api::webhook_deliveries::list, api::webhook_deliveries::replay,
        service_common::ops::healthz, service_common::ops::readyz, service_common::ops::metrics, api::ops::openapi,
    ),
    components(schemas(shared_types::Problem, shared_types::Diagnosis, shared_types::Cause)),
    modifiers(&ServiceJwt)
)]
struct Doc;

struct ServiceJwt;

impl Modify for ServiceJwt {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "service_jwt",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some("An HS256 service JWT signed with SERVICE_JWT_SECRET, aud `oauth-backend` (`oauth-backend service-token`)"))
                        .build(),
                ),
            );
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
