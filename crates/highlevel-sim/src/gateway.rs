//! The middleware every request passes: stats, fault injection, bearer-token lookup and rate limiting
//! (with the five `X-RateLimit-*` headers on every answer to an identified app).

use crate::access::Caller;
use crate::errors::HlError;
use crate::faults::FaultSpec;
use crate::rate_limit::RateInfo;
use crate::routes::generic::Matched;
use crate::state::{now_secs, Sim};
use crate::stats::Stats;
use actix_web::body::{BodyStream, BoxBody, MessageBody, SizedStream};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use std::time::Duration;

pub async fn gateway(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(sim) = req.app_data::<web::Data<Sim>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let method = req.method().as_str().to_owned();
    let control = req.path().starts_with("/_sim/");
    let fault = if control {
        None
    } else {
        sim.faults.take(&method, req.path())
    };
    let mut rate = None;
    if !control {
        if let Some(caller) = lookup_caller(&sim, &req) {
            if let Caller::Valid(t) = &caller {
                let info = sim.rate.check(&t.class_id);
                if !info.allowed {
                    Stats::bump(&sim.stats.rate_limited);
                    let res = req.error_response(HlError::too_many_requests());
                    return Ok(finish(&sim, &method, res.map_into_boxed_body(), Some(info)));
                }
                rate = Some(info);
            }
            req.extensions_mut().insert(caller);
        }
    }
    // A slow answer is slow after HighLevel received (and counted) the request.
    if let Some(f) = &fault {
        Stats::bump(&sim.stats.faults_injected);
        if let Some(ms) = f.latency_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    if let Some(f) = fault.as_ref().filter(|f| {
        !f.after_handler && f.answer_bytes.is_none() && (f.status.is_some() || f.drop_connection)
    }) {
        let (http_req, _) = req.into_parts();
        let res = ServiceResponse::new(http_req, fault_response(f));
        return Ok(finish(&sim, &method, res, rate));
    }

    let res = next.call(req).await?.map_into_boxed_body();
    let res = match fault {
        // A large answer stands in for a success (a refusal of the handler's stays as it was).
        Some(f)
            if f.answer_bytes.is_some() && (f.status.is_some() || res.status().is_success()) =>
        {
            let status = f.status.unwrap_or(res.status().as_u16());
            let (http_req, _) = res.into_parts();
            ServiceResponse::new(http_req, large_answer(&f, status))
        }
        Some(f)
            if f.answer_bytes.is_none()
                && f.after_handler
                && (f.status.is_some() || f.drop_connection) =>
        {
            let (http_req, _) = res.into_parts();
            ServiceResponse::new(http_req, fault_response(&f))
        }
        _ => res,
    };
    Ok(finish(&sim, &method, res, rate))
}

fn lookup_caller(sim: &Sim, req: &ServiceRequest) -> Option<Caller> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))?
        .trim();
    let world = sim.world_read();
    Some(match world.access_tokens.get(token) {
        None => Caller::Refused(HlError::invalid_jwt()),
        // A JWT past the `exp` of its own claims gets `Invalid JWT`, as measured on the live API (the client must
        // judge expiry from `exp`, not from the message); one replaced by a refresh, or cut short by
        // `/_sim/tokens/expire` before its `exp`, gets `Invalid token: access token is invalid`.
        Some(t) if t.claims_exp <= now_secs() => Caller::Refused(HlError::invalid_jwt()),
        Some(t) if t.revoked || t.exp <= now_secs() => Caller::Refused(HlError::token_invalid()),
        Some(t) => Caller::Valid(t.clone()),
    })
}

fn fault_response(f: &FaultSpec) -> HttpResponse {
    if f.drop_connection {
        // A body that fails before its first byte: the server closes the connection mid-answer.
        let stream = futures::stream::once(async {
            Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "highlevel-sim: injected dropped connection",
            ))
        });
        return HttpResponse::Ok()
            .insert_header(("content-length", "1048576"))
            .body(BodyStream::new(stream));
    }
    HlError::injected(f.status.unwrap_or(500)).error_response()
}

/// `{"padding":"aaa…"}` of exactly `answer_bytes` bytes (at least the braces), made as it is sent; with
/// `answer_pause_ms`, stalled that long halfway.
fn large_answer(f: &FaultSpec, status: u16) -> HttpResponse {
    use futures::StreamExt;
    const CHUNK: u64 = 64 * 1024;
    let total = f.answer_bytes.unwrap_or_default().max(14);
    let (head, tail) = (&b"{\"padding\":\""[..], &b"\"}"[..]);
    let filler = total - (head.len() + tail.len()) as u64;
    let fillers = filler.div_ceil(CHUNK);
    let pieces = std::iter::once(bytes::Bytes::from_static(head))
        .chain((0..fillers).map(move |i| {
            let n = CHUNK.min(filler - i * CHUNK) as usize;
            bytes::Bytes::from(vec![b'a'; n])
        }))
        .chain(std::iter::once(bytes::Bytes::from_static(tail)));
    // Before the piece halfway through (the head is piece 0).
    let pause = f
        .answer_pause_ms
        .map(|ms| (1 + fillers / 2, Duration::from_millis(ms)));
    let stream = futures::stream::iter(pieces.enumerate()).then(move |(i, piece)| async move {
        if let Some((_, pause)) = pause.filter(|(at, _)| *at == i as u64) {
            tokio::time::sleep(pause).await;
        }
        Ok::<_, std::io::Error>(piece)
    });
    let mut res = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK),
    );
    res.content_type("application/json");
    if f.undeclared_length {
        res.body(BodyStream::new(stream))
    } else {
        res.body(SizedStream::new(total, stream))
    }
}

fn finish(
    sim: &Sim,
    method: &str,
    mut res: ServiceResponse<BoxBody>,
    rate: Option<RateInfo>,
) -> ServiceResponse<BoxBody> {
    if let Some(info) = rate {
        let h = res.headers_mut();
        for (name, value) in [
            ("x-ratelimit-max", info.max as u64),
            ("x-ratelimit-remaining", info.remaining as u64),
            ("x-ratelimit-interval-milliseconds", info.interval_ms),
            ("x-ratelimit-limit-daily", info.daily_limit as u64),
            ("x-ratelimit-daily-remaining", info.daily_remaining as u64),
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
    // An operation answered by the generic routes is counted under its documented path.
    let route = match res.request().extensions().get::<Matched>() {
        Some(m) => m.0.clone(),
        None => format!(
            "{method} {}",
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "(unmatched)".to_owned())
        ),
    };
    if let Some(Caller::Valid(t)) = res.request().extensions().get::<Caller>() {
        sim.stats.record_class(&route, t.class.as_str());
    }
    sim.stats.record(route, res.status().as_u16());
    res
}
