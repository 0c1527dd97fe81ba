//! Tenant walls, written from docs/api.md: a service JWT's `installations` claim limits it in api-backend as
//! in oauth-backend; one tenant's request never changes what another is served; changing the payment provider
//! needs an admin; every refused user context gets the same answer.

use crate::common::*;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::{json, Value};
use service_common::both_backends;
use service_common::testing::Backend;
use service_common::ServiceAuth;

/// A service JWT limited to `installations`, for api-backend's audience or oauth-backend's (both accepted).
fn scoped_token(audience: &str, installations: &[&str]) -> String {
    ServiceAuth::for_audiences(&SERVICE_SECRET.to_owned().into(), &[audience])
        .issue(
            "scoped-job",
            300,
            Some(installations.iter().map(|s| s.to_string()).collect()),
        )
        .unwrap()
}

async fn session_for(s: &Stack, user: Value) -> String {
    let (status, body) = post(
        s,
        "/api/sessions",
        None,
        json!({"sso": sso_payload(&user, SSO_KEY)}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn a_scoped_service_jwt_stays_scoped(backend: Backend) {
    let s = stack(backend).await;
    let a = install(&s, "Location", &["Loc1"]).await;
    install(&s, "Location", &["Loc2"]).await;
    for audience in ["api-backend", "oauth-backend"] {
        let token = scoped_token(audience, &[&a]);
        let (status, body) = get(&s, "/api/locations/Loc1/products", &token).await;
        assert_eq!(status, 200, "{audience}: {body}");
        let before = sim_count(&s, "/products/");
        for (status, body) in [
            get(&s, "/api/locations/Loc2/products", &token).await,
            post(
                &s,
                "/api/locations/Loc2/products",
                Some(&token),
                json!({"name": "Not mine", "productType": "DIGITAL"}),
            )
            .await,
            get(&s, "/api/locations/Loc2/payments/provider", &token).await,
        ] {
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("caller_not_allowed")),
                "{audience}: {body}"
            );
        }
        assert_eq!(
            sim_count(&s, "/products/"),
            before,
            "nothing reached HighLevel"
        );
    }
}

async fn one_tenant_never_changes_what_another_is_served(backend: Backend) {
    let s = stack(backend).await;
    // comp1 installed agency-wide; comp2's location Other1 has its own install.
    install(&s, "Company", &["Loc1", "Loc2"]).await;
    install(&s, "Location", &["Other1"]).await;
    let agency1 = session(&s, None).await;
    let (status, registered) = put(&s, "/api/locations/Other1/payments/provider", &service_token(),
        json!({"name": "Theirs", "description": "comp2's gateway", "imageUrl": "https://x.test/p.png", "gateway": "sandbox"})).await;
    assert_eq!(status, 200, "{registered}");
    // What is stored here for another company's location is not an agency user's to read.
    let (status, body) = get(&s, "/api/locations/Other1/payments/provider", &agency1).await;
    assert!(status == 403 || status == 404, "{status} {body}");
    assert!(body.get("publishableKeys").is_none(), "{body}");
    let before = sim_count(&s, "/products/");
    for _ in 0..2 {
        let (status, body) = get(&s, "/api/locations/Other1/products", &agency1).await;
        assert!(
            status == 403 || status == 404,
            "an agency user of comp1 on comp2's location: {status} {body}"
        );
    }
    assert_eq!(sim_count(&s, "/products/"), before);
    // Right after, comp2's own user and a service are served by Other1's own installation.
    let other_user = session_for(
        &s,
        json!({"userId": "u-o", "companyId": "comp2", "role": "admin", "type": "location", "activeLocation": "Other1"}),
    )
    .await;
    let (status, body) = get(&s, "/api/locations/Other1/products", &other_user).await;
    assert_eq!(status, 200, "comp2's own user: {body}");
    let (status, body) = post(
        &s,
        "/api/locations/Other1/products",
        Some(&service_token()),
        json!({"name": "Served right", "productType": "DIGITAL"}),
    )
    .await;
    assert_eq!(status, 201, "a service: {body}");
}

async fn only_admins_change_the_payment_provider(backend: Backend) {
    let s = stack(backend).await;
    install(&s, "Location", &["Loc1"]).await;
    let provider = json!({"name": "Sandbox", "description": "Test payments", "imageUrl": "https://x.test/p.png", "gateway": "sandbox"});
    let user = |role: &str, kind: &str| {
        let mut u = json!({"userId": format!("u-{role}-{kind}"), "companyId": "comp1", "role": role, "type": kind});
        if kind == "location" {
            u["activeLocation"] = json!("Loc1");
        }
        u
    };
    let location_user = session_for(&s, user("user", "location")).await;
    let agency_user = session_for(&s, user("user", "agency")).await;
    let no_role = session_for(
        &s,
        json!({"userId": "u-none", "companyId": "comp1", "type": "location", "activeLocation": "Loc1"}),
    )
    .await;
    let before = sim_count(&s, "/payments/custom-provider");
    for token in [&location_user, &agency_user, &no_role] {
        for (status, body) in [
            put(
                &s,
                "/api/locations/Loc1/payments/provider",
                token,
                provider.clone(),
            )
            .await,
            delete(&s, "/api/locations/Loc1/payments/provider", token).await,
        ] {
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("admin_required")),
                "{body}"
            );
        }
    }
    assert_eq!(sim_count(&s, "/payments/custom-provider"), before);
    let admin = session_for(&s, user("admin", "location")).await;
    let (status, body) = put(
        &s,
        "/api/locations/Loc1/payments/provider",
        &admin,
        provider.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Reads stay open to users.
    let (status, body) = get(&s, "/api/locations/Loc1/payments/provider", &location_user).await;
    assert_eq!(status, 200, "{body}");
    let agency_admin = session_for(&s, user("admin", "agency")).await;
    let (status, body) = put(
        &s,
        "/api/locations/Loc1/payments/provider",
        &agency_admin,
        provider,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

both_backends!(
    a_scoped_service_jwt_stays_scoped,
    one_tenant_never_changes_what_another_is_served,
    only_admins_change_the_payment_provider,
);

/// Two refused user contexts, one whose last cipher block was corrupted (bad padding) and one that decrypts to
/// text that is not JSON, get the same status, code and detail: nothing to learn the padding from.
#[actix_web::test]
async fn every_refused_user_context_gets_the_same_answer() {
    let s = stack(Backend::Sqlite).await;
    let good = sso_payload(
        &json!({"userId": "u1", "companyId": "comp1", "role": "admin", "type": "agency"}),
        SSO_KEY,
    );
    let mut raw = B64.decode(&good).unwrap();
    let n = raw.len();
    raw[n - 17] ^= 0x5a; // the block before the last: garbles the last block's padding
    let bad_padding = B64.encode(&raw);
    let not_json = {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .args([
                "enc",
                "-aes-256-cbc",
                "-md",
                "md5",
                "-salt",
                "-a",
                "-A",
                "-pass",
            ])
            .arg(format!("pass:{SSO_KEY}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"this is not json at all")
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut answers = Vec::new();
    for sso in [
        bad_padding,
        not_json,
        "!!!".into(),
        good[..good.len() - 4].to_owned(),
    ] {
        let (status, body) = post(&s, "/api/sessions", None, json!({ "sso": sso })).await;
        answers.push((status, body["code"].clone(), body["detail"].clone()));
    }
    assert_eq!(answers[0].0, 401, "{answers:?}");
    for a in &answers[1..] {
        assert_eq!(a, &answers[0]);
    }
}
