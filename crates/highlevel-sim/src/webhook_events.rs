//! A plausible body for every webhook event type HighLevel documents: the example of each type's page in
//! HighLevel's webhook events docs (public domain, CC0), copied into `webhook_events.json` with the fields the
//! platform fills at sending (`appId`, `timestamp`, `webhookId`) left out. The simulator fills in the tenant
//! (`locationId`, or `altId` where the body names its location that way; `companyId`) and fresh record ids.

use crate::state::new_id;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

static EVENTS: LazyLock<Map<String, Value>> =
    LazyLock::new(
        || match serde_json::from_str(include_str!("webhook_events.json")) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
    );

/// Every documented event type, as the `type` field names it.
pub fn types() -> Vec<&'static str> {
    EVENTS.keys().map(String::as_str).collect()
}

/// A body of type `kind` for the tenant, or `None` for a type HighLevel does not document.
pub fn body(kind: &str, location_id: Option<&str>, company_id: Option<&str>) -> Option<Value> {
    let mut body = EVENTS.get(kind)?.clone();
    let obj = body.as_object_mut()?;
    // A new record each time: its own id, as HighLevel's would be.
    for key in ["id", "_id"] {
        if obj.contains_key(key) && !matches!(kind, "INSTALL" | "UNINSTALL" | "PLAN_CHANGE") {
            obj.insert(key.to_owned(), json!(new_id()));
        }
    }
    if let Some(Value::Object(inner)) = obj.get_mut("appointment") {
        inner.insert("id".to_owned(), json!(new_id()));
    }
    if let Some(l) = location_id {
        if obj.get("altType").and_then(Value::as_str) == Some("location") {
            obj.insert("altId".to_owned(), json!(l));
        } else {
            obj.insert("locationId".to_owned(), json!(l));
        }
    }
    if let Some(c) = company_id {
        if obj.contains_key("companyId") {
            obj.insert("companyId".to_owned(), json!(c));
        }
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_type_has_a_body_of_its_type() {
        let all = types();
        assert!(all.len() >= 50, "{all:?}");
        for t in all {
            let b = body(t, Some("Loc1"), Some("comp1")).unwrap();
            assert_eq!(b["type"], t);
        }
        assert!(body("NoSuchEvent", None, None).is_none());
        let invoice = body("InvoiceCreate", Some("Loc1"), None).unwrap();
        assert_eq!(invoice["altId"], "Loc1");
        let appointment = body("AppointmentCreate", Some("Loc1"), None).unwrap();
        assert_ne!(
            appointment["appointment"]["id"],
            body("AppointmentCreate", Some("Loc1"), None).unwrap()["appointment"]["id"]
        );
    }
}
