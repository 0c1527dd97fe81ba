//! HighLevel's app shell around an app's own page (a custom menu link or custom page), as a control route:
//!
//! `GET /_sim/app?locationId=&companyId=&userType=location|agency&role=admin|user&src=<url>[&userId=][&userName=][&email=]`
//!
//! The shell frames `src` and answers the page's `postMessage({message:"REQUEST_USER_DATA"})` with
//! `{message:"REQUEST_USER_DATA_RESPONSE", payload}`, the payload being the user context JSON encrypted with the
//! app's Shared Secret in CryptoJS's passphrase format (see [`crate::sso`]), as HighLevel does. The answer goes
//! to the origin of `src` only, and only to the framed page.
//!
//! Defaults: `userType` is `location` when `locationId` is given, else `agency`; `role` is `admin`; `companyId`
//! may be left out for a location the simulator knows (its company is used). A location user's context carries
//! `activeLocation`. An agency user's carries it only when `locationId` is given: the agency user has opened the
//! app inside that sub-account (HighLevel's "location context"); without it, it is the agency view.

use crate::routes::query;
use crate::state::Sim;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sim/app", web::get().to(app_shell));
}

fn refuse(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"statusCode": 400, "message": message}))
}

/// The user context HighLevel would hand the page, from the shell's query; a message when the query is wrong.
fn user_context(sim: &Sim, q: &std::collections::HashMap<String, String>) -> Result<Value, String> {
    let non_empty = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let location = non_empty("locationId");
    let kind = non_empty("userType").unwrap_or(if location.is_some() {
        "location"
    } else {
        "agency"
    });
    if kind != "location" && kind != "agency" {
        return Err("userType must be location or agency".into());
    }
    let role = non_empty("role").unwrap_or("admin");
    if role != "admin" && role != "user" {
        return Err("role must be admin or user".into());
    }
    let known_company = location.and_then(|l| {
        sim.world_read()
            .locations
            .get(l)
            .map(|loc| loc.company_id.clone())
    });
    let company = match (non_empty("companyId"), &known_company) {
        (Some(c), Some(k)) if c != k => {
            return Err(format!(
                "location {} belongs to company {k}, not {c}",
                location.unwrap_or_default()
            ))
        }
        (Some(c), _) => c.to_owned(),
        (None, Some(k)) => k.clone(),
        (None, None) => return Err(
            "companyId is required (or a locationId the simulator knows, whose company is used)"
                .into(),
        ),
    };
    let user_id = non_empty("userId")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sim-{kind}-{role}"));
    let mut user = json!({
        "userId": user_id,
        "companyId": company,
        "role": role,
        "type": kind,
        "userName": non_empty("userName").unwrap_or("Sim User"),
        "email": non_empty("email").map(str::to_owned).unwrap_or_else(|| format!("{user_id}@example.test")),
        "isAgencyOwner": kind == "agency" && role == "admin",
    });
    match location {
        Some(l) => user["activeLocation"] = json!(l),
        None if kind == "location" => return Err("a location user needs locationId".into()),
        None => {}
    }
    Ok(user)
}

