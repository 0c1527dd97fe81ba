//! The payments routes: the queryUrl HighLevel calls, the payment page it frames (and the page's own API),
//! and PayTR's callback. The payment domain (charges, refunds, subscriptions, gateways) is in `crate::payments`.

pub mod page;
pub mod paytr_callback;
pub mod query;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    query::configure(cfg);
    page::configure(cfg);
    paytr_callback::configure(cfg);
}
