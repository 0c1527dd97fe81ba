//! The simulator's own model of every operation of HighLevel's v2 API, read from HighLevel's OpenAPI files and
//! scope table (copied into `reference/highlevel-openapi/`, embedded at build, parsed once). It shares nothing
//! with the client's generated table: a mistake on one side is caught by the other.
//!
//! Which token classes an operation takes: its `security` (`Location-Access*` → Location, `Agency-Access*` →
//! Company); where that only says `bearer`, every scope table row of its scopes (`Sub-Account` → Location,
//! `Agency` → Company); where nothing says, either class (the simulator refuses only what the documents say
//! HighLevel refuses).

use crate::state::TokenClass;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

macro_rules! apps {
    ($($name:literal),* $(,)?) => {
        &[$(include_str!(concat!("../../../reference/highlevel-openapi/apps/", $name)),)*]
    };
}

/// HighLevel's OpenAPI files, one per API family.
static FILES: &[&str] = apps![
    "ad-manager.json",
    "affiliate-manager.json",
    "agent-studio.json",
    "associations.json",
    "blogs.json",
    "brand-boards.json",
    "businesses.json",
    "calendars.json",
    "campaigns.json",
    "companies.json",
    "contacts.json",
    "conversation-ai.json",
    "conversations.json",
    "courses.json",
    "custom-fields.json",
    "custom-menus.json",
    "email-isv.json",
    "emails.json",
    "forms.json",
    "funnels.json",
    "invoices.json",
    "knowledge-base.json",
    "links.json",
    "locations.json",
    "marketplace.json",
    "medias.json",
    "oauth.json",
    "objects.json",
    "opportunities.json",
    "payments.json",
    "phone-system.json",
    "products.json",
    "proposals.json",
    "saas-api.json",
    "snapshots.json",
    "social-media-posting.json",
    "store.json",
    "surveys.json",
    "users.json",
    "voice-ai.json",
    "workflows.json",
];

static SCOPE_TABLE: &str = include_str!("../../../reference/highlevel-openapi/Scopes.md");

/// One operation as the simulator understands it.
#[derive(Debug, Clone)]
pub struct SpecOperation {
    pub method: String,
    /// The documented path, e.g. `/contacts/{contactId}`.
    pub path: String,
    segments: Vec<String>,
    pub location: bool,
    pub company: bool,
    /// A token needs one of these (none: any token of an accepted class).
    pub scopes: Vec<String>,
}

impl SpecOperation {
    pub fn accepts(&self, class: TokenClass) -> bool {
        match class {
            TokenClass::Location => self.location,
            TokenClass::Company => self.company,
        }
    }
}

fn split(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

/// Scope → (Location allowed, Company allowed), over every row of the scope table naming it.
fn scope_classes() -> BTreeMap<String, (bool, bool)> {
    let mut out: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut current = String::new();
    for line in SCOPE_TABLE.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| scope | endpoints | events | access |` splits into six cells, the first and last empty.
        if cells.len() < 6 {
            continue;
        }
        let scope = cells[1].replace("&nbsp;", "");
        if !scope.trim().is_empty() && !scope.starts_with('-') && scope != "Scope" {
            current = scope.trim().to_owned();
        }
        let access = cells[4];
        if current.is_empty() {
            continue;
        }
        let e = out.entry(current.clone()).or_default();
        e.0 |= access.contains("Sub-Account");
        e.1 |= access.contains("Agency");
    }
    out
}

pub static OPERATIONS: LazyLock<Vec<SpecOperation>> = LazyLock::new(|| {
    let scopes = scope_classes();
    let mut ops = Vec::new();
    for text in FILES {
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            continue;
        };
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let method = method.to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                    continue;
                }
                let (mut location, mut company) = (false, false);
                let mut needs = BTreeSet::new();
                for alt in op
                    .get("security")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for (scheme, list) in alt.as_object().into_iter().flatten() {
                        location |= scheme.starts_with("Location-Access");
                        company |= scheme.starts_with("Agency-Access");
                        needs.extend(
                            list.as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str)
                                .map(str::to_owned),
                        );
                    }
                }
                if !location && !company {
                    for s in &needs {
                        if let Some((l, c)) = scopes.get(s) {
                            location |= l;
                            company |= c;
                        }
                    }
                }
                if !location && !company {
                    (location, company) = (true, true);
                }
                ops.push(SpecOperation {
                    method,
                    path: path.clone(),
                    segments: split(path),
                    location,
                    company,
                    scopes: needs.into_iter().collect(),
                });
            }
        }
    }
    ops
});

/// The operation a request names, with its path parameters; a literal segment beats a placeholder.
pub fn find(
    method: &str,
    path: &str,
) -> Option<(&'static SpecOperation, BTreeMap<String, String>)> {
    let given = split(path);
    let mut best: Option<(&SpecOperation, usize)> = None;
    for op in OPERATIONS.iter().filter(|o| o.method == method) {
        if op.segments.len() != given.len() {
            continue;
        }
        let mut literal = 0;
        let fits = op.segments.iter().zip(&given).all(|(t, g)| {
            if t.starts_with('{') && t.ends_with('}') {
                !g.is_empty()
            } else {
                literal += 1;
                t == g
            }
        });
        if fits && best.is_none_or(|(_, l)| literal > l) {
            best = Some((op, literal));
        }
    }
    let (op, _) = best?;
    let params = op
        .segments
        .iter()
        .zip(&given)
        .filter(|(t, _)| t.starts_with('{'))
        .map(|(t, g)| {
            (
                t.trim_matches(|c| c == '{' || c == '}').to_owned(),
                g.clone(),
            )
        })
        .collect();
    Some((op, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From the documents: 576 operations; contacts take Location tokens (scope table: Sub-Account),
    /// `GET /locations/search` both, `POST /oauth/locationToken` Company only.
    #[test]
    fn reads_every_operation_and_its_classes() {
        assert_eq!(OPERATIONS.len(), 576);
        let (create, _) = find("POST", "/contacts/").expect("POST /contacts/");
        assert!(create.location && !create.company);
        assert_eq!(create.scopes, ["contacts.write"]);
        let (search, _) = find("GET", "/locations/search").expect("search");
        assert!(search.location && search.company);
        let (mint, _) = find("POST", "/oauth/locationToken").expect("locationToken");
        assert!(mint.company && !mint.location);
        let (get, params) = find("GET", "/contacts/abc").expect("GET contact");
        assert_eq!(get.path, "/contacts/{contactId}");
        assert_eq!(params["contactId"], "abc");
        assert!(find("GET", "/nowhere/at/all").is_none());
    }
}
