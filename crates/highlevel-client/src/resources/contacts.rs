//! Contacts (contacts.json): what a payment gateway needs to know of the customer HighLevel is charging.

use crate::client::{Body, HighLevelClient, Request, TokenSource};
use crate::endpoints as ep;
use crate::error::HlError;
use serde::Deserialize;

/// `GET /contacts/{contactId}` answers `{contact: {...}}` (`GetContectByIdSchema`); only the fields a
/// gateway asks for are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address1: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

impl Contact {
    /// `name`, or the first and last names.
    pub fn full_name(&self) -> Option<String> {
        let joined = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .or_else(|| (!joined.is_empty()).then_some(joined))
    }

    /// The postal address on one line (the parts HighLevel has).
    pub fn address_line(&self) -> Option<String> {
        let line = [
            &self.address1,
            &self.city,
            &self.state,
            &self.postal_code,
            &self.country,
        ]
        .into_iter()
        .filter_map(|p| p.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .collect::<Vec<_>>()
        .join(", ");
        (!line.is_empty()).then_some(line)
    }
}

#[derive(Deserialize)]
struct ContactAnswer {
    contact: Contact,
}

impl HighLevelClient {
    /// A contact of the location (`id` already checked with [`crate::check_id`]).
    pub async fn contact<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<Contact, HlError> {
        let e = &ep::CONTACT_GET;
        let req = Request {
            endpoint: e,
            path: super::path(e, &[("contactId", id)]),
            query: Vec::new(),
            body: Body::Empty,
            location: Some(location.to_owned()),
        };
        Ok(self.call(s, &req).await?.json::<ContactAnswer>()?.contact)
    }
}
