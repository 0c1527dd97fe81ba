//! HighLevel's routes, one file per API family, plus the `/_sim/` control surface.

pub mod control;
pub mod medias;
pub mod oauth;
pub mod payments;
pub mod products;

use crate::errors::{HlError, HlResult};
use actix_web::{web, HttpRequest};
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    oauth::configure(cfg);
    products::configure(cfg);
    medias::configure(cfg);
    payments::configure(cfg);
    control::configure(cfg);
}

/// Query parameters (the last value wins for repeated keys).
pub fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// HighLevel's v2 API wants a `Version` header; both current versions are accepted.
pub fn require_version(req: &HttpRequest) -> HlResult<()> {
    match req.headers().get("version").and_then(|v| v.to_str().ok()) {
        Some("2021-07-28") | Some("2021-04-15") | Some("2023-02-21") => Ok(()),
        Some(_) => Err(HlError::bad_request(
            "Invalid Version header. Use 2021-07-28 or 2023-02-21",
        )),
        None => Err(HlError::bad_request("Version header was not found")),
    }
}

pub fn required_query(q: &HashMap<String, String>, names: &[&str]) -> HlResult<()> {
    let missing: Vec<String> = names
        .iter()
        .filter(|n| q.get(**n).is_none_or(|v| v.is_empty()))
        .map(|n| format!("{n} should not be empty"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(HlError::unprocessable(missing))
    }
}

/// `limit`/`offset` paging over a list, with HighLevel's defaults.
pub fn page<T: Clone>(items: &[T], q: &HashMap<String, String>, default_limit: usize) -> Vec<T> {
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_limit);
    let offset = q
        .get("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0usize);
    items.iter().skip(offset).take(limit).cloned().collect()
}