async fn app_shell(req: actix_web::HttpRequest, sim: web::Data<Sim>) -> HttpResponse {
    let q = query(&req);
    let Some(src) = q.get("src").and_then(|s| url::Url::parse(s).ok()) else {
        return refuse("src (the absolute URL of the app's page) is required");
    };
    if src.scheme() != "http" && src.scheme() != "https" {
        return refuse("src must be an http: or https: URL");
    }
    let user = match user_context(&sim, &q) {
        Ok(u) => u,
        Err(message) => return refuse(&message),
    };
    let payload = crate::sso::encrypt(&sim.config.sso_key, &user.to_string());
    let page_origin = src.origin().ascii_serialization();
    // JSON inside a <script>: `<` escaped so no string can close the element.
    let js = |v: &Value| v.to_string().replace('<', "\\u003c");
    let text = |v: &Value| html_escape::encode_text(v.as_str().unwrap_or_default()).into_owned();
    let location = user
        .get("activeLocation")
        .map(text)
        .unwrap_or_else(|| "(agency view)".into());
    let html = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>App (HighLevel simulator)</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; background: #f3f4f6; }}
body {{ display: flex; flex-direction: column; height: 100vh; }}
header {{ padding: 8px 16px; background: #1f2937; color: #f9fafb; font-size: 14px; }}
header details {{ display: inline-block; margin-left: 12px; }}
header pre {{ color: #111827; background: #f9fafb; padding: 8px; }}
iframe {{ display: block; border: 0; width: 100%; flex: 1; background: #fff; }}
</style></head>
<body>
<header>
<strong>HighLevel</strong> (simulator) &middot; {kind} user <span id="user">{user_name}</span> (<span id="role">{role}</span>)
&middot; company <span id="company">{company}</span> &middot; location <span id="location">{location}</span>
&middot; <span id="answered">0</span> user-data request(s) answered
<details><summary>user context</summary><pre id="context">{context}</pre></details>
</header>
<iframe id="app" src="{src}" title="the app's page"></iframe>
<script>
(function () {{
  var payload = {payload_js};
  var pageOrigin = {origin_js};
  var frame = document.getElementById("app");
  window.answered = 0;
  window.addEventListener("message", function (e) {{
    if (e.source !== frame.contentWindow) return;
    var d = e.data;
    if (typeof d === "string") {{ try {{ d = JSON.parse(d); }} catch (x) {{ return; }} }}
    if (!d || d.message !== "REQUEST_USER_DATA") return;
    frame.contentWindow.postMessage({{message: "REQUEST_USER_DATA_RESPONSE", payload: payload}}, pageOrigin);
    window.answered += 1;
    document.getElementById("answered").textContent = String(window.answered);
  }});
}})();
</script>
</body></html>"#,
        kind = text(&user["type"]),
        user_name = text(&user["userName"]),
        role = text(&user["role"]),
        company = text(&user["companyId"]),
        context =
            html_escape::encode_text(&serde_json::to_string_pretty(&user).unwrap_or_default()),
        src = html_escape::encode_double_quoted_attribute(src.as_str()),
        payload_js = js(&json!(payload)),
        origin_js = js(&json!(page_origin)),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Location;
    use std::collections::HashMap;

    fn sim() -> Sim {
        let sim = Sim::new(crate::SimConfig::default()).expect("an HTTP client");
        sim.world().locations.insert(
            "L1".into(),
            Location {
                id: "L1".into(),
                company_id: "C1".into(),
                name: "One".into(),
            },
        );
        sim
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_location_user_gets_its_company_and_active_location() {
        let u = user_context(&sim(), &q(&[("locationId", "L1"), ("role", "user")])).unwrap();
        assert_eq!(u["type"], "location");
        assert_eq!(u["companyId"], "C1");
        assert_eq!(u["activeLocation"], "L1");
        assert_eq!(u["role"], "user");
        assert_eq!(u["isAgencyOwner"], false);
    }

    #[test]
    fn an_agency_user_has_no_active_location() {
        let u = user_context(&sim(), &q(&[("companyId", "C1"), ("userType", "agency")])).unwrap();
        assert_eq!(u["type"], "agency");
        assert!(u.get("activeLocation").is_none());
        assert_eq!(u["isAgencyOwner"], true);
    }

    #[test]
    fn an_agency_user_inside_a_sub_account_has_its_active_location() {
        let u = user_context(&sim(), &q(&[("locationId", "L1"), ("userType", "agency")])).unwrap();
        assert_eq!(
            (u["type"].as_str(), u["companyId"].as_str()),
            (Some("agency"), Some("C1"))
        );
        assert_eq!(u["activeLocation"], "L1");
    }

    #[test]
    fn wrong_queries_are_refused() {
        let s = sim();
        for bad in [
            q(&[("locationId", "L1"), ("companyId", "C2")]),
            q(&[("locationId", "L1"), ("role", "owner")]),
            q(&[("companyId", "C1"), ("userType", "location")]),
            q(&[("userType", "agency")]),
        ] {
            assert!(user_context(&s, &bad).is_err(), "{bad:?}");
        }
    }
}
