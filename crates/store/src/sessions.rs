//! Sessions, refresh tokens and revocations (SPEC §9): the transactions that must hold under
//! concurrency, written once for both dialects.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use iam_domain::StoreError;
use iam_domain::model::{
    PurgeReport, RefreshOutcome, RefreshToken, Revocation, Session, SessionQuery, SessionSelector,
    SignInWrite, UserTouch,
};

use crate::conn::{AnyConnection, DbError, on_any};
use crate::repo::upsert_wechat_key;
use crate::rows::*;
use crate::schema::*;

/// How long a session revocation is kept for the other nodes to read (they poll every few
/// hundred milliseconds; the session row itself stays the authority).
const SESSION_REVOCATION_KEPT: Duration = Duration::minutes(10);

const KIND_SESSION: &str = "session";
const KIND_JTI: &str = "jti";

fn record_revocation(
    c: &mut AnyConnection,
    kind: &str,
    subject: &str,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(revocations::table)
        .values(NewRevocationRow {
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            expires_time: ts(&expires),
            created_time: ts(&now),
        })
        .execute(c)?;
    Ok(())
}

/// Revokes one session if it is still active; `true` when this call revoked it.
fn revoke_one(
    c: &mut AnyConnection,
    sid: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let n = diesel::update(
        sessions::table
            .find(sid)
            .filter(sessions::revoked_time.is_null()),
    )
    .set((
        sessions::revoked_time.eq(ts(&now)),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(c)?;
    if n == 1 {
        record_revocation(c, KIND_SESSION, sid, now + SESSION_REVOCATION_KEPT, now)?;
    }
    Ok(n == 1)
}

fn active_sessions_of(
    c: &mut AnyConnection,
    user_id: &str,
    application: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    let mut q = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_time.is_null())
        .filter(sessions::expires_time.gt(ts(&now)))
        .select(sessions::id)
        .order((sessions::created_time.desc(), sessions::id.desc()))
        .into_boxed();
    if let Some(app) = application {
        q = q.filter(sessions::application.eq(app.to_owned()));
    }
    Ok(q.load(c)?)
}

pub fn record_sign_in(c: &mut AnyConnection, w: &SignInWrite) -> Result<Vec<String>, DbError> {
    match &w.user {
        UserTouch::Nothing => {}
        UserTouch::Create { user, identity } => {
            crate::identities::insert_wechat_user(c, user, identity)?;
        }
        // Two unindexed columns: no index entry of the users table is rewritten.
        UserTouch::SignedIn { user_id, at } => {
            let at = ts(at);
            crate::fixed::execute(c, crate::fixed::SignedIn { at: &at, user_id })?;
        }
        UserTouch::Profile(u) => {
            let row = UserRow::from(u.as_ref());
            diesel::update(users::table.find(row.id.clone()))
                .set(&row)
                .execute(c)?;
        }
    }
    if let Some((appid, openid, sealed)) = &w.wechat_key {
        upsert_wechat_key(c, appid, openid, sealed)?;
    }
    if let Some((appid, openid, unionid)) = &w.identity_unionid {
        diesel::update(
            wechat_identities::table
                .find((appid.as_str(), openid.as_str()))
                .filter(wechat_identities::unionid.eq("")),
        )
        .set(wechat_identities::unionid.eq(unionid.as_str()))
        .execute(c)?;
    }
    let (session, refresh) = (SessionRow::from(&w.session), RefreshRow::from(&w.refresh));
    on_any!(c, |c| {
        diesel::insert_into(sessions::table)
            .values(&session)
            .execute(c)?;
        diesel::insert_into(refresh_tokens::table)
            .values(&refresh)
            .execute(c)?;
    });
    if let Some(r) = &w.record {
        crate::records::insert(c, std::slice::from_ref(r))?;
    }
    let mut ended = Vec::new();
    if w.max_sessions > 0 {
        let now = w.session.created_time;
        let live = active_sessions_of(c, &w.session.user_id, Some(&w.session.application), now)?;
        for sid in live.iter().skip(w.max_sessions as usize) {
            if revoke_one(c, sid, "maxSessionsPerUser reached", now)? {
                ended.push(sid.clone());
            }
        }
    }
    Ok(ended)
}

pub fn rotate_refresh(
    c: &mut AnyConnection,
    hash: &str,
    application: &str,
    next: &RefreshToken,
    session_expires: DateTime<Utc>,
) -> Result<RefreshOutcome, DbError> {
    let now = next.created_time;
    let Some(sid) = refresh_tokens::table
        .find(hash)
        .filter(refresh_tokens::application.eq(application))
        .select(refresh_tokens::session_id)
        .first::<String>(c)
        .optional()?
    else {
        return Ok(RefreshOutcome::Unknown);
    };
    // Take the session's row lock first (a no-op update: PostgreSQL holds the row until commit,
    // SQLite's BEGIN IMMEDIATE already holds the database), then read the token again: a
    // concurrent rotation of the same token has committed by now and is seen.
    let locked = diesel::update(sessions::table.find(&sid))
        .set(sessions::id.eq(sessions::id))
        .execute(c)?;
    if locked == 0 {
        return Ok(RefreshOutcome::Unknown);
    }
    let session: Session = sessions::table
        .find(&sid)
        .select(SessionRow::as_select())
        .first(c)?
        .try_into()?;
    let token: RefreshToken = refresh_tokens::table
        .find(hash)
        .select(RefreshRow::as_select())
        .first(c)?
        .try_into()?;
    if session.revoked_time.is_some() {
        return Ok(RefreshOutcome::Revoked);
    }
    if token.used {
        revoke_one(c, &sid, "refresh token reused", now)?;
        return Ok(RefreshOutcome::Reused(sid));
    }
    if token.expires_time <= now || session.expires_time <= now {
        return Ok(RefreshOutcome::Expired);
    }
    diesel::update(refresh_tokens::table.find(hash))
        .set(refresh_tokens::used.eq(true))
        .execute(c)?;
    let next = RefreshToken {
        session_id: sid.clone(),
        application: token.application.clone(),
        organization: token.organization.clone(),
        user_id: token.user_id.clone(),
        scope: token.scope.clone(),
        used: false,
        ..next.clone()
    };
    diesel::insert_into(refresh_tokens::table)
        .values(RefreshRow::from(&next))
        .execute(c)?;
    let expires = session.expires_time.max(session_expires);
    diesel::update(sessions::table.find(&sid))
        .set((
            sessions::last_active_time.eq(ts(&now)),
            sessions::expires_time.eq(ts(&expires)),
        ))
        .execute(c)?;
    Ok(RefreshOutcome::Rotated(
        Session {
            last_active_time: now,
            expires_time: expires,
            ..session
        },
        next,
    ))
}

pub fn list_sessions(
    c: &mut AnyConnection,
    q: &SessionQuery,
    now: DateTime<Utc>,
) -> Result<(Vec<Session>, u64), DbError> {
    let filtered = || {
        let mut b = sessions::table
            .filter(sessions::revoked_time.is_null())
            .filter(sessions::expires_time.gt(ts(&now)))
            .into_boxed();
        if let Some(o) = &q.organization {
            b = b.filter(sessions::organization.eq(o.clone()));
        }
        if let Some(u) = &q.user_id {
            b = b.filter(sessions::user_id.eq(u.clone()));
        }
        if let Some(a) = &q.application {
            b = b.filter(sessions::application.eq(a.clone()));
        }
        b
    };
    let total: i64 = filtered().count().get_result(c)?;
    let (limit, offset) = crate::rows::sql_window(q.limit, q.offset);
    let rows = filtered()
        .select(SessionRow::as_select())
        .order((sessions::created_time.desc(), sessions::id.desc()))
        .limit(limit)
        .offset(offset)
        .load::<SessionRow>(c)?;
    let sessions = rows
        .into_iter()
        .map(Session::try_from)
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((sessions, total as u64))
}

pub fn revoke_sessions(
    c: &mut AnyConnection,
    which: &SessionSelector,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    let candidates = match which {
        SessionSelector::One(sid) => vec![sid.clone()],
        SessionSelector::User {
            user_id,
            application,
        } => active_sessions_of(c, user_id, application.as_deref(), now)?,
    };
    let mut revoked = Vec::new();
    for sid in candidates {
        if revoke_one(c, &sid, reason, now)? {
            revoked.push(sid);
        }
    }
    Ok(revoked)
}

pub fn revoke_jti(
    c: &mut AnyConnection,
    jti: &str,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let known: i64 = revocations::table
        .filter(revocations::kind.eq(KIND_JTI))
        .filter(revocations::subject.eq(jti))
        .count()
        .get_result(c)?;
    if known == 0 {
        record_revocation(c, KIND_JTI, jti, expires, now)?;
    }
    Ok(())
}

pub fn revocations_since(
    c: &mut AnyConnection,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Revocation>, DbError> {
    let rows: Vec<(String, String, String)> = revocations::table
        .filter(revocations::created_time.ge(ts(&since)))
        .filter(revocations::expires_time.gt(ts(&now)))
        .select((
            revocations::kind,
            revocations::subject,
            revocations::expires_time,
        ))
        .order(revocations::seq)
        .load(c)?;
    let mut out = Vec::with_capacity(rows.len());
    for (kind, subject, expires) in rows {
        out.push(match kind.as_str() {
            KIND_JTI => Revocation::Jti(subject, parse_ts("revocation", &expires)?),
            _ => Revocation::Session(subject),
        });
    }
    Ok(out)
}

/// Deletes at most `batch` rows of `table` whose time column is before `cutoff`: select the
/// keys, then delete by key (one short statement each, on both dialects).
macro_rules! purge_batch {
    ($c:expr, $table:ident, $key:ident, $time:ident, $cutoff:expr, $batch:expr) => {{
        let keys: Vec<String> = $table::table
            .filter($table::$time.lt($cutoff))
            .select($table::$key)
            .limit($batch)
            .load($c)?;
        if keys.is_empty() {
            0
        } else {
            diesel::delete($table::table.filter($table::$key.eq_any(&keys))).execute($c)? as u64
        }
    }};
}

pub fn purge(
    c: &mut AnyConnection,
    now: DateTime<Utc>,
    records_before: DateTime<Utc>,
    batch: u32,
) -> Result<PurgeReport, DbError> {
    let cutoff = ts(&now);
    let batch = i64::from(batch);
    let sessions = purge_batch!(c, sessions, id, expires_time, &cutoff, batch);
    let refresh_tokens = purge_batch!(c, refresh_tokens, hash, expires_time, &cutoff, batch);
    // Revocations are keyed by a number; delete by key the same way.
    let seqs: Vec<i64> = revocations::table
        .filter(revocations::expires_time.lt(&cutoff))
        .select(revocations::seq)
        .limit(batch)
        .load(c)?;
    let revocations = if seqs.is_empty() {
        0
    } else {
        diesel::delete(revocations::table.filter(revocations::seq.eq_any(&seqs))).execute(c)? as u64
    };
    let legacy_tokens = purge_batch!(c, tokens, id, expires_at, &cutoff, batch);
    let records = crate::records::purge(c, records_before, batch)?;
    Ok(PurgeReport {
        sessions,
        refresh_tokens,
        revocations,
        legacy_tokens,
        records,
    })
}

pub fn table_counts(c: &mut AnyConnection) -> Result<[u64; 4], DbError> {
    let s: i64 = sessions::table.count().get_result(c)?;
    let r: i64 = refresh_tokens::table.count().get_result(c)?;
    let v: i64 = revocations::table.count().get_result(c)?;
    let t: i64 = tokens::table.count().get_result(c)?;
    Ok([s as u64, r as u64, v as u64, t as u64])
}
