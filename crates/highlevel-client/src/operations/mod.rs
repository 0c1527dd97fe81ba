//! Every operation of HighLevel's v2 API, generated from HighLevel's own OpenAPI files and scope table
//! (`table.gen.rs`, written by `cargo run -p highlevel-client --bin gen-endpoints`), and the exceptions where
//! the live platform disagrees with them. The hand-written [`crate::endpoints`] entries the typed calls use
//! must agree with this table or be listed here (a test checks it).
//!
//! Lookups take a method and a concrete path (`/contacts/abc`) and find the operation whose template
//! (`/contacts/{contactId}`) it fills; a literal segment beats a placeholder (`/contacts/search` is not a
//! contact id).

use crate::endpoints::{Endpoint, Method, TABLE};
use shared_types::AuthClass;
use std::sync::LazyLock;

mod admin;
pub use admin::needs_admin;

/// Where an operation's token classes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassSource {
    /// Its `security` names them (`Location-Access`, `Agency-Access`, `…-Only`).
    Security,
    /// Its `security` says only `bearer`; the scope table's access type for it.
    ScopeTable,
    /// Neither says: taken as Location, as most of the scope table is Sub-Account.
    Assumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// `family.operationId` (`contacts.create-contact`): stable, used in metrics.
    pub name: &'static str,
    pub method: Method,
    /// The path template as HighLevel documents it, with `{placeholders}`.
    pub path: &'static str,
    /// The token classes HighLevel's files say it accepts.
    pub classes: &'static [AuthClass],
    pub scopes: &'static [&'static str],
    pub class_source: ClassSource,
}

const fn op(
    name: &'static str,
    method: Method,
    path: &'static str,
    classes: &'static [AuthClass],
    scopes: &'static [&'static str],
    class_source: ClassSource,
) -> Operation {
    Operation {
        name,
        method,
        path,
        classes,
        scopes,
        class_source,
    }
}

use AuthClass::{Company as C, Location as L};
use ClassSource::{Assumed, ScopeTable, Security};
use Method::{Delete, Get, Patch, Post, Put};

/// Every operation of HighLevel's public v2 OpenAPI files.
pub static OPERATIONS: &[Operation] = include!("table.gen.rs");

/// A token class HighLevel's files say an operation accepts but the live platform refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub method: Method,
    pub path: &'static str,
    pub refused: AuthClass,
    pub evidence: &'static str,
}

const PRODUCTS_EVIDENCE: &str = "The scope table lists products and products/prices scopes as Sub-Account only, while apps/products.json also names Agency-Access; the live platform refused a Company token on POST /products/ with 403 `Forbidden resource` (the first incident, README), and the same service answers the other products and prices routes.";

const fn refused(method: Method, path: &'static str, evidence: &'static str) -> Exception {
    Exception {
        method,
        path,
        refused: C,
        evidence,
    }
}

/// Where the live platform disagrees with the files.
pub const EXCEPTIONS: &[Exception] = &[
    refused(
        Post,
        "/products/",
        "A Company token from an agency install, with products.write granted, was refused on POST /products/ with 403 `Forbidden resource` (the first incident, README); the OpenAPI file lists Agency-Access, the scope table says Sub-Account.",
    ),
    refused(Get, "/products/", PRODUCTS_EVIDENCE),
    refused(Get, "/products/{productId}", PRODUCTS_EVIDENCE),
    refused(Put, "/products/{productId}", PRODUCTS_EVIDENCE),
    refused(Delete, "/products/{productId}", PRODUCTS_EVIDENCE),
    refused(Post, "/products/{productId}/price", PRODUCTS_EVIDENCE),
    refused(Get, "/products/{productId}/price", PRODUCTS_EVIDENCE),
    refused(Get, "/products/{productId}/price/{priceId}", PRODUCTS_EVIDENCE),
    refused(Put, "/products/{productId}/price/{priceId}", PRODUCTS_EVIDENCE),
    refused(Delete, "/products/{productId}/price/{priceId}", PRODUCTS_EVIDENCE),
];

impl Operation {
    /// Whether HighLevel takes a token of `class` here: the files say so and no exception says otherwise.
    pub fn accepts(&self, class: AuthClass) -> bool {
        self.classes.contains(&class)
            && !EXCEPTIONS.iter().any(|e| {
                e.method == self.method && same_template(e.path, self.path) && e.refused == class
            })
    }

    /// Why the table gives this operation the token classes it does, when HighLevel's file for it does not name
    /// them (its `security` gives `bearer` at most): `None` when the file names them.
    pub fn class_basis(&self) -> Option<String> {
        let classes: Vec<&str> = self.classes.iter().map(|c| c.as_str()).collect();
        let route = format!("{} {}", self.method.as_str(), self.path);
        match self.class_source {
            ClassSource::Security => None,
            ClassSource::ScopeTable => Some(format!(
                "HighLevel's OpenAPI file names no token class for {route} (its security gives `bearer` at \
                 most); the table takes {} from the access type HighLevel's scope table gives its route or \
                 scopes, which the live platform has not confirmed",
                classes.join(" or ")
            )),
            ClassSource::Assumed => Some(format!(
                "neither HighLevel's OpenAPI file (its security gives `bearer` at most) nor its scope table \
                 says which token class {route} takes; the table assumes {}, as most of HighLevel's API is \
                 Sub-Account",
                classes.join(" or ")
            )),
        }
    }

    /// The hand-written entry for the same route, if the typed calls have one.
    pub fn hand_written(&self) -> Option<&'static Endpoint> {
        TABLE
            .iter()
            .find(|e| e.method == self.method && same_template(e.path, self.path))
    }
}

