//! Typed requests and answers for the HighLevel APIs the services use. Field names and required fields
//! follow HighLevel's OpenAPI files (`HighLevel's public OpenAPI files, `apps/*.json` of GoHighLevel/highlevel-api-docs; see docs/highlevel.md`); answers keep fields we do not
//! model in `extra`, so nothing HighLevel sends is lost on the way through.

pub mod contacts;
pub mod medias;
pub mod payments;
pub mod prices;
pub mod products;

use crate::client::{Body, Request};
use crate::endpoints::Endpoint;

/// `{placeholder}` → value, for a path from the table.
fn path(ep: &Endpoint, values: &[(&str, &str)]) -> String {
    let mut p = ep.path.to_owned();
    for (k, v) in values {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    p
}

/// HighLevel's `limit` / `offset` query parameters, when given.
fn paging(query: &mut Vec<(&str, String)>, limit: Option<u32>, offset: Option<u32>) {
    if let Some(l) = limit {
        query.push(("limit", l.to_string()));
    }
    if let Some(o) = offset {
        query.push(("offset", o.to_string()));
    }
}

fn request(
    ep: &'static Endpoint,
    path: String,
    query: Vec<(&str, String)>,
    body: Body,
    location: &str,
) -> Request {
    Request {
        endpoint: ep,
        path,
        query: query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        body,
        location: Some(location.to_owned()),
    }
}
