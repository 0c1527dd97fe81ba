//! The HighLevel proxy: `/api/locations/{locationId}/highlevel/{path…}` and
//! `/api/companies/{companyId}/highlevel/{path…}`, any method, forwarded to HighLevel's `/{path…}` with the
//! token the operation needs, through the same client as the typed routes (token choice through the bridge,
//! pacing, the 401 refresh-and-replay, retries for idempotent methods, diagnosis, request ids, metrics by
//! endpoint name), and `Idempotency-Key` on POST (the first answer is kept and replayed).
//!
//! It is no open relay: the path must be an operation of HighLevel's own files (`highlevel_client::operations`),
//! with that method, and the token class the route brings (Location on location routes, Company on company
//! routes) must be one the operation takes; the path's location (or company) is enforced on every `locationId`
//! (or `companyId`) the query or JSON body names. Each refusal is a problem body, and nothing is sent.

use super::{idempotency_key, CompanyAdmin, ProxyLocated, State};
use crate::error::ApiError;
use crate::store::{self, idempotency::Claim, now_ms};
use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use highlevel_client::diagnosis::{self, Context, Presented};
use highlevel_client::endpoints::Method;
use highlevel_client::operations::{self, Lookup};
use highlevel_client::{Body, HlError, Request, Streamed, TokenSource};
use serde_json::Value;
use shared_types::{AuthClass, Problem};

/// Bodies larger than this are refused with 413 before anything is sent.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/locations/{locationId}/highlevel/{path:.*}")
            .route(web::route().to(location_call)),
    )
    .service(
        web::resource("/api/companies/{companyId}/highlevel/{path:.*}")
            .route(web::route().to(company_call)),
    );
}

/// Forward a call to HighLevel with the location's Location token.
#[utoipa::path(post, path = "/api/locations/{locationId}/highlevel/{path}", operation_id = "proxyLocation", tag = "highlevel",
    description = "Any method (GET, POST, PUT, PATCH, DELETE): HighLevel's `/{path}` with this location's Location token. HighLevel's status, Content-Type, X-RateLimit-* headers and body pass through on success, the body streamed up to PROXY_ANSWER_LIMIT (declared longer: 502 `highlevel_answer_too_large`; growing past it: cut off).",
    params(("locationId" = String, Path), ("path" = String, Path, description = "HighLevel's path, e.g. `contacts/`"),
        ("Idempotency-Key" = Option<String>, Header, description = "POST only: same key + same request → the first answer")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "HighLevel's answer"), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn location_call(
    ProxyLocated(at): ProxyLocated,
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tokens = at.tokens(&state);
    let scope = Scope {
        class: AuthClass::Location,
        location: Some(&at.location),
        company: &at.company_id,
    };
    forward(&req, &state, payload, &tokens, scope).await
}

/// Forward a call to HighLevel with the company's Company token.
#[utoipa::path(post, path = "/api/companies/{companyId}/highlevel/{path}", operation_id = "proxyCompany", tag = "highlevel",
    description = "Any method (GET, POST, PUT, PATCH, DELETE): HighLevel's `/{path}` with the company's Company (agency) token. A service JWT or an admin of that agency only.",
    params(("companyId" = String, Path), ("path" = String, Path, description = "HighLevel's path, e.g. `locations/search`"),
        ("Idempotency-Key" = Option<String>, Header, description = "POST only: same key + same request → the first answer")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "HighLevel's answer"), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn company_call(
    at: CompanyAdmin,
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tokens = at.tokens(&state);
    let scope = Scope {
        class: AuthClass::Company,
        location: None,
        company: &at.company_id,
    };
    forward(&req, &state, payload, &tokens, scope).await
}

/// What the route lets the call act on.
struct Scope<'a> {
    class: AuthClass,
    /// Location routes: the only location the call may name.
    location: Option<&'a str>,
    /// The only company the call may name.
    company: &'a str,
}

