//! Decrypted tokens in memory, keyed by (installation, location). A hot read checks only this map: no
//! database query, no decryption. Replicas stay coherent through `/refresh` (DESIGN.md §1, Cache).

use shared_types::TokenAccess;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Cached {
    pub answer: TokenAccess,
    pub expires_at_ms: i64,
    pub version: i64,
}

type Key = (String, String);

#[derive(Default)]
pub struct TokenCache {
    map: RwLock<HashMap<Key, Arc<Cached>>>,
}

impl TokenCache {
    pub fn get(&self, installation: &str, scope_key: &str) -> Option<Arc<Cached>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        // Borrowed lookup without allocating a key: HashMap<(String, String)> needs an owned tuple, so
        // scan by the installation first only when the map is tiny; otherwise build the key.
        map.get(&(installation.to_owned(), scope_key.to_owned()))
            .cloned()
    }

    /// Stores a token unless the cache already holds a newer version of it.
    pub fn put(&self, installation: &str, scope_key: &str, cached: Cached) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let key = (installation.to_owned(), scope_key.to_owned());
        if map
            .get(&key)
            .is_some_and(|old| old.version > cached.version)
        {
            return;
        }
        map.insert(key, Arc::new(cached));
    }

    pub fn remove(&self, installation: &str, scope_key: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(installation.to_owned(), scope_key.to_owned()));
    }

    /// Forgets every token of an installation (uninstall, needs_reauth, re-install).
    pub fn remove_installation(&self, installation: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(i, _), _| i != installation);
    }
}
