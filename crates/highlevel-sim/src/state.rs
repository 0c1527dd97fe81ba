//! Everything the simulator remembers, in memory. One `World` behind one read-write lock: every handler
//! holds it briefly and never across an `.await`; reads (token lookups, lists) run in parallel.

use crate::config::SimConfig;
use crate::rate_limit::RateLimiter;
use crate::stats::Stats;
use crate::webhooks::SigningKeys;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenClass {
    Company,
    Location,
}

impl TokenClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenClass::Company => "Company",
            TokenClass::Location => "Location",
        }
    }
}

/// Who an installation belongs to: a company (agency-level) or a single location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstallKey {
    Company(String),
    Location(String),
}

#[derive(Debug, Clone)]
pub struct Location {
    pub id: String,
    pub company_id: String,
    pub name: String,
}

/// An issued access token as the platform knows it.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub class: TokenClass,
    /// Company id or location id, as the `authClassId` claim.
    pub class_id: String,
    pub company_id: String,
    pub scopes: Arc<BTreeSet<String>>,
    pub exp: i64,
    /// The `exp` written in the JWT's claims. `exp` is earlier only when `/_sim/tokens/expire` cut the token short.
    pub claims_exp: i64,
    /// Replaced by a refresh, or the install was removed.
    pub revoked: bool,
    pub install: Option<InstallKey>,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub install: InstallKey,
    pub alive: bool,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub install: InstallKey,
    pub used: bool,
    pub issued_at: i64,
}

#[derive(Debug, Clone)]
pub struct Install {
    pub class: TokenClass,
    pub company_id: String,
    pub location_id: Option<String>,
    pub scopes: Arc<BTreeSet<String>>,
    pub is_bulk: bool,
    pub approved_locations: Vec<String>,
    pub user_id: String,
    pub current_access: Option<String>,
    pub current_refresh: Option<String>,
    pub installed: bool,
}

#[derive(Debug, Default)]
pub struct World {
    pub locations: HashMap<String, Location>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub installs: HashMap<InstallKey, Install>,
    /// Per location: products by id, in creation order.
    pub products: HashMap<String, Vec<Value>>,
    /// Per product id: prices in creation order.
    pub prices: HashMap<String, Vec<Value>>,
    /// Per location: media files.
    pub medias: HashMap<String, Vec<Value>>,
    /// Per location: the custom payment provider and its connected keys.
    pub providers: HashMap<String, Value>,
    pub whitelabel: HashMap<String, Vec<Value>>,
    /// Payment events providers reported, in arrival order (repeats included).
    pub payment_events: Vec<Value>,
    /// Orders by id, as HighLevel records them when a checkout starts.
    pub orders: HashMap<String, Value>,
    /// Transactions by id (each belongs to an order: `entityId`).
    pub transactions: HashMap<String, Value>,
    /// Subscriptions by id, as HighLevel records them when a subscription checkout starts (each from an
    /// order: `entityId`; the product and price bought: `recurringProduct`).
    pub subscriptions: HashMap<String, Value>,
    /// Contacts by id (each with its `locationId`).
    pub contacts: HashMap<String, Value>,
    /// Sub-accounts suspended or deactivated (`POST /_sim/locations/{id}/status {"active": false}`): their
    /// refreshes are refused with `400 Location is not active`, their refresh tokens stay alive.
    pub inactive_locations: std::collections::HashSet<String>,
    /// Webhook deliveries answered `429`, waiting for HighLevel's retry (`POST /_sim/webhooks/retry`).
    pub pending_webhooks: Vec<PendingWebhook>,
    /// Resources created through operations the simulator does not model in depth, by id (at most
    /// `routes::generic::KEPT` of them), so a read after a create finds what was created.
    pub echoed: HashMap<String, Value>,
}

/// A signed webhook delivery to be made again exactly as it was (same bytes, same signatures).
#[derive(Debug, Clone)]
pub struct PendingWebhook {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    pub webhook_id: String,
    /// Deliveries so far (HighLevel makes up to six more after the first).
    pub attempts: u32,
}

impl World {
    pub fn locations_of_company(&self, company_id: &str) -> Vec<&Location> {
        let mut v: Vec<&Location> = self
            .locations
            .values()
            .filter(|l| l.company_id == company_id)
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Takes one location out of an install (a location-level uninstall): its own install is removed and its
    /// tokens die; an agency-level install of its company no longer lists it, and the Location tokens minted
    /// for it die. Answers whether anything was installed there.
    pub fn uninstall_location(&mut self, location_id: &str) -> bool {
        let own = InstallKey::Location(location_id.to_owned());
        let mut found = false;
        if let Some(i) = self.installs.get_mut(&own).filter(|i| i.installed) {
            i.installed = false;
            found = true;
            self.revoke_install_tokens(&own);
        }
        let company_keys: Vec<InstallKey> = self
            .installs
            .iter()
            .filter(|(k, i)| {
                matches!(k, InstallKey::Company(_))
                    && i.installed
                    && i.approved_locations.iter().any(|l| l == location_id)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in company_keys {
            if let Some(i) = self.installs.get_mut(&key) {
                i.approved_locations.retain(|l| l != location_id);
                found = true;
            }
            for t in self.access_tokens.values_mut() {
                if t.install.as_ref() == Some(&key)
                    && t.class == TokenClass::Location
                    && t.class_id == location_id
                {
                    t.revoked = true;
                }
            }
        }
        found
    }

    /// Kills every token of an install: its access tokens, refresh tokens and location tokens minted from it.
    pub fn revoke_install_tokens(&mut self, key: &InstallKey) {
        for t in self.access_tokens.values_mut() {
            if t.install.as_ref() == Some(key) {
                t.revoked = true;
            }
        }
        for r in self.refresh_tokens.values_mut() {
            if &r.install == key {
                r.alive = false;
            }
        }
    }
}

/// The shared application state of one simulator.
pub struct Sim {
    pub config: SimConfig,
    world: RwLock<World>,
    pub rate: RateLimiter,
    pub stats: Stats,
    pub faults: crate::faults::Faults,
    pub keys: &'static SigningKeys,
    pub jwt_key: jsonwebtoken::EncodingKey,
    pub http: reqwest::Client,
}

impl Sim {
    /// Fails only if its HTTP client (webhook and queryUrl calls) cannot be built: no fallback to one without
    /// timeouts.
    pub fn new(config: SimConfig) -> Result<Self, reqwest::Error> {
        let secret: [u8; 32] = rand::random();
        let rate = RateLimiter::new(config.rate_burst, config.rate_window_ms, config.rate_daily);
        Ok(Sim {
            config,
            world: RwLock::new(World::default()),
            rate,
            stats: Stats::default(),
            faults: crate::faults::Faults::default(),
            keys: SigningKeys::shared(),
            jwt_key: jsonwebtoken::EncodingKey::from_secret(&secret),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
        })
    }

    /// The world, even if a panicking thread poisoned the lock (the data stays consistent: no handler
    /// leaves it half-written across a panic point).
    pub fn world(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The world for reading only: many readers at once.
    pub fn world_read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn reset(&self) {
        *self.world() = World::default();
        self.rate.reset();
        self.stats.reset();
        self.faults.clear();
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A HighLevel-looking id: 20 lowercase alphanumerics (Mongo-ish ids are 24 hex; either is opaque to clients).
pub fn new_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
