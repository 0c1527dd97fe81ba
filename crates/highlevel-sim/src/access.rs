//! Who may call what: the simulator's own table of HighLevel's routes, the token class and scope each needs,
//! and the refusal a wrong token gets. Kept independent of the client crate's table on purpose: a mistake on
//! one side is caught by the other.

use crate::errors::{HlError, HlResult};
use crate::state::{AccessToken, TokenClass};
use actix_web::{HttpMessage, HttpRequest};

/// What a Company token gets on a Location-only route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyRefusal {
    /// 403 `Forbidden resource` — products and prices (first incident).
    ForbiddenResource,
    /// 401 `This authClass type is not allowed…` — every other Location-only route (second incident).
    AuthClass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassRule {
    LocationOnly(CompanyRefusal),
    CompanyOnly,
}

#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub method: &'static str,
    pub path: &'static str,
    pub class: ClassRule,
    pub scope: &'static str,
}

const fn loc(
    method: &'static str,
    path: &'static str,
    scope: &'static str,
    refusal: CompanyRefusal,
) -> Requirement {
    Requirement {
        method,
        path,
        class: ClassRule::LocationOnly(refusal),
        scope,
    }
}

use CompanyRefusal::{AuthClass as AC, ForbiddenResource as FR};

pub const PRODUCTS_CREATE: Requirement = loc("POST", "/products/", "products.write", FR);
pub const PRODUCTS_LIST: Requirement = loc("GET", "/products/", "products.readonly", FR);
pub const PRODUCTS_GET: Requirement = loc("GET", "/products/{productId}", "products.readonly", FR);
pub const PRODUCTS_UPDATE: Requirement = loc("PUT", "/products/{productId}", "products.write", FR);
pub const PRODUCTS_DELETE: Requirement =
    loc("DELETE", "/products/{productId}", "products.write", FR);
pub const PRICES_CREATE: Requirement = loc(
    "POST",
    "/products/{productId}/price",
    "products/prices.write",
    FR,
);
pub const PRICES_LIST: Requirement = loc(
    "GET",
    "/products/{productId}/price",
    "products/prices.readonly",
    FR,
);
pub const PRICES_GET: Requirement = loc(
    "GET",
    "/products/{productId}/price/{priceId}",
    "products/prices.readonly",
    FR,
);
pub const PRICES_UPDATE: Requirement = loc(
    "PUT",
    "/products/{productId}/price/{priceId}",
    "products/prices.write",
    FR,
);
pub const PRICES_DELETE: Requirement = loc(
    "DELETE",
    "/products/{productId}/price/{priceId}",
    "products/prices.write",
    FR,
);
pub const MEDIAS_UPLOAD: Requirement = loc("POST", "/medias/upload-file", "medias.write", AC);
pub const MEDIAS_LIST: Requirement = loc("GET", "/medias/files", "medias.readonly", AC);
pub const MEDIAS_DELETE: Requirement = loc("DELETE", "/medias/{id}", "medias.write", AC);
pub const PROVIDER_CREATE: Requirement = loc(
    "POST",
    "/payments/custom-provider/provider",
    "payments/custom-provider.write",
    AC,
);
pub const PROVIDER_DELETE: Requirement = loc(
    "DELETE",
    "/payments/custom-provider/provider",
    "payments/custom-provider.write",
    AC,
);
pub const CONNECT_GET: Requirement = loc(
    "GET",
    "/payments/custom-provider/connect",
    "payments/custom-provider.readonly",
    AC,
);
pub const CONNECT_CREATE: Requirement = loc(
    "POST",
    "/payments/custom-provider/connect",
    "payments/custom-provider.write",
    AC,
);
pub const DISCONNECT: Requirement = loc(
    "POST",
    "/payments/custom-provider/disconnect",
    "payments/custom-provider.write",
    AC,
);
pub const CAPABILITIES: Requirement = loc(
    "PUT",
    "/payments/custom-provider/capabilities",
    "payments/custom-provider.write",
    AC,
);
pub const WHITELABEL_CREATE: Requirement = loc(
    "POST",
    "/payments/integrations/provider/whitelabel",
    "payments/integration.write",
    AC,
);
pub const WHITELABEL_LIST: Requirement = loc(
    "GET",
    "/payments/integrations/provider/whitelabel",
    "payments/integration.readonly",
    AC,
);
pub const TRANSACTION_GET: Requirement = loc(
    "GET",
    "/payments/transactions/{transactionId}",
    "payments/transactions.readonly",
    AC,
);
pub const ORDER_GET: Requirement = loc(
    "GET",
    "/payments/orders/{orderId}",
    "payments/orders.readonly",
    AC,
);
pub const SUBSCRIPTION_GET: Requirement = loc(
    "GET",
    "/payments/subscriptions/{subscriptionId}",
    "payments/subscriptions.readonly",
    AC,
);
pub const CONTACT_GET: Requirement = loc("GET", "/contacts/{contactId}", "contacts.readonly", AC);
pub const LOCATION_TOKEN: Requirement = Requirement {
    method: "POST",
    path: "/oauth/locationToken",
    class: ClassRule::CompanyOnly,
    scope: "oauth.write",
};
pub const INSTALLED_LOCATIONS: Requirement = Requirement {
    method: "GET",
    path: "/oauth/installedLocations",
    class: ClassRule::CompanyOnly,
    scope: "oauth.readonly",
};

