//! Issuing HighLevel-like tokens: access tokens are JWTs whose claims say what they may do (`authClass`,
//! `authClassId`, `sourceId` = client id, `oauthMeta.scopes`, `iat`, `exp`); refresh tokens rotate on use.

use crate::state::{
    now_secs, AccessToken, Install, InstallKey, RefreshToken, Sim, TokenClass, World,
};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessClaims<'a> {
    auth_class: &'a str,
    auth_class_id: &'a str,
    source: &'a str,
    source_id: &'a str,
    channel: &'a str,
    primary_auth_class_id: &'a str,
    oauth_meta: Value,
    iat: i64,
    exp: i64,
    jti: String,
}

fn jti() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Mints an access token and records it.
pub fn issue_access(
    sim: &Sim,
    world: &mut World,
    class: TokenClass,
    class_id: &str,
    company_id: &str,
    scopes: Arc<BTreeSet<String>>,
    install: Option<InstallKey>,
) -> (String, i64) {
    let iat = now_secs();
    let exp = iat + sim.config.access_token_ttl;
    let claims = AccessClaims {
        auth_class: class.as_str(),
        auth_class_id: class_id,
        source: "INTEGRATION",
        source_id: &sim.config.client_id,
        channel: "OAUTH",
        primary_auth_class_id: class_id,
        oauth_meta: json!({
            "scopes": scopes.iter().collect::<Vec<_>>(),
            "client": sim.config.client_id.split('-').next().unwrap_or(&sim.config.client_id),
            "clientKey": sim.config.client_id,
            "versionId": sim.config.app_id,
        }),
        iat,
        exp,
        jti: jti(),
    };
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &sim.jwt_key)
        .unwrap_or_else(|_| format!("sim-access-{}", jti()));
    world.access_tokens.insert(
        token.clone(),
        AccessToken {
            class,
            class_id: class_id.to_owned(),
            company_id: company_id.to_owned(),
            scopes,
            exp,
            claims_exp: exp,
            revoked: false,
            install,
        },
    );
    (token, sim.config.access_token_ttl)
}

fn issue_refresh(
    sim: &Sim,
    world: &mut World,
    key: &InstallKey,
    class: TokenClass,
    class_id: &str,
) -> String {
    let claims = json!({
        "authClass": class.as_str(),
        "authClassId": class_id,
        "sourceId": sim.config.client_id,
        "tokenType": "refresh",
        "iat": now_secs(),
        "jti": jti(),
    });
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &sim.jwt_key)
        .unwrap_or_else(|_| format!("sim-refresh-{}", jti()));
    world.refresh_tokens.insert(
        token.clone(),
        RefreshToken {
            install: key.clone(),
            alive: true,
        },
    );
    token
}

/// Gives an install a fresh pair: the previous access token is revoked and the previous refresh token is dead.
/// Answers HighLevel's `/oauth/token` body.
pub fn new_pair(sim: &Sim, world: &mut World, key: &InstallKey) -> Option<Value> {
    let install = world.installs.get(key)?.clone();
    if let Some(old) = &install.current_access {
        if let Some(t) = world.access_tokens.get_mut(old) {
            t.revoked = true;
        }
    }
    if let Some(old) = &install.current_refresh {
        if let Some(r) = world.refresh_tokens.get_mut(old) {
            r.alive = false;
        }
    }
    let class_id = match key {
        InstallKey::Company(c) => c.clone(),
        InstallKey::Location(l) => l.clone(),
    };
    let (access, ttl) = issue_access(
        sim,
        world,
        install.class,
        &class_id,
        &install.company_id,
        install.scopes.clone(),
        Some(key.clone()),
    );
    let refresh = issue_refresh(sim, world, key, install.class, &class_id);
    if let Some(i) = world.installs.get_mut(key) {
        i.current_access = Some(access.clone());
        i.current_refresh = Some(refresh.clone());
    }
    Some(token_body(&install, &access, ttl, &refresh))
}

fn token_body(install: &Install, access: &str, ttl: i64, refresh: &str) -> Value {
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
        "scope": install.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        "userType": install.class.as_str(),
        "companyId": install.company_id,
        "userId": install.user_id,
        "planId": "sim-plan",
        "isBulkInstallation": install.is_bulk,
    });
    if let Some(l) = &install.location_id {
        body["locationId"] = json!(l);
    }
    if install.class == TokenClass::Company {
        body["approvedLocations"] = json!(install.approved_locations);
    }
    body
}
