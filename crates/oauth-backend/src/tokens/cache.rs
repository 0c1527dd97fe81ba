//! Decrypted tokens in memory, keyed by installation, then by scope key ('' for the installation's own token,
//! else a location id), in a bounded `moka` cache. A hot read checks only this cache: no database query, no
//! decryption, no allocation.
//! Replicas stay coherent through `/refresh` (docs/design.md, refresh: the cache) and through the change feed
//! (`tokens::sync`): an uninstall, a `needs_reauth` or a newer token anywhere drops the entries it concerns.
//!
//! A read that loads a token from the database takes the installation's generation first and caches what it
//! loaded only if no change of that installation was applied meanwhile: a change that lands between the load
//! and the put is never undone by the put.
//!
//! In front of the shared cache, each server thread keeps copies of what it served ([`TokenCache::hit`]): a
//! repeated read is a lookup in memory no other core writes, answered with the thread's own copy of the
//! body (a shared cache costs every read its bookkeeping and reference counts that both cores write). Every
//! change of the shared cache bumps one counter after it is applied; a thread drops all its copies as soon
//! as it sees the counter move, so a copy never outlives the entry it was taken from.

use moka::ops::compute::Op;
use shared_types::TokenAccess;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Generations are kept per stripe of installations (a fixed array: memory does not follow the installations).
const STRIPES: usize = 1024;

pub struct Cached {
    pub answer: TokenAccess,
    /// The token row this came from ('' or a location id): the key the change feed names.
    pub row: String,
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
            .field("row", &self.row)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Cached {
    pub fn new(answer: TokenAccess, row: &str, expires_at_ms: i64, version: i64) -> Cached {
        let body = serde_json::to_vec(&answer)
            .map(bytes::Bytes::from)
            .unwrap_or_default();
        Cached {
            answer,
            row: row.to_owned(),
            body,
            expires_at_ms,
            version,
        }
    }
}

/// What a hit sends: the body, and when the token expires.
#[derive(Clone)]
pub struct Hit {
    /// `Cached::body`, copied once per thread: sending it touches no reference count another core writes.
    pub body: bytes::Bytes,
    pub expires_at_ms: i64,
}

/// One installation's copies, by scope key.
type ScopeHits = Vec<(Box<str>, Hit)>;

/// One thread's copies of entries it served, valid while the change counter reads `seen`.
#[derive(Default)]
struct Front {
    seen: u64,
    /// By installation, then scope key (an installation has one or two keys in use).
    hits: HashMap<Box<str>, ScopeHits, foldhash::fast::RandomState>,
    len: usize,
}

/// Copies one thread keeps at most; when full it starts over.
const FRONT_CAPACITY: usize = 1024;

/// The tokens of one installation, by scope key. Replaced whole on a change (copy on write), so a read holds
/// no lock once it has the `Arc`.
type Entries = HashMap<String, Arc<Cached>>;

/// Installations whose tokens are kept at most, and how long an unread one stays (tokens last a day).
const CAPACITY: u64 = 100_000;
const IDLE: Duration = Duration::from_secs(3600);

pub struct TokenCache {
    /// Bounded (`moka`): a change of an installation is computed on its entry alone (`and_compute_with`
    /// runs one change of a key at a time), so a put's generation check and a removal's bump never interleave.
    map: moka::sync::Cache<String, Arc<Entries>>,
    /// Bumped (inside the entry's compute) whenever entries of an installation of the stripe are dropped.
    generations: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    /// Puts share it; `clear` takes it alone, so no put checked before the clear lands after it.
    clearing: RwLock<()>,
    /// Hits are served only while the change feed was read recently enough (epoch ms); `i64::MAX` when no
    /// feed runs (one process, nothing else writes the database).
    synced_until_ms: AtomicI64,
    /// Off (`TOKEN_CACHE=false`): every read decrypts from the database, as the first read after another
    /// replica's refresh does. For measuring that path and for ruling the cache out while debugging.
    enabled: bool,
    /// Bumped after every change of `map` is applied (put, removal, clear): the threads' copies are stale.
    changes: AtomicU64,
    /// Each thread's copies of entries it served.
    front: thread_local::ThreadLocal<RefCell<Front>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(true)
    }
}

impl TokenCache {
    pub fn new(enabled: bool) -> TokenCache {
        TokenCache {
            map: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(IDLE)
                .build(),
            generations: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: Default::default(),
            clearing: RwLock::default(),
            synced_until_ms: AtomicI64::new(i64::MAX),
            enabled,
            changes: AtomicU64::new(0),
            front: thread_local::ThreadLocal::new(),
        }
    }