/// HighLevel's path from the raw request path (never the decoded one: an encoded `/` must be seen).
fn highlevel_path(raw: &str) -> Result<String, ApiError> {
    // /api/{locations|companies}/{id}/highlevel/{rest}
    let rest = raw
        .splitn(6, '/')
        .nth(5)
        .ok_or_else(|| ApiError::InvalidPath("the path names no HighLevel endpoint".into()))?;
    let lower = rest.to_ascii_lowercase();
    if let Some(bad) = ["%2f", "%5c", "%2e", "%00"]
        .into_iter()
        .find(|e| lower.contains(e))
    {
        return Err(ApiError::InvalidPath(format!(
            "the path carries the encoded character `{bad}`; HighLevel's paths never need it"
        )));
    }
    if rest.contains('\\') {
        return Err(ApiError::InvalidPath("the path carries a backslash".into()));
    }
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    if trimmed.is_empty() {
        return Err(ApiError::InvalidPath(
            "the path names no HighLevel endpoint".into(),
        ));
    }
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(ApiError::InvalidPath(format!(
                "the path has a `{seg}` segment; send HighLevel's path as it is documented"
            )));
        }
    }
    Ok(format!("/{rest}"))
}

/// The names a call may give a location (or company) by: HighLevel's `locationId`, the snake-case form some
/// families take (`opportunities/search`), and lists of them.
const LOCATION_KEYS: &[&str] = &["locationId", "location_id", "locationIds", "location_ids"];
const COMPANY_KEYS: &[&str] = &["companyId", "company_id", "companyIds", "company_ids"];

/// A query key as HighLevel's parser reads it: `locationId[]` and `locationId[0]` are `locationId`.
fn base_key(key: &str) -> &str {
    key.split('[').next().unwrap_or(key)
}

/// A named value: `None` when it is not a string (a number or an object where an id belongs is refused).
type NamedValue<'v> = Option<&'v str>;

fn push_value<'v>(v: &'v Value, out: &mut Vec<NamedValue<'v>>) {
    match v {
        Value::String(s) => out.push(Some(s)),
        Value::Array(items) => items.iter().for_each(|i| match i {
            Value::String(s) => out.push(Some(s)),
            _ => out.push(None),
        }),
        _ => out.push(None),
    }
}

