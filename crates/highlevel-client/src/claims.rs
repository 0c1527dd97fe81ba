//! What a HighLevel access token says about itself. The claims are HighLevel's to verify; a client reads them
//! without a key to learn what the token may do (class, location or company, app, scopes, expiry).

use serde::Deserialize;
use shared_types::AuthClass;

#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenClaims {
    #[serde(default)]
    pub auth_class: Option<String>,
    #[serde(default)]
    pub auth_class_id: Option<String>,
    /// The marketplace app's client id.
    #[serde(default)]
    pub source_id: Option<String>,
    #[serde(default)]
    pub oauth_meta: Option<OauthMeta>,
    #[serde(default)]
    pub exp: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OauthMeta {
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl TokenClaims {
    /// The claims of a JWT, or empty claims when the token is not one.
    pub fn read(token: &str) -> TokenClaims {
        jsonwebtoken::dangerous::insecure_decode_claims::<TokenClaims>(token).unwrap_or_default()
    }

    pub fn class(&self) -> Option<AuthClass> {
        self.auth_class.as_deref().and_then(AuthClass::parse)
    }

    pub fn scopes(&self) -> Option<&[String]> {
        self.oauth_meta.as_ref().map(|m| m.scopes.as_slice())
    }

    /// Whether anything was read at all.
    pub fn is_empty(&self) -> bool {
        *self == TokenClaims::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};

    #[test]
    fn reads_claims_without_a_key_and_tolerates_garbage() {
        let payload = serde_json::json!({
            "authClass": "Company", "authClassId": "c1", "sourceId": "app",
            "oauthMeta": {"scopes": ["products.write"]}, "exp": 10
        });
        let token = format!(
            "{}.{}.sig",
            B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            B64.encode(payload.to_string())
        );
        let c = TokenClaims::read(&token);
        assert_eq!(c.class(), Some(AuthClass::Company));
        assert_eq!(c.scopes().unwrap(), ["products.write"]);
        assert!(TokenClaims::read("not-a-jwt").is_empty());
    }
}
