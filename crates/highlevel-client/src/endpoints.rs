//! The table of what each HighLevel endpoint the typed calls use needs: method, path, token class, scope. The
//! client reads it before every call (to choose the right token) and diagnosis reads it after a refusal (to
//! explain it). Every entry agrees with HighLevel's own files (`crate::operations`, generated) or is one of the
//! exceptions listed there; a test checks it.
//! `highlevel-sim` keeps its own table on purpose: a mistake on one side is caught by the other.

use shared_types::AuthClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Safe to send again after an unclear failure: the same request has the same effect.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }

    /// HighLevel's spelling (`GET`, …); anything else is `None`.
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// A short stable name (`products.create`), used in metrics and reports.
    pub name: &'static str,
    pub method: Method,
    /// The path as HighLevel documents it, with `{placeholders}`.
    pub path: &'static str,
    /// The token class HighLevel accepts.
    pub class: AuthClass,
    pub scope: &'static str,
    /// HighLevel's own re-branding of NMI / Authorize.net: never the endpoint for a third-party gateway.
    pub whitelabel: bool,
    /// Repeating it has no further effect even though it is a POST (an upsert on HighLevel's side).
    pub upsert: bool,
}

const fn ep(
    name: &'static str,
    method: Method,
    path: &'static str,
    class: AuthClass,
    scope: &'static str,
) -> Endpoint {
    Endpoint {
        name,
        method,
        path,
        class,
        scope,
        whitelabel: false,
        upsert: false,
    }
}

use AuthClass::{Company as C, Location as L};
use Method::{Delete, Get, Post, Put};

pub const PRODUCTS_CREATE: Endpoint =
    ep("products.create", Post, "/products/", L, "products.write");
pub const PRODUCTS_LIST: Endpoint = ep("products.list", Get, "/products/", L, "products.readonly");
pub const PRODUCTS_GET: Endpoint = ep(
    "products.get",
    Get,
    "/products/{productId}",
    L,
    "products.readonly",
);
pub const PRODUCTS_UPDATE: Endpoint = ep(
    "products.update",
    Put,
    "/products/{productId}",
    L,
    "products.write",
);
pub const PRODUCTS_DELETE: Endpoint = ep(
    "products.delete",
    Delete,
    "/products/{productId}",
    L,
    "products.write",
);
pub const PRICES_CREATE: Endpoint = ep(
    "prices.create",
    Post,
    "/products/{productId}/price",
    L,
    "products/prices.write",
);
pub const PRICES_LIST: Endpoint = ep(
    "prices.list",
    Get,
    "/products/{productId}/price",
    L,
    "products/prices.readonly",
);
pub const PRICES_GET: Endpoint = ep(
    "prices.get",
    Get,
    "/products/{productId}/price/{priceId}",
    L,
    "products/prices.readonly",
);
pub const PRICES_UPDATE: Endpoint = ep(
    "prices.update",
    Put,
    "/products/{productId}/price/{priceId}",
    L,
    "products/prices.write",
);
pub const PRICES_DELETE: Endpoint = ep(
    "prices.delete",
    Delete,
    "/products/{productId}/price/{priceId}",
    L,
    "products/prices.write",
);
pub const MEDIAS_UPLOAD: Endpoint = ep(
    "medias.upload",
    Post,
    "/medias/upload-file",
    L,
    "medias.write",
);
pub const MEDIAS_LIST: Endpoint = ep("medias.list", Get, "/medias/files", L, "medias.readonly");
pub const MEDIAS_DELETE: Endpoint = ep("medias.delete", Delete, "/medias/{id}", L, "medias.write");
pub const PROVIDER_CREATE: Endpoint = Endpoint {
    upsert: true,
    ..ep(
        "custom_provider.create",
        Post,
        "/payments/custom-provider/provider",
        L,
        "payments/custom-provider.write",
    )
};
pub const PROVIDER_DELETE: Endpoint = ep(
    "custom_provider.delete",
    Delete,
    "/payments/custom-provider/provider",
    L,
    "payments/custom-provider.write",
);
pub const CONNECT_GET: Endpoint = ep(
    "custom_provider.connect_get",
    Get,
    "/payments/custom-provider/connect",
    L,
    "payments/custom-provider.readonly",
);
pub const CONNECT_CREATE: Endpoint = Endpoint {
    upsert: true,
    ..ep(
        "custom_provider.connect",
        Post,
        "/payments/custom-provider/connect",
        L,
        "payments/custom-provider.write",
    )
};
pub const DISCONNECT: Endpoint = Endpoint {
    upsert: true,
    ..ep(
        "custom_provider.disconnect",
        Post,
        "/payments/custom-provider/disconnect",
        L,
        "payments/custom-provider.write",
    )
};
pub const CAPABILITIES: Endpoint = ep(
    "custom_provider.capabilities",
    Put,
    "/payments/custom-provider/capabilities",
    L,
    "payments/custom-provider.write",
);
pub const WHITELABEL_CREATE: Endpoint = Endpoint {
    whitelabel: true,
    ..ep(
        "whitelabel.create",
        Post,
        "/payments/integrations/provider/whitelabel",
        L,
        "payments/integration.write",
    )
};
pub const WHITELABEL_LIST: Endpoint = Endpoint {
    whitelabel: true,
    ..ep(
        "whitelabel.list",
        Get,
        "/payments/integrations/provider/whitelabel",
        L,
        "payments/integration.readonly",
    )
};
pub const TRANSACTION_GET: Endpoint = ep(
    "payments.transaction_get",
    Get,
    "/payments/transactions/{transactionId}",
    L,
    "payments/transactions.readonly",
);
pub const ORDER_GET: Endpoint = ep(
    "payments.order_get",
    Get,
    "/payments/orders/{orderId}",
    L,
    "payments/orders.readonly",
);
pub const SUBSCRIPTION_GET: Endpoint = ep(
    "payments.subscription_get",
    Get,
    "/payments/subscriptions/{subscriptionId}",
    L,
    "payments/subscriptions.readonly",
);
pub const CONTACT_GET: Endpoint = ep(
    "contacts.get",
    Get,
    "/contacts/{contactId}",
    L,
    "contacts.readonly",
);
pub const LOCATION_TOKEN: Endpoint = ep(
    "oauth.location_token",
    Post,
    "/oauth/locationToken",
    C,
    "oauth.write",
);
pub const INSTALLED_LOCATIONS: Endpoint = ep(
    "oauth.installed_locations",
    Get,
    "/oauth/installedLocations",
    C,
    "oauth.readonly",
);

/// Every endpoint the client calls.
pub const TABLE: &[Endpoint] = &[
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

/// The endpoint with this name.
pub fn by_name(name: &str) -> Option<&'static Endpoint> {
    TABLE.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn one_entry_per_route_and_name() {
        let mut routes = HashSet::new();
        let mut names = HashSet::new();
        for e in TABLE {
            assert!(routes.insert((e.method, e.path)), "{} twice", e.path);
            assert!(names.insert(e.name), "{} twice", e.name);
        }
        assert_eq!(by_name("products.create"), Some(&PRODUCTS_CREATE));
    }

    /// docs/highlevel.md: products, prices, medias and every custom-provider endpoint are Location scopes.
    #[test]
    fn resource_endpoints_take_location_tokens() {
        for e in TABLE.iter().filter(|e| !e.path.starts_with("/oauth/")) {
            assert_eq!(e.class, AuthClass::Location, "{}", e.name);
        }
    }
}
