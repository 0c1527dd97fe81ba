//! Contacts (contacts.json): `GET /contacts/{contactId}`, read by a payment provider that needs the customer's
//! name, address and phone. Contacts are made by the control route `POST /_sim/contacts`.

use crate::access::{self, authorize};
use crate::errors::{HlError, HlResult};
use crate::routes::require_version;
use crate::state::{new_id, now_iso, Sim};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts/{contactId}", web::get().to(get_contact))
        .route("/_sim/contacts", web::post().to(new_contact));
}

/// `{contact: {...}}`; a contact of another location is as good as absent.
async fn get_contact(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let id = req.match_info().get("contactId").unwrap_or_default();
    let found = sim.world_read().contacts.get(id).cloned();
    let location = found
        .as_ref()
        .and_then(|c| c["locationId"].as_str())
        .map(str::to_owned);
    // The token must be the contact's location's (or its agency's, where the class allows it).
    authorize(&req, &access::CONTACT_GET, location.as_deref())?;
    let contact = found.ok_or_else(|| HlError::bad_request("Contact not found"))?;
    Ok(HttpResponse::Ok().json(json!({"contact": contact})))
}

/// `POST /_sim/contacts {"locationId", "id"?, "firstName"?, "lastName"?, "email"?, "phone"?, "address1"?,
/// "city"?, "state"?, "postalCode"?, "country"?}`: records a contact as HighLevel holds it; answers it.
async fn new_contact(sim: web::Data<Sim>, body: web::Json<Value>) -> HttpResponse {
    let mut c = body.into_inner();
    if c["locationId"].as_str().is_none_or(str::is_empty) {
        return HttpResponse::BadRequest().json(json!({"message": "locationId is required"}));
    }
    let id = c["id"].as_str().map_or_else(new_id, str::to_owned);
    c["id"] = json!(id);
    let name = [c["firstName"].as_str(), c["lastName"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if c.get("name").is_none() && !name.is_empty() {
        c["name"] = json!(name);
    }
    c["dateAdded"] = json!(now_iso());
    sim.world().contacts.insert(id, c.clone());
    HttpResponse::Ok().json(json!({"contact": c}))
}