fn is_placeholder(seg: &str) -> bool {
    seg.starts_with('{') && seg.ends_with('}')
}

/// The segments of a path; a trailing slash makes no difference (`/contacts/` is `/contacts`).
fn segments(path: &str) -> Vec<&str> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    p.split('/').collect()
}

/// Two templates for the same route, whatever their placeholders are called.
pub fn same_template(a: &str, b: &str) -> bool {
    let (a, b) = (segments(a), segments(b));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (is_placeholder(x) && is_placeholder(y)))
}

/// How well a concrete path fills a template: `None` if it does not, else the number of literal segments.
fn fills(template: &str, path: &str) -> Option<usize> {
    let (t, p) = (segments(template), segments(path));
    if t.len() != p.len() {
        return None;
    }
    let mut literal = 0;
    for (t, p) in t.iter().zip(&p) {
        if is_placeholder(t) {
            if p.is_empty() {
                return None;
            }
        } else if t == p {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// An operation a concrete path and method fill.
#[derive(Debug, Clone)]
pub struct Found {
    pub operation: &'static Operation,
    index: usize,
    /// The concrete path, with the template's trailing slash (or its absence).
    pub path: String,
    /// Each placeholder's name (without braces) and value.
    pub params: Vec<(&'static str, String)>,
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Found),
    /// The path is an operation's, but not with this method: the methods it has.
    WrongMethod(Vec<Method>),
    /// No operation has this path: the closest known ones (`METHOD /template`).
    Unknown(Vec<String>),
}

/// The operation `method` and the concrete `path` name (see the module comment).
pub fn find(method: Method, path: &str) -> Lookup {
    let mut best: Option<(usize, usize)> = None;
    let mut methods = Vec::new();
    let mut best_literal = None;
    for (i, op) in OPERATIONS.iter().enumerate() {
        let Some(literal) = fills(op.path, path) else {
            continue;
        };
        // Methods are only reported for the best-fitting template(s).
        match best_literal {
            Some(b) if literal < b => continue,
            Some(b) if literal > b => methods.clear(),
            _ => {}
        }
        best_literal = Some(literal);
        methods.push(op.method);
        if op.method == method && best.is_none_or(|(_, l)| literal > l) {
            best = Some((i, literal));
        }
    }
    if let Some((index, literal)) = best {
        if Some(literal) == best_literal {
            let operation = &OPERATIONS[index];
            return Lookup::Found(Found {
                operation,
                index,
                path: concrete(operation.path, path),
                params: params(operation.path, path),
            });
        }
    }
    if !methods.is_empty() {
        methods.dedup();
        return Lookup::WrongMethod(methods);
    }
    Lookup::Unknown(closest(path, 3))
}

fn concrete(template: &str, path: &str) -> String {
    let mut out = format!("/{}", segments(path).join("/"));
    if template.ends_with('/') && template.len() > 1 {
        out.push('/');
    }
    out
}

fn params(template: &'static str, path: &str) -> Vec<(&'static str, String)> {
    segments(template)
        .into_iter()
        .zip(segments(path))
        .filter(|(t, _)| is_placeholder(t))
        .map(|(t, p)| (&t[1..t.len() - 1], p.to_owned()))
        .collect()
}

/// How like `template` a concrete path is, 0 to 1: segment by segment, a placeholder is like any value and a
/// literal as like as its spelling; segments one has and the other lacks count as unlike.
fn likeness(template: &str, path: &str) -> f64 {
    let (t, p) = (segments(template), segments(path));
    let same: f64 = t
        .iter()
        .zip(&p)
        .map(|(t, p)| {
            if is_placeholder(t) {
                1.0
            } else {
                strsim::normalized_levenshtein(t, p)
            }
        })
        .sum();
    same / t.len().max(p.len()) as f64
}

/// The `n` known templates most like `path`.
pub fn closest(path: &str, n: usize) -> Vec<String> {
    let mut scored: Vec<(f64, &Operation)> = OPERATIONS
        .iter()
        .map(|op| (likeness(op.path, path), op))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<String> = Vec::new();
    for (_, op) in scored {
        if !out.iter().any(|p| p == op.path) {
            out.push(op.path.to_owned());
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// One endpoint per operation and token class, for the client: the hand-written entry where there is one (it
/// carries what the live platform taught), else built from the operation; its class is the one asked for when
/// the operation accepts it, else one it does accept (so a call with the wrong class is diagnosed before it is
/// sent).
static ENDPOINTS: LazyLock<Vec<[Endpoint; 2]>> = LazyLock::new(|| {
    OPERATIONS
        .iter()
        .map(|op| [for_class(op, L), for_class(op, C)])
        .collect()
});

fn for_class(op: &'static Operation, class: AuthClass) -> Endpoint {
    if let Some(hand) = op.hand_written() {
        return *hand;
    }
    let other = match class {
        L => C,
        C => L,
    };
    Endpoint {
        name: op.name,
        method: op.method,
        path: op.path,
        class: if op.accepts(class) || !op.accepts(other) {
            class
        } else {
            other
        },
        scope: op.scopes.first().copied().unwrap_or(""),
        whitelabel: false,
        upsert: false,
    }
}

impl Found {
    /// The endpoint to call this operation with a token of `class`.
    pub fn endpoint(&self, class: AuthClass) -> &'static Endpoint {
        &ENDPOINTS[self.index][match class {
            L => 0,
            C => 1,
        }]
    }

    /// The value of the placeholder called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests;
