//! The outbox of payment events for HighLevel: written in the same breath as the charge, delivered by a
//! background sender with retries until HighLevel takes it.

use crate::db::schema::payment_events::dsl;
use crate::db::{DbConn, DbError};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::payment_events)]
pub struct Event {
    /// Stable: a receiver tells a repeat by it.
    pub id: String,
    pub location_id: String,
    pub live_mode: bool,
    pub event_type: String,
    pub payload: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    /// What the event is about when HighLevel must hear its events in order (a subscription's id); `None`:
    /// independent of every other event.
    pub subject: Option<String>,
}

impl Event {
    /// Where the event stands among its subject's events: by creation, then id (a total order, so two events
    /// of one millisecond never wait for each other).
    fn position(&self) -> (i64, &str) {
        (self.created_at, &self.id)
    }
}

/// Failed attempts after which an event stops holding back the later events of its subject (about two hours
/// of refusals, with the sender's backoff): it is still retried, but one event HighLevel keeps refusing must
/// not keep the rest of its subscription from HighLevel for good. Until then, order wins.
pub const HOLDS_FOR_ATTEMPTS: i32 = 20;

/// Writes an event. One with a subject whose earlier event failed and waits for its retry is written to wait
/// as long (it cannot be sent before it), so it does not fill a batch of due events in the meantime. An
/// earlier event merely being sent (claimed, never failed) is not waited for: it is usually delivered at once.
pub fn enqueue(conn: &mut DbConn, e: &Event) -> Result<(), DbError> {
    let mut e = e.clone();
    if let Some(subject) = &e.subject {
        let waiting: Option<i64> = dsl::payment_events
            .filter(dsl::subject.eq(subject))
            .filter(dsl::delivered_at.is_null())
            .filter(dsl::attempts.gt(0))
            .filter(dsl::attempts.lt(HOLDS_FOR_ATTEMPTS))
            .select(diesel::dsl::max(dsl::next_attempt_at))
            .first(conn)?;
        e.next_attempt_at = e.next_attempt_at.max(waiting.unwrap_or(i64::MIN));
    }
    diesel::insert_into(dsl::payment_events)
        .values(&e)
        .execute(conn)?;
    Ok(())
}

/// Due events read per query by [`due`].
const DUE_PAGE: i64 = 50;
/// Pages [`due`] reads at most in one call.
const DUE_PAGES: i64 = 20;

/// Up to `limit` events to send now, the longest waiting first. An event with a subject is due only when it is
/// the first undelivered event of that subject: a retried event holds back the ones written after it. Held
/// events are skipped, not counted: the due events are read page after page (up to [`DUE_PAGES`]) until
/// `limit` can be sent, so events held back never crowd out the ones that can go.
pub fn due(conn: &mut DbConn, now: i64, limit: i64) -> Result<Vec<Event>, DbError> {
    let mut out = Vec::new();
    for page in 0..DUE_PAGES {
        let candidates: Vec<Event> = dsl::payment_events
            .filter(dsl::delivered_at.is_null())
            .filter(dsl::next_attempt_at.le(now))
            .order((
                dsl::next_attempt_at.asc(),
                dsl::created_at.asc(),
                dsl::id.asc(),
            ))
            .offset(page * DUE_PAGE)
            .limit(DUE_PAGE)
            .select(Event::as_select())
            .load(conn)?;
        let last_page = (candidates.len() as i64) < DUE_PAGE;
        out.extend(first_of_their_subjects(conn, candidates)?);
        if last_page || out.len() as i64 >= limit {
            break;
        }
    }
    out.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(out)
}

