//! Decrypted tokens in memory, keyed by installation, then by scope key ('' for the installation's own token,
//! else a location id). A hot read checks only this map: no database query, no decryption, no allocation.
//! Replicas stay coherent through `/refresh` (docs/design.md, refresh: the cache).

use shared_types::TokenAccess;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub struct Cached {
    pub answer: TokenAccess,
    /// `answer` as JSON, serialised once: a hot read sends these bytes as they are.
    pub body: bytes::Bytes,
    pub expires_at_ms: i64,
    pub version: i64,
}

// `body` holds the access token in clear: it must never reach a `Debug` print.
impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("answer", &self.answer)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Cached {
    pub fn new(answer: TokenAccess, expires_at_ms: i64, version: i64) -> Cached {
        let body = serde_json::to_vec(&answer)
            .map(bytes::Bytes::from)
            .unwrap_or_default();
        Cached {
            answer,
            body,
            expires_at_ms,
            version,
        }
    }
}

pub struct TokenCache {
    map: RwLock<HashMap<String, HashMap<String, Arc<Cached>>>>,
    /// Off (`TOKEN_CACHE=false`): every read decrypts from the database, as the first read after another
    /// replica's refresh does. For measuring that path and for ruling the cache out while debugging.
    enabled: bool,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(true)
    }
}

impl TokenCache {
    pub fn new(enabled: bool) -> TokenCache {
        TokenCache {
            map: RwLock::default(),
            enabled,
        }
    }

    pub fn get(&self, installation: &str, scope_key: &str) -> Option<Arc<Cached>> {
        if !self.enabled {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(installation)?.get(scope_key).cloned()
    }

    /// Stores a token unless the cache already holds a newer version of it.
    pub fn put(&self, installation: &str, scope_key: &str, cached: Cached) {
        if !self.enabled {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let entries = map.entry(installation.to_owned()).or_default();
        if entries
            .get(scope_key)
            .is_some_and(|old| old.version > cached.version)
        {
            return;
        }
        entries.insert(scope_key.to_owned(), Arc::new(cached));
    }

    /// Forgets one token.
    pub fn remove(&self, installation: &str, scope_key: &str) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if let Some(entries) = map.get_mut(installation) {
            entries.remove(scope_key);
            if entries.is_empty() {
                map.remove(installation);
            }
        }
    }

    /// Forgets every token of an installation (uninstall, needs_reauth, re-install).
    pub fn remove_installation(&self, installation: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(installation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_types::AuthClass;

    fn cached(token: &str, version: i64) -> Cached {
        Cached::new(
            TokenAccess {
                installation_id: "i".into(),
                access_token: token.into(),
                token_type: "Bearer".into(),
                expires_at: chrono::Utc::now(),
                auth_class: AuthClass::Location,
                company_id: "c".into(),
                location_id: None,
                scopes: vec![],
            },
            0,
            version,
        )
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = cached("secret-access-token", 1);
        assert!(std::str::from_utf8(&c.body)
            .unwrap()
            .contains("secret-access-token"));
        assert!(!format!("{c:?}").contains("secret-access-token"));
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let c = TokenCache::default();
        c.put("i", "", cached("new", 5));
        c.put("i", "", cached("old", 4));
        assert_eq!(c.get("i", "").unwrap().answer.access_token, "new");
        c.put("i", "L1", cached("loc", 1));
        c.remove_installation("i");
        assert!(c.get("i", "").is_none() && c.get("i", "L1").is_none());
    }
}