    /// A change of `map` was applied: no thread serves a copy taken before it.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// The hot path's read: this thread's copy if the cache has not changed since it was taken, else the entry
    /// (copied for next time).
    pub fn hit(&self, installation: &str, scope_key: &str) -> Option<Hit> {
        if !self.enabled {
            return None;
        }
        // Read before the shared cache: a change applied after this is seen by the next read.
        let changes = self.changes.load(Ordering::Acquire);
        let mut front = self.front.get_or_default().borrow_mut();
        if front.seen != changes {
            front.hits.clear();
            front.len = 0;
            front.seen = changes;
        }
        if let Some(hit) = front.hits.get(installation).and_then(|scopes| {
            scopes
                .iter()
                .find(|(scope, _)| &**scope == scope_key)
                .map(|(_, hit)| hit.clone())
        }) {
            return Some(hit);
        }
        let cached = self.get(installation, scope_key)?;
        let hit = Hit {
            body: bytes::Bytes::copy_from_slice(&cached.body),
            expires_at_ms: cached.expires_at_ms,
        };
        if front.len >= FRONT_CAPACITY {
            front.hits.clear();
            front.len = 0;
        }
        front.len += 1;
        front
            .hits
            .entry(installation.into())
            .or_default()
            .push((scope_key.into(), hit.clone()));
        Some(hit)
    }

    fn stripe(&self, installation: &str) -> &AtomicU64 {
        &self.generations[self.hasher.hash_one(installation) as usize % STRIPES]
    }

    /// Take this before loading a token of `installation` from the database; hand it to `put`.
    pub fn generation(&self, installation: &str) -> u64 {
        self.stripe(installation).load(Ordering::Acquire)
    }

    fn bump(&self, installation: &str) {
        self.stripe(installation).fetch_add(1, Ordering::AcqRel);
    }

    /// Whether hits may be served at `now_ms` (the change feed was read recently enough).
    pub fn is_fresh(&self, now_ms: i64) -> bool {
        now_ms < self.synced_until_ms.load(Ordering::Acquire)
    }

    /// The change feed was read: hits may be served until `until_ms`.
    pub fn synced_until(&self, until_ms: i64) {
        self.synced_until_ms.store(until_ms, Ordering::Release);
    }

    pub fn get(&self, installation: &str, scope_key: &str) -> Option<Arc<Cached>> {
        if !self.enabled {
            return None;
        }
        self.map.get(installation)?.get(scope_key).cloned()
    }

    /// How many installations have a token cached (for tests and the scale benchmark).
    pub fn installations(&self) -> u64 {
        self.map.run_pending_tasks();
        self.map.entry_count()
    }

    /// Whether any token of the installation is cached.
    pub fn holds(&self, installation: &str) -> bool {
        self.map.contains_key(installation)
    }

    /// Stores a token loaded after `generation` was taken, unless a change of the installation was applied
    /// since, or the cache already holds a newer version of it. When a change was applied since, the token is
    /// not stored (the change may be an uninstall), but the entries of its row older than it go all the same:
    /// they are stale for certain, and must not be served until the change feed reports this version.
    pub fn put(&self, installation: &str, scope_key: &str, cached: Cached, generation: u64) {
        if !self.enabled {
            return;
        }
        let _shared = self.clearing.read().unwrap_or_else(|p| p.into_inner());
        // The row and version the token replaces, when a change raced the load.
        let mut raced = None;
        self.map.entry_by_ref(installation).and_compute_with(|old| {
            if self.generation(installation) != generation {
                raced = Some((cached.row.clone(), cached.version));
                return Op::Nop;
            }
            let old = old.map(|e| e.into_value());
            if old
                .as_ref()
                .and_then(|m| m.get(scope_key))
                .is_some_and(|o| o.version > cached.version)
            {
                return Op::Nop;
            }
            let mut entries = old.map(|m| (*m).clone()).unwrap_or_default();
            entries.insert(scope_key.to_owned(), Arc::new(cached));
            Op::Put(Arc::new(entries))
        });
        match raced {
            // Bumps the generation too: loads that raced this one do not put the stale entries back.
            Some((row, version)) => self.remove_row(installation, &row, Some(version)),
            None => self.changed(),
        }
    }

    /// Changes the installation's entries with `keep` (what stays), bumping its generation first.
    fn retain(&self, installation: &str, keep: impl Fn(&str, &Cached) -> bool) {
        self.map.entry_by_ref(installation).and_compute_with(|old| {
            self.bump(installation);
            let Some(old) = old.map(|e| e.into_value()) else {
                return Op::Nop;
            };
            let entries: Entries = old
                .iter()
                .filter(|(k, c)| keep(k, c))
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect();
            if entries.is_empty() {
                Op::Remove
            } else {
                Op::Put(Arc::new(entries))
            }
        });
        self.changed();
    }

    /// Forgets one entry.
    pub fn remove(&self, installation: &str, scope_key: &str) {
        self.retain(installation, |k, _| k != scope_key);
    }

