//! Talking to HighLevel's OAuth endpoints.

pub mod oauth_client;

pub use oauth_client::{Grant, OAuthClient, OAuthError};
