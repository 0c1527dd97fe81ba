//! HighLevel's routes, one file per API family, plus the `/_sim/` control surface.

pub mod app_shell;
pub mod checkout;
pub mod contacts;
pub mod control;
pub mod generic;
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
    contacts::configure(cfg);
    control::configure(cfg);
    checkout::configure(cfg);
    app_shell::configure(cfg);
    // Last: whatever no route above answers.
    generic::configure(cfg);
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

/// Query or form parameters that must be present and non-empty: one 422 naming each missing one.
pub fn required_params(q: &HashMap<String, String>, names: &[&str]) -> HlResult<()> {
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

/// Gives a new resource its `_id` and timestamps, as HighLevel does on create.
pub fn stamp_new(resource: &mut serde_json::Value) {
    let now = crate::state::now_iso();
    resource["_id"] = serde_json::json!(crate::state::new_id());
    resource["createdAt"] = serde_json::json!(now);
    resource["updatedAt"] = serde_json::json!(now);
}

/// Applies an update body to a stored resource; `_id`, `createdAt` and the `fixed` keys never change.
pub fn merge_update(target: &mut serde_json::Value, changes: serde_json::Value, fixed: &[&str]) {
    if let (serde_json::Value::Object(t), serde_json::Value::Object(c)) = (&mut *target, changes) {
        for (k, v) in c {
            if k != "_id" && k != "createdAt" && !fixed.contains(&k.as_str()) {
                t.insert(k, v);
            }
        }
    }
    target["updatedAt"] = serde_json::json!(crate::state::now_iso());
}

/// Removes the resource with this `_id`; `false` if there was none.
pub fn remove_by_id(list: &mut Vec<serde_json::Value>, id: &str) -> bool {
    let before = list.len();
    list.retain(|r| r["_id"] != id);
    list.len() != before
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