    /// Forgets every token of an installation (uninstall, needs_reauth, re-install).
    pub fn remove_installation(&self, installation: &str) {
        self.retain(installation, |_, _| false);
    }

    /// Forgets the entries that came from token row `row` of the installation and are older than `version`
    /// (`None`: the row was deleted, forget them all). A Location installation's own token is cached under
    /// two keys; both came from row ''.
    pub fn remove_row(&self, installation: &str, row: &str, version: Option<i64>) {
        self.retain(installation, |_, c| {
            c.row != row || version.is_some_and(|v| c.version >= v)
        });
    }

    /// Forgets everything (the change feed could not be followed: what changed meanwhile is unknown).
    pub fn clear(&self) {
        let _alone = self.clearing.write().unwrap_or_else(|p| p.into_inner());
        for g in self.generations.iter() {
            g.fetch_add(1, Ordering::AcqRel);
        }
        self.map.invalidate_all();
        self.changed();
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
            "",
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
        c.put("i", "", cached("new", 5), c.generation("i"));
        c.put("i", "", cached("old", 4), c.generation("i"));
        assert_eq!(c.get("i", "").unwrap().answer.access_token, "new");
        c.put("i", "L1", cached("loc", 1), c.generation("i"));
        c.remove_installation("i");
        assert!(c.get("i", "").is_none() && c.get("i", "L1").is_none());
    }

    #[test]
    fn a_threads_copy_never_outlives_a_change() {
        let c = TokenCache::default();
        let body = |h: Option<Hit>| h.map(|h| String::from_utf8(h.body.to_vec()).unwrap());
        c.put("i", "", cached("first", 1), c.generation("i"));
        std::thread::scope(|s| {
            // A server thread serves the token (and keeps its copy)...
            let reader = s.spawn(|| {
                assert!(body(c.hit("i", "")).unwrap().contains("first"));
                assert!(body(c.hit("i", "")).unwrap().contains("first"));
            });
            reader.join().unwrap();
        });
        assert!(body(c.hit("i", "")).unwrap().contains("first"));
        // ...a refresh elsewhere replaces it: every thread answers the new one at once.
        c.put("i", "", cached("second", 2), c.generation("i"));
        assert!(body(c.hit("i", "")).unwrap().contains("second"));
        std::thread::scope(|s| {
            s.spawn(|| assert!(body(c.hit("i", "")).unwrap().contains("second")));
        });
        c.put("i", "L1", cached("loc", 1), c.generation("i"));
        assert!(body(c.hit("i", "L1")).unwrap().contains("loc"));
        // An uninstall, and the change feed's loss of contact, leave no copy behind.
        c.remove_installation("i");
        assert!(c.hit("i", "").is_none() && c.hit("i", "L1").is_none());
        c.put("i", "", cached("third", 3), c.generation("i"));
        assert!(c.hit("i", "").is_some());
        c.clear();
        assert!(c.hit("i", "").is_none());
        assert!(TokenCache::new(false).hit("i", "").is_none());
    }

    #[test]
    fn a_load_that_raced_a_change_is_not_cached() {
        let c = TokenCache::default();
        let before = c.generation("i");
        // An uninstall is applied while the read was loading the token from the database.
        c.remove_installation("i");
        c.put("i", "", cached("stale", 1), before);
        assert!(
            c.get("i", "").is_none(),
            "the change is not undone by the put"
        );
        c.put("i", "", cached("fresh", 2), c.generation("i"));
        assert!(c.get("i", "").is_some());
    }

    #[test]
    fn a_refresh_that_raced_a_change_still_drops_the_token_it_replaced() {
        let c = TokenCache::default();
        c.put("i", "", cached("old", 1), c.generation("i"));
        let before = c.generation("i");
        // Any change of the installation applied while the refresh ran (here, an older version's late report).
        c.remove_row("i", "", Some(1));
        c.put("i", "", cached("renewed", 2), before);
        assert!(
            c.get("i", "").is_none(),
            "neither the replaced token nor the racing load is served"
        );
    }

    #[test]
    fn a_newer_version_elsewhere_drops_older_entries_of_that_row_only() {
        let c = TokenCache::default();
        let mut loc = cached("loc", 3);
        loc.row = "L1".into();
        c.put("i", "", cached("own", 3), c.generation("i"));
        c.put("i", "Own", cached("own", 3), c.generation("i"));
        c.put("i", "L1", loc, c.generation("i"));
        c.remove_row("i", "", Some(3));
        assert!(c.get("i", "").is_some(), "the same version stays");
        c.remove_row("i", "", Some(4));
        assert!(c.get("i", "").is_none() && c.get("i", "Own").is_none());
        assert!(c.get("i", "L1").is_some(), "another row's entry stays");
        c.remove_row("i", "L1", None);
        assert!(c.get("i", "L1").is_none());
    }
}
