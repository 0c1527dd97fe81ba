//! The typed HighLevel client both services use: OAuth grants (`oauth`), products, prices, medias and the
//! payments custom provider (`resources`), the `Version` header, pacing under the rate limit (`pacing`),
//! error classes (`error`), the table of what each endpoint the typed calls use needs (`endpoints`), every
//! operation of HighLevel's v2 API generated from its OpenAPI files (`operations`) and the diagnosis of refusals
//! (`diagnosis`).

pub mod claims;
pub mod client;
pub mod diagnosis;
pub mod endpoints;
pub mod error;
pub mod oauth;
pub mod operations;
pub mod pacing;
pub mod resources;

pub use claims::TokenClaims;
pub use client::{
    Answer, Body, ClientConfig, FilePart, HighLevelClient, Request, SpooledFile, Streamed,
    TokenSource,
};
pub use error::HlError;
pub use oauth::{Grant, OAuthClient, OAuthError};
pub use pacing::PacingConfig;

/// The HTTP client could not be built (its TLS set-up failed). Constructors return it instead of falling back
/// to a client without timeouts; a service stops at start-up with this one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the HTTP client for HighLevel: {0}")]
pub struct ClientBuildError(pub String);

impl From<reqwest::Error> for ClientBuildError {
    /// reqwest says only "builder error"; the cause (e.g. "No CA certificates were loaded from the system")
    /// is further down the chain: keep all of it on the one line.
    fn from(e: reqwest::Error) -> Self {
        let mut line = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            line.push_str(": ");
            line.push_str(&c.to_string());
            cause = c.source();
        }
        ClientBuildError(line)
    }
}

/// The `Version` header of HighLevel's v2 API.
pub const API_VERSION: &str = "2021-07-28";