/// `candidates` without the events that an earlier undelivered event of their subject holds back.
fn first_of_their_subjects(
    conn: &mut DbConn,
    candidates: Vec<Event>,
) -> Result<Vec<Event>, DbError> {
    let subjects: Vec<&str> = candidates
        .iter()
        .filter_map(|e| e.subject.as_deref())
        .collect();
    if subjects.is_empty() {
        return Ok(candidates);
    }
    // The first undelivered event of each subject, due or not (one still waiting for its retry holds the rest),
    // among those that still hold.
    use std::collections::hash_map::Entry;
    let mut first: std::collections::HashMap<String, (i64, String)> = Default::default();
    let pending: Vec<(Option<String>, i64, String)> = dsl::payment_events
        .filter(dsl::delivered_at.is_null())
        .filter(dsl::attempts.lt(HOLDS_FOR_ATTEMPTS))
        .filter(dsl::subject.eq_any(subjects))
        .select((dsl::subject, dsl::created_at, dsl::id))
        .load(conn)?;
    for (subject, created_at, id) in pending {
        let Some(subject) = subject else { continue };
        let here = (created_at, id);
        match first.entry(subject) {
            Entry::Occupied(mut earliest) if here < *earliest.get() => {
                earliest.insert(here);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(v) => {
                v.insert(here);
            }
        }
    }
    Ok(candidates
        .into_iter()
        .filter(|e| match &e.subject {
            None => true,
            Some(_) if e.attempts >= HOLDS_FOR_ATTEMPTS => true,
            Some(s) => first
                .get(s)
                .is_none_or(|(at, id)| (*at, id.as_str()) == e.position()),
        })
        .collect())
}

/// Takes a due event for one delivery attempt: one conditional update, so replicas sharing the outbox never
/// send the same event at the same time. The claim lapses after `lease_ms` if its holder dies.
pub fn claim(conn: &mut DbConn, id: &str, now: i64, lease_ms: i64) -> Result<bool, DbError> {
    Ok(diesel::update(
        dsl::payment_events
            .find(id)
            .filter(dsl::delivered_at.is_null())
            .filter(dsl::next_attempt_at.le(now)),
    )
    .set(dsl::next_attempt_at.eq(now + lease_ms))
    .execute(conn)?
        == 1)
}

pub fn delivered(conn: &mut DbConn, id: &str, now: i64) -> Result<(), DbError> {
    diesel::update(dsl::payment_events.find(id))
        .set((
            dsl::delivered_at.eq(Some(now)),
            dsl::attempts.eq(dsl::attempts + 1),
            dsl::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed attempt and when to try again. The later events of the same subject wait at least as long:
/// they could not be sent before it anyway, and so never fill a pass's batch while it waits.
pub fn failed(
    conn: &mut DbConn,
    id: &str,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        // Another replica may have delivered it meanwhile (this attempt outlived its claim): then nothing waits.
        let updated = diesel::update(
            dsl::payment_events
                .find(id)
                .filter(dsl::delivered_at.is_null()),
        )
        .set((
            dsl::attempts.eq(dsl::attempts + 1),
            dsl::next_attempt_at.eq(next_attempt_at),
            dsl::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Ok(());
        }
        let (subject, created_at, attempts): (Option<String>, i64, i32) = dsl::payment_events
            .find(id)
            .select((dsl::subject, dsl::created_at, dsl::attempts))
            .first(conn)?;
        if let Some(subject) = subject.filter(|_| attempts < HOLDS_FOR_ATTEMPTS) {
            diesel::update(
                dsl::payment_events
                    .filter(dsl::subject.eq(subject))
                    .filter(dsl::delivered_at.is_null())
                    .filter(dsl::created_at.ge(created_at))
                    .filter(dsl::id.ne(id))
                    .filter(dsl::next_attempt_at.lt(next_attempt_at)),
            )
            .set(dsl::next_attempt_at.eq(next_attempt_at))
            .execute(conn)?;
        }
        Ok(())
    })
}

pub fn all(conn: &mut DbConn) -> Result<Vec<Event>, DbError> {
    Ok(dsl::payment_events
        .order(dsl::created_at.asc())
        .select(Event::as_select())
        .load(conn)?)
}
