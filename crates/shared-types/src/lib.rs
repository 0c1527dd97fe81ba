//! The JSON that `oauth-backend` and `api-backend` exchange, in one place so the two sides cannot drift apart.
//!
//! No I/O and no storage types live here: only serde shapes and the stable names they carry.

#[cfg(feature = "diesel")]
pub mod column;
pub mod diagnosis;
pub mod id;
pub mod installation;
pub mod problem;
pub mod service_auth;
pub mod token_access;

pub use diagnosis::{Cause, Diagnosis};
pub use id::{check_id, is_id};
pub use installation::{InstallationState, InstallationStatus};
pub use problem::{Problem, ProblemCode};
pub use service_auth::{ServiceClaims, SERVICE_AUDIENCE};
pub use token_access::{AuthClass, RefreshRequest, TokenAccess};
