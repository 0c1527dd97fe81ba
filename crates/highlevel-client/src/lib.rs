//! The typed HighLevel client both services use: OAuth grants (`oauth`), products, prices, medias and the
//! payments custom provider (`resources`), the `Version` header, pacing under the rate limit (`pacing`),
//! error classes (`error`), the one table of what each endpoint needs (`endpoints`) and the diagnosis of
//! refusals (`diagnosis`).

pub mod claims;
pub mod client;
pub mod diagnosis;
pub mod endpoints;
pub mod error;
pub mod oauth;
pub mod pacing;
pub mod resources;

pub use claims::TokenClaims;
pub use client::{
    check_id, Answer, Body, ClientConfig, FilePart, HighLevelClient, Request, SpooledFile,
    TokenSource,
};
pub use error::HlError;
pub use oauth::{Grant, OAuthClient, OAuthError};
pub use pacing::PacingConfig;

/// The `Version` header of HighLevel's v2 API.
pub const API_VERSION: &str = "2021-07-28";