/// Every value under one of `keys` anywhere in a JSON body, and with `alt_type`, every `altId` of an object
/// whose `altType` is it (products, invoices, payments and media name a location that way).
fn named<'v>(
    body: &'v Value,
    keys: &[&str],
    alt_type: Option<&str>,
    out: &mut Vec<NamedValue<'v>>,
) {
    match body {
        Value::Object(o) => {
            if let (Some(t), Some(Value::String(alt))) = (alt_type, o.get("altType")) {
                if alt.eq_ignore_ascii_case(t) {
                    if let Some(id) = o.get("altId") {
                        push_value(id, out);
                    }
                }
            }
            for (k, v) in o {
                if keys.contains(&base_key(k)) {
                    push_value(v, out);
                } else {
                    named(v, keys, alt_type, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| named(v, keys, alt_type, out)),
        _ => {}
    }
}

/// Refuses a call naming another location (or company) than the route's, in its path, query or body.
fn enforce(
    scope: &Scope<'_>,
    found: &operations::Found,
    query: &[(String, String)],
    body: &Value,
) -> Result<(), ApiError> {
    let mut rules: Vec<(&str, &[&str], Option<&str>, &str)> =
        vec![("companyId", COMPANY_KEYS, Some("company"), scope.company)];
    if let Some(l) = scope.location {
        rules.push(("locationId", LOCATION_KEYS, Some("location"), l));
    }
    let query_alt_type = query
        .iter()
        .find(|(k, _)| base_key(k) == "altType")
        .map(|(_, v)| v.as_str());
    for (name, keys, alt_type, allowed) in rules {
        let mut values: Vec<NamedValue<'_>> = found
            .params
            .iter()
            .filter(|(n, _)| keys.contains(n))
            .map(|(_, v)| Some(v.as_str()))
            .collect();
        for (k, v) in query {
            let key = base_key(k);
            let alt = key == "altId"
                && alt_type
                    .is_some_and(|t| query_alt_type.is_some_and(|q| q.eq_ignore_ascii_case(t)));
            if keys.contains(&key) || alt {
                // A list may come comma-separated in one value.
                values.extend(v.split(',').map(|one| Some(one.trim())));
            }
        }
        named(body, keys, alt_type, &mut values);
        for value in values {
            match value {
                Some(v) if v == allowed => {}
                Some(other) => {
                    return Err(ApiError::LocationNotAllowed(format!(
                        "the call names {name} `{}` but this route acts for `{allowed}` only",
                        other.chars().take(70).collect::<String>()
                    )))
                }
                None => {
                    return Err(ApiError::LocationNotAllowed(format!(
                        "the call gives a {name} that is not a string; this route acts for `{allowed}` only"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// Reads the body, refusing it past [`BODY_LIMIT`] (by its declared length first, then as it arrives).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::BytesMut, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than {BODY_LIMIT} bytes, the proxy's limit"
        ))
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::InvalidRequest(format!("the body was cut off: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn forward<S: TokenSource>(
    req: &HttpRequest,
    state: &State,
    payload: web::Payload,
    tokens: &S,
    scope: Scope<'_>,
) -> Result<HttpResponse, ApiError> {
    let path = highlevel_path(req.uri().path())?;
    let method =
        Method::parse(req.method().as_str()).ok_or_else(|| ApiError::MethodNotAllowed {
            detail: format!("HighLevel's API has no {} operations", req.method()),
            allowed: vec![],
        })?;
    let found = match operations::find(method, &path) {
        Lookup::Found(f) => f,
        Lookup::WrongMethod(allowed) => {
            return Err(ApiError::MethodNotAllowed {
                detail: format!("{path} has no {} operation", method.as_str()),
                allowed: allowed.iter().map(|m| m.as_str().to_owned()).collect(),
            })
        }
        Lookup::Unknown(closest) => {
            return Err(ApiError::UnknownEndpoint {
                detail: format!(
                    "{} {path} is no operation of HighLevel's API",
                    method.as_str()
                ),
                closest,
            })
        }
    };
    // Token grants would hand HighLevel tokens to the caller: they stay inside oauth-backend.
    if found.operation.path.starts_with("/oauth/") {
        return Err(ApiError::UnknownEndpoint {
            detail: format!(
                "{} {} is HighLevel's OAuth; the proxy does not pass it on (tokens stay inside this service)",
                method.as_str(),
                found.operation.path
            ),
            closest: vec![],
        });
    }
    let endpoint = found.endpoint(scope.class);
    // The wrong class is known from the table alone: refused before any token is fetched or minted.
    let class_only = Presented {
        class: Some(scope.class),
        ..Presented::default()
    };
    if let Some(diagnosis) = diagnosis::predict(&Context {
        endpoint,
        token: &class_only,
        location: None,
        app_client_id: None,
    })
    .filter(|d| d.cause != shared_types::Cause::WrongProviderEndpoint)
    {
        return Err(HlError::WouldBeRefused {
            endpoint: endpoint.name,
            diagnosis: with_class_basis(diagnosis, found.operation, scope.class),
        }
        .into());
    }
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let raw = read_body(req, payload).await?;
    let body = if raw.is_empty() {
        Value::Null
    } else {
        let json = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "the proxy passes JSON bodies only: send Content-Type: application/json".into(),
            ));
        }
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::InvalidRequest(format!("the body is not valid JSON: {e}")))?
    };
    enforce(&scope, &found, &query, &body)?;
    let key = match method {
        Method::Post => idempotency_key(req)?,
        _ => None,
    };
    // Computed before the body moves into the request: the same key must come with the same request.
    let hash = key.as_ref().map(|_| {
        use sha2::{Digest, Sha256};
        let text = format!("POST {}?{}\n{body}", found.path, req.query_string());
        format!("{:x}", Sha256::digest(text.as_bytes()))
    });
    let request = Request {
        endpoint,
        path: found.path.clone(),
        query,
        body: if body.is_null() {
            Body::Empty
        } else {
            Body::Json(body)
        },
        location: scope.location.map(str::to_owned),
    };
    let (Some(key), Some(hash)) = (key, hash) else {
        return send(state, tokens, &request).await;
    };
    // Keys of company routes live apart from any location's.
    let owner_of_key = match scope.location {
        Some(l) => l.to_owned(),
        None => format!("company:{}", scope.company),
    };
    once(
        state,
        &owner_of_key,
        &key,
        hash,
        send(state, tokens, &request),
    )
    .await
}

/// A refusal for the wrong token class, on an operation whose class HighLevel's file does not name, says that the
/// class is the table's reading (from the scope table, or assumed) and why, and what to do if it is wrong.
fn with_class_basis(
    mut diagnosis: shared_types::Diagnosis,
    operation: &operations::Operation,
    presented: AuthClass,
) -> shared_types::Diagnosis {
    use shared_types::Cause;
    let class_refused = matches!(
        diagnosis.cause,
        Cause::CompanyTokenOnLocationEndpoint | Cause::LocationTokenOnCompanyEndpoint
    );
    if let Some(basis) = operation.class_basis().filter(|_| class_refused) {
        diagnosis.detail = format!("{}; the class is assumed: {basis}", diagnosis.detail);
        diagnosis.fix = format!(
            "{} If HighLevel does take a {} token here (its documentation or a live call shows it), the \
             operations table is wrong for this route: report it, with the evidence, so it is corrected.",
            diagnosis.fix,
            presented.as_str()
        );
    }
    diagnosis
}

/// Sends the call; on success HighLevel's status, passed headers and body, streamed as it arrives and never past
/// `PROXY_ANSWER_LIMIT`: an answer declared longer is refused (502 `highlevel_answer_too_large`) before any of
/// it is read, one that grows past the limit while streaming is cut off there.
async fn send<S: TokenSource>(
    state: &State,
    tokens: &S,
    request: &Request,
) -> Result<HttpResponse, ApiError> {
    let answer = state.hl.call_streamed(tokens, request).await?;
    let limit = state.settings.proxy_answer_limit;
    if let Some(declared) = answer.declared_len.filter(|n| *n > limit) {
        tracing::warn!(
            endpoint = answer.endpoint(),
            declared,
            limit,
            "HighLevel's answer is over the proxy's limit; refused"
        );
        return Err(ApiError::HighlevelAnswerTooLarge(format!(
            "HighLevel's answer to {} {} is {declared} bytes, more than the proxy passes on ({limit} bytes, PROXY_ANSWER_LIMIT)",
            request.endpoint.method.as_str(),
            request.endpoint.path,
        )));
    }
    let mut res =
        HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
    for (name, value) in &answer.headers {
        res.insert_header((name.as_str(), value.as_str()));
    }
    let declared = answer.declared_len;
    let body = capped(answer, limit);
    Ok(match declared {
        Some(len) => res.body(SizedStream::new(len, body)),
        None => res.streaming(body),
    })
}

/// The body of a streamed answer, ending in an error (which closes the connection mid-body) once it has grown
/// past `limit` bytes or HighLevel's side of it broke off. It is read after the handler has returned, outside
/// the request's context: each read runs in the context current when the stream is made (the request's), so
/// what it logs carries the request id.
fn capped(
    answer: Streamed,
    limit: u64,
) -> impl futures::Stream<Item = Result<web::Bytes, ApiError>> + 'static {
    use futures::future::Either;
    let request = service_common::http::RequestInfo::current();
    futures::stream::unfold(Some((answer, 0u64)), move |at| match request.clone() {
        Some(request) => Either::Left(request.scope(next_capped(at, limit))),
        None => Either::Right(next_capped(at, limit)),
    })
}

/// One step of [`capped`].
async fn next_capped(
    at: Option<(Streamed, u64)>,
    limit: u64,
) -> Option<(Result<web::Bytes, ApiError>, Option<(Streamed, u64)>)> {
    let (mut answer, sent) = at?;
    match answer.chunk().await {
        Ok(Some(chunk)) => {
            let sent = sent + chunk.len() as u64;
            if sent > limit {
                tracing::warn!(
                    endpoint = answer.endpoint(),
                    limit,
                    "HighLevel's answer grew past the proxy's limit; cut off"
                );
                let e = ApiError::HighlevelAnswerTooLarge(format!(
                    "HighLevel's answer grew past the proxy's limit of {limit} bytes (PROXY_ANSWER_LIMIT)"
                ));
                return Some((Err(e), None));
            }
            Some((Ok(chunk), Some((answer, sent))))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(endpoint = answer.endpoint(), error = %e, "HighLevel's answer broke off while streaming");
            Some((Err(e.into()), None))
        }
    }
}

/// A POST with `Idempotency-Key`: run once per (location or company, key) and request; a repeat gets the first
/// answer (`Idempotent-Replayed: true`). Answers and refusals are kept; failures worth retrying (HighLevel
/// unavailable, rate limited) release the key. The key is leased to this instance while the call runs, as for
/// the composite product create.
async fn once(
    state: &State,
    scope: &str,
    key: &str,
    hash: String,
    run: impl std::future::Future<Output = Result<HttpResponse, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let (s, k, leases) = (scope.to_owned(), key.to_owned(), state.leases.clone());
    let claim = state
        .db
        .run(move |c| {
            let now = now_ms();
            store::idempotency::claim_held(c, &s, &k, &hash, leases.holder(now), now)
        })
        .await?;
    match claim {
        Claim::Run { .. } => {}
        Claim::Replay { status, body } => {
            state.metrics.idempotent_replays.inc();
            let mut res =
                HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
            res.insert_header(("Idempotent-Replayed", "true"));
            res.content_type(if status >= 400 {
                Problem::CONTENT_TYPE
            } else {
                "application/json"
            });
            return Ok(res.body(body));
        }
        Claim::Mismatch => return Err(ApiError::IdempotencyKeyReused),
        Claim::InProgress => return Err(ApiError::IdempotencyInProgress),
    }
    let lease = state.leases.hold(&state.db, scope, key);
    // The answer (or the refusal) is kept as text for a repeat, then answered as it was: this one answer is read
    // whole, up to PROXY_ANSWER_LIMIT.
    let limit = usize::try_from(state.settings.proxy_answer_limit).unwrap_or(usize::MAX);
    let read = match run.await {
        Ok(res) => {
            let (head, body) = res.into_parts();
            match actix_web::body::to_bytes_limited(body, limit).await {
                Ok(Ok(bytes)) => Ok((head, bytes)),
                // The stream broke off (`capped`): past the limit, or HighLevel's side was lost.
                Ok(Err(e)) => Err(match e.downcast_ref::<ApiError>() {
                    Some(ApiError::HighlevelAnswerTooLarge(why)) => {
                        ApiError::HighlevelAnswerTooLarge(why.clone())
                    }
                    _ => ApiError::HighLevel(HlError::Unavailable {
                        reason: format!("HighLevel's answer was cut off: {e}"),
                        maybe_applied: true,
                    }),
                }),
                Err(_) => Err(ApiError::HighlevelAnswerTooLarge(format!(
                    "HighLevel's answer is larger than the proxy passes on ({limit} bytes, PROXY_ANSWER_LIMIT)"
                ))),
            }
        }
        Err(e) => Err(e),
    };
    let (outcome, status, text) = match read {
        Ok((head, bytes)) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let status = head.status().as_u16();
            (Ok(head.set_body(bytes).map_into_boxed_body()), status, text)
        }
        Err(e) => {
            let p = e.problem();
            let text = serde_json::to_string(&p).unwrap_or_default();
            (Err(e), p.status, text)
        }
    };
    // HighLevel acted on a call whose answer was too large: a repeat gets the same refusal, not a second create.
    let keep = (status < 500 && status != 429)
        || matches!(outcome, Err(ApiError::HighlevelAnswerTooLarge(_)));
    drop(lease);
    let (s, k, owner) = (scope.to_owned(), key.to_owned(), state.leases.owner.clone());
    // HighLevel may have acted: the record must survive a short database outage.
    let within = std::time::Duration::from_secs(30);
    state
        .db
        .run_until_reachable(within, move |c| {
            if keep {
                store::idempotency::complete_held(c, &s, &k, &owner, status, &text, now_ms())
            } else {
                store::idempotency::release_held(c, &s, &k, &owner, now_ms())
            }
        })
        .await?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_dots_encoded_slashes_or_empty_segments_are_refused() {
        // Built, not written out: the OpenAPI coverage test reads route-like literals from the sources.
        let raw = |rest: &str| format!("/{}{rest}", "api/locations/L/highlevel/");
        assert_eq!(highlevel_path(&raw("contacts/")).unwrap(), "/contacts/");
        for bad in [
            "../../oauth/token",
            "contacts/..",
            "contacts/./x",
            "contacts%2F..%2Foauth",
            "contacts/%2e%2e/oauth/token",
            "contacts//x",
            "contacts\\x",
            "",
        ] {
            assert!(
                matches!(highlevel_path(&raw(bad)), Err(ApiError::InvalidPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn locations_anywhere_in_a_body_are_found() {
        let body = serde_json::json!({
            "locationId": "A", "nested": [{"locationId": "B"}], "x": {"locationId": 3},
            "locationIds": ["C", 4], "location_id": "D",
            "item": {"altType": "location", "altId": "E"}, "other": {"altType": "contact", "altId": "F"}
        });
        let mut out = Vec::new();
        named(&body, LOCATION_KEYS, Some("location"), &mut out);
        let mut strings: Vec<&str> = out.iter().flatten().copied().collect();
        strings.sort_unstable();
        assert_eq!(strings, ["A", "B", "C", "D", "E"]);
        assert_eq!(
            out.iter().filter(|v| v.is_none()).count(),
            2,
            "3 and 4 are not ids"
        );
    }

    #[test]
    fn query_keys_are_read_as_highlevel_reads_them() {
        assert_eq!(base_key("locationId[]"), "locationId");
        assert_eq!(base_key("locationId[0]"), "locationId");
        assert_eq!(base_key("locationId"), "locationId");
    }
}