/// Every guarded route, for documentation (`GET /_sim/routes`) and for the table test.
pub const TABLE: &[Requirement] = &[
    PRODUCTS_CREATE,
    PRODUCTS_LIST,
    PRODUCTS_GET,
    PRODUCTS_UPDATE,
    PRODUCTS_DELETE,
    PRICES_CREATE,
    PRICES_LIST,
    PRICES_GET,
    PRICES_UPDATE,
    PRICES_DELETE,
    MEDIAS_UPLOAD,
    MEDIAS_LIST,
    MEDIAS_DELETE,
    PROVIDER_CREATE,
    PROVIDER_DELETE,
    CONNECT_GET,
    CONNECT_CREATE,
    DISCONNECT,
    CAPABILITIES,
    WHITELABEL_CREATE,
    WHITELABEL_LIST,
    TRANSACTION_GET,
    ORDER_GET,
    SUBSCRIPTION_GET,
    CONTACT_GET,
    LOCATION_TOKEN,
    INSTALLED_LOCATIONS,
];

/// The bearer token's standing, looked up once per request by the gateway middleware.
#[derive(Debug, Clone)]
pub enum Caller {
    Valid(AccessToken),
    Refused(HlError),
}

/// Checks, in HighLevel's order: token issued and alive, token class, scope, then the request's location.
/// `location` is the `locationId` the request names (body or query), if any.
pub fn authorize(
    req: &HttpRequest,
    need: &Requirement,
    location: Option<&str>,
) -> HlResult<AccessToken> {
    let token = caller_token(req)?;
    match (need.class, token.class) {
        (ClassRule::LocationOnly(_), TokenClass::Location)
        | (ClassRule::CompanyOnly, TokenClass::Company) => {}
        (ClassRule::LocationOnly(CompanyRefusal::ForbiddenResource), TokenClass::Company) => {
            return Err(HlError::forbidden_resource())
        }
        (ClassRule::LocationOnly(CompanyRefusal::AuthClass), TokenClass::Company)
        | (ClassRule::CompanyOnly, _) => return Err(HlError::auth_class()),
    }
    if !token.scopes.contains(need.scope) {
        return Err(HlError::scope());
    }
    check_location(&token, location)?;
    Ok(token)
}

/// The same checks for an operation of HighLevel's files (`crate::spec`): a class it does not take gets the
/// authClass refusal, a token with none of its scopes the scope refusal.
pub fn authorize_operation(
    req: &HttpRequest,
    op: &crate::spec::SpecOperation,
    location: Option<&str>,
) -> HlResult<AccessToken> {
    let token = caller_token(req)?;
    if !op.accepts(token.class) {
        return Err(HlError::auth_class());
    }
    if !op.scopes.is_empty() && !op.scopes.iter().any(|s| token.scopes.contains(s)) {
        return Err(HlError::scope());
    }
    check_location(&token, location)?;
    Ok(token)
}

/// The bearer token the gateway looked up, or its refusal.
fn caller_token(req: &HttpRequest) -> HlResult<AccessToken> {
    match req.extensions().get::<Caller>().cloned() {
        Some(Caller::Valid(t)) => Ok(t),
        Some(Caller::Refused(e)) => Err(e),
        None => Err(HlError::invalid_jwt()),
    }
}

fn check_location(token: &AccessToken, location: Option<&str>) -> HlResult<()> {
    if let Some(loc) = location {
        // Case-sensitive, as HighLevel's ids are: one letter's case is enough to be refused.
        if token.class == TokenClass::Location && token.class_id != loc {
            return Err(HlError::location_access());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_has_one_entry_per_route() {
        let mut seen = HashSet::new();
        for r in TABLE {
            assert!(
                seen.insert((r.method, r.path)),
                "duplicate {} {}",
                r.method,
                r.path
            );
            assert!(!r.scope.is_empty());
        }
    }
}
