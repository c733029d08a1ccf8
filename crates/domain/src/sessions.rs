//! Sessions and revocation (SPEC §9).
//!
//! Access tokens are not stored. A user token carries its session's id (`sid`); it is accepted
//! while that session is active and belongs to the token's subject. What each node knows of
//! sessions lives in [`SessionState`]: sessions it has read (kept a minute), revocations it made
//! (at once) and revocations other nodes made, read from the database's revocation list by
//! [`Iam::sync_revocations`], which the server runs every 250 ms — so a revocation anywhere is
//! honoured everywhere within about a third of a second. A session-less token (client
//! credentials) is refused by its `jti` once revoked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::Error;
use crate::cache::TtlCache;
use crate::model::{
    PurgeReport, Revocation, Session, SessionQuery, SessionSelector, TokenRecord, User,
};
use crate::service::{Iam, Principal};
use crate::values::split_id;

/// How long a node trusts what it read of a session; revocations reach it sooner.
const SESSION_TTL: StdDuration = StdDuration::from_secs(60);
/// How long a node trusts what it read of a user (profile, admin rights); forbidding or
/// deleting a user revokes their sessions, which is seen sooner.
const USER_TTL: StdDuration = StdDuration::from_secs(2);
/// Revocations are read again from this long before the last read, so one committed late (or
/// stamped by a node whose clock is a little behind) is not missed.
const POLL_OVERLAP: Duration = Duration::seconds(2);

/// What a node knows about one session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    Active {
        user_id: String,
        expires: DateTime<Utc>,
    },
    Ended,
}

/// The node's view of sessions, users and revoked tokens.
pub struct SessionState {
    sessions: TtlCache<String, Known>,
    users: TtlCache<String, User>,
    /// Pre-session tokens by hash: whether and how they may be used.
    legacy: TtlCache<String, Option<TokenRecord>>,
    jtis: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Start of the last successful read of the revocation list.
    cursor: Mutex<Option<DateTime<Utc>>>,
}

impl Default for SessionState {
    fn default() -> Self {
        Self {
            sessions: TtlCache::with_capacity(SESSION_TTL, 200_000),
            users: TtlCache::with_capacity(USER_TTL, 100_000),
            legacy: TtlCache::with_capacity(SESSION_TTL, 10_000),
            jtis: Mutex::new(HashMap::new()),
            cursor: Mutex::new(None),
        }
    }
}

impl SessionState {
    fn ended(&self, sid: &str) {
        self.sessions.put(sid.to_owned(), Arc::new(Known::Ended));
    }

    pub(crate) fn legacy_forget(&self, hash: &str) {
        self.legacy.remove(hash);
    }

    fn jti_revoked(&self, jti: &str) -> bool {
        self.jtis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(jti)
    }

    fn revoke_jti(&self, jti: &str, expires: DateTime<Utc>) {
        self.jtis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(jti.to_owned(), expires);
    }
}

/// The page of a listing: `p` from 1 and `pageSize`, as Casdoor sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub size: u64,
}

impl Page {
    pub const MAX_SIZE: u64 = 1000;

    /// Casdoor's `p` and `pageSize`; both absent means "everything" (up to the maximum).
    pub fn parse(p: Option<&str>, page_size: Option<&str>) -> Result<Option<Self>, Error> {
        let num = |field: &str, v: Option<&str>| -> Result<Option<u64>, Error> {
            match v.map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(Error::invalid(format!(
                        "{field}: must be a whole number from 1, got {v:?}"
                    ))),
                },
            }
        };
        let (p, size) = (num("p", p)?, num("pageSize", page_size)?);
        if p.is_none() && size.is_none() {
            return Ok(None);
        }
        let size = size.unwrap_or(10);
        if size > Self::MAX_SIZE {
            return Err(Error::invalid(format!(
                "pageSize: at most {}, got {size}",
                Self::MAX_SIZE
            )));
        }
        Ok(Some(Self {
            number: p.unwrap_or(1),
            size,
        }))
    }

    pub fn offset(&self) -> u64 {
        (self.number - 1).saturating_mul(self.size)
    }
}

/// Casdoor's session shape: a user's active sessions in one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGroup {
    pub owner: String,
    pub name: String,
    pub application: String,
    pub created_time: DateTime<Utc>,
    pub session_ids: Vec<String>,
}

/// Whether `sid` has a session id's shape: a UUID's 36 characters, hex digits and hyphens.
/// Every session id is one (a refresh chain's id before sessions was a UUID too), so anything
/// else is a malformed id, not an unknown one.
pub fn is_session_id(sid: &str) -> bool {
    sid.len() == 36 && sid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// A session id as callers send it: a 400 naming `field` unless it has a session id's shape.
fn check_sid(field: &str, sid: &str) -> Result<(), Error> {
    if sid.is_empty() {
        return Err(Error::invalid(format!("{field}: is required")));
    }
    if !is_session_id(sid) {
        return Err(Error::invalid(format!(
            "{field}: {sid:?} is not a session id (a UUID)"
        )));
    }
    Ok(())
}

impl Iam {
    /// Whether `sid` is an active session of `user_id`, from what this node knows, else the
    /// database.
    pub(crate) async fn session_is_active(
        &self,
        sid: &str,
        user_id: &str,
    ) -> Result<bool, crate::StoreError> {
        let now = Utc::now();
        let known = match self.sessions.sessions.get(sid) {
            Some(k) => k,
            None => {
                let k = Arc::new(match self.repo.get_session(sid).await? {
                    Some(s) if s.is_active(now) => Known::Active {
                        user_id: s.user_id,
                        expires: s.expires_time,
                    },
                    _ => Known::Ended,
                });
                self.sessions
                    .sessions
                    .put_if_absent(sid.to_owned(), k.clone());
                k
            }
        };
        Ok(
            matches!(&*known, Known::Active { user_id: u, expires } if u == user_id && *expires > now),
        )
    }

    /// A user by id through the node's short cache (every Bearer call needs one).
    pub(crate) async fn user_by_id(
        &self,
        id: &str,
    ) -> Result<Option<Arc<User>>, crate::StoreError> {
        if let Some(u) = self.sessions.users.get(id) {
            return Ok(Some(u));
        }
        let found = self.repo.get_user_by_id(id).await?.map(Arc::new);
        if let Some(u) = &found {
            self.sessions.users.put_if_absent(id.to_owned(), u.clone());
        }
        Ok(found)
    }

    /// A user was changed or deleted through this node.
    pub(crate) fn user_changed(&self, id: &str) {
        self.sessions.users.remove(id);
    }

    /// A pre-session access token by hash, through the cache.
    pub(crate) async fn legacy_token(
        &self,
        hash: &str,
    ) -> Result<Option<TokenRecord>, crate::StoreError> {
        if let Some(t) = self.sessions.legacy.get(hash) {
            return Ok((*t).clone());
        }
        let t = self.repo.get_legacy_token(hash).await?;
        self.sessions
            .legacy
            .put_if_absent(hash.to_owned(), Arc::new(t.clone()));
        Ok(t)
    }

    pub(crate) fn jti_revoked(&self, jti: &str) -> bool {
        self.sessions.jti_revoked(jti)
    }

    /// Revokes sessions and makes this node refuse their tokens at once.
    pub(crate) async fn end_sessions(
        &self,
        which: &SessionSelector,
        reason: &str,
    ) -> Result<Vec<String>, crate::StoreError> {
        let ended = self.repo.revoke_sessions(which, reason, Utc::now()).await?;
        self.sessions_ended(&ended);
        Ok(ended)
    }

    pub(crate) fn sessions_ended(&self, sids: &[String]) {
        for sid in sids {
            self.sessions.ended(sid);
        }
    }

    /// Refuses a session-less token by its `jti` until `expires`, here at once.
    pub(crate) async fn end_token(
        &self,
        jti: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), crate::StoreError> {
        self.repo.revoke_jti(jti, expires, Utc::now()).await?;
        self.sessions.revoke_jti(jti, expires);
        Ok(())
    }

    /// Reads the revocations other nodes recorded since the last read (the server calls this
    /// every 250 ms; the first call loads every revocation still in force).
    pub async fn sync_revocations(&self) -> Result<usize, crate::StoreError> {
        let started = Utc::now();
        let since = self
            .sessions
            .cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|c| c - POLL_OVERLAP)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let found = self.repo.revocations_since(since, started).await?;
        for r in &found {
            match r {
                Revocation::Session(sid) => self.sessions.ended(sid),
                Revocation::Jti(jti, expires) => self.sessions.revoke_jti(jti, *expires),
            }
        }
        self.sessions
            .jtis
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, expires| *expires > started);
        *self
            .sessions
            .cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(started);
        Ok(found.len())
    }

    /// One purge: bounded passes until nothing expired is left (or `max_passes` ran), each its
    /// own short transaction. Reported to the events port per table.
    pub async fn purge_expired(
        &self,
        batch: u32,
        max_passes: u32,
        retention_days: u32,
    ) -> Result<PurgeReport, crate::StoreError> {
        let mut total = PurgeReport::default();
        for _ in 0..max_passes {
            let now = Utc::now();
            let records_before = now - chrono::Duration::days(i64::from(retention_days));
            let r = self.repo.purge(now, records_before, batch).await?;
            self.events.purged("sessions", r.sessions);
            self.events.purged("refresh_tokens", r.refresh_tokens);
            self.events.purged("revocations", r.revocations);
            self.events.purged("legacy_tokens", r.legacy_tokens);
            self.events.purged("records", r.records);
            total.sessions += r.sessions;
            total.refresh_tokens += r.refresh_tokens;
            total.revocations += r.revocations;
            total.legacy_tokens += r.legacy_tokens;
            total.records += r.records;
            let full = u64::from(batch);
            if r.sessions < full
                && r.refresh_tokens < full
                && r.revocations < full
                && r.legacy_tokens < full
                && r.records < full
            {
                break;
            }
        }
        Ok(total)
    }

    /// Row counts of sessions, refresh tokens, revocations and pre-session tokens.
    pub async fn session_table_counts(&self) -> Result<[u64; 4], crate::StoreError> {
        self.repo.session_table_counts().await
    }

    /// The user `id` (`owner/name`) names, when the caller is that user or administers them.
    async fn user_for(
        &self,
        caller: &Principal,
        field: &'static str,
        id: &str,
    ) -> Result<User, Error> {
        let (owner, name) = split_id(field, id)?;
        let is_self = matches!(caller, Principal::User(u) if u.owner == owner.as_str() && u.name == name.as_str());
        if !is_self && !caller.administers(owner.as_str()) {
            return Err(Error::forbidden());
        }
        self.repo
            .get_user(owner.as_str(), name.as_str())
            .await?
            .ok_or_else(|| Error::NotFound(format!("the user {owner}/{name} does not exist")))
    }

    /// `GET /api/get-user-sessions?id=`: the user's active sessions, newest first.
    pub async fn user_sessions(&self, caller: &Principal, id: &str) -> Result<Vec<Session>, Error> {
        let user = self.user_for(caller, "id", id).await?;
        let query = SessionQuery {
            user_id: Some(user.id),
            ..Default::default()
        };
        Ok(self.repo.list_sessions(&query, Utc::now()).await?.0)
    }

    /// `POST /api/revoke-session?sid=`: yourself or an administrator of the session's
    /// organization. Revoking an ended session changes nothing and is not an error.
    pub async fn revoke_session(&self, caller: &Principal, sid: &str) -> Result<bool, Error> {
        check_sid("sid", sid)?;
        let session = self
            .repo
            .get_session(sid)
            .await?
            .ok_or_else(|| Error::NotFound(format!("the session {sid} does not exist")))?;
        let is_self = matches!(caller, Principal::User(u) if u.id == session.user_id);
        if !is_self && !caller.administers(&session.organization) {
            return Err(Error::forbidden());
        }
        let reason = if is_self {
            "signed out"
        } else {
            "revoked by an administrator"
        };
        let ended = self
            .end_sessions(&SessionSelector::One(sid.to_owned()), reason)
            .await?;
        Ok(!ended.is_empty())
    }

    /// `POST /api/revoke-user-sessions?id=` ("sign out everywhere"): how many were active.
    pub async fn revoke_user_sessions(&self, caller: &Principal, id: &str) -> Result<usize, Error> {
        let user = self.user_for(caller, "id", id).await?;
        let reason = match caller {
            Principal::User(u) if u.id == user.id => "signed out everywhere",
            _ => "revoked by an administrator",
        };
        Ok(self
            .end_sessions(&SessionSelector::all_of(&user.id), reason)
            .await?
            .len())
    }

    /// Casdoor's `POST /api/sso-logout`: ends the caller's session, or (`logout_all`) all of
    /// the caller's sessions.
    pub async fn sso_logout(
        &self,
        caller: &Principal,
        sid: &str,
        logout_all: bool,
    ) -> Result<usize, Error> {
        let Principal::User(user) = caller else {
            return Err(Error::invalid(
                "an application token has no session to sign out of; send a user's token",
            ));
        };
        let which = if logout_all {
            SessionSelector::all_of(&user.id)
        } else if sid.is_empty() {
            // A token from before sessions names none: ending all of them would surprise.
            return Err(Error::invalid(
                "logoutAll: this token was issued before sessions and names none; send \
                 logoutAll=true to sign out everywhere",
            ));
        } else {
            SessionSelector::One(sid.to_owned())
        };
        let reason = if logout_all {
            "signed out everywhere"
        } else {
            "signed out"
        };
        Ok(self.end_sessions(&which, reason).await?.len())
    }

    /// The organizations whose sessions the caller may see: `owner` when given (and allowed),
    /// else the caller's own (every organization for a global administrator).
    fn session_scope(&self, caller: &Principal, owner: &str) -> Result<Option<String>, Error> {
        let owner = owner.trim();
        if !owner.is_empty() && owner != crate::model::ADMIN_OWNER {
            if !caller.administers(owner) {
                return Err(Error::forbidden());
            }
            return Ok(Some(owner.to_owned()));
        }
        if caller.is_global_admin() {
            return Ok(None);
        }
        match caller {
            Principal::User(u) if u.is_admin => Ok(Some(u.owner.to_string())),
            Principal::Application(a) => Ok(Some(a.organization.to_string())),
            _ => Err(Error::forbidden()),
        }
    }

    /// Active sessions of the organizations the caller administers, one page (`None`: up to
    /// the maximum page), and how many there are.
    pub async fn list_sessions(
        &self,
        caller: &Principal,
        owner: &str,
        page: Option<Page>,
    ) -> Result<(Vec<Session>, u64), Error> {
        let organization = self.session_scope(caller, owner)?;
        let page = page.unwrap_or(Page {
            number: 1,
            size: Page::MAX_SIZE,
        });
        let query = SessionQuery {
            organization,
            offset: page.offset(),
            limit: page.size,
            ..Default::default()
        };
        Ok(self.repo.list_sessions(&query, Utc::now()).await?)
    }

    /// Casdoor's `GET /api/get-sessions`: per user and application, the active session ids.
    /// The page counts sessions; groups are formed within it.
    pub async fn session_groups(
        &self,
        caller: &Principal,
        owner: &str,
        page: Option<Page>,
    ) -> Result<(Vec<SessionGroup>, u64), Error> {
        let (sessions, total) = self.list_sessions(caller, owner, page).await?;
        let mut groups: Vec<SessionGroup> = Vec::new();
        for s in sessions {
            match groups.iter_mut().find(|g| {
                g.owner == s.organization && g.name == s.user_name && g.application == s.application
            }) {
                Some(g) => {
                    g.created_time = g.created_time.min(s.created_time);
                    g.session_ids.push(s.id);
                }
                None => groups.push(SessionGroup {
                    owner: s.organization,
                    name: s.user_name,
                    application: s.application,
                    created_time: s.created_time,
                    session_ids: vec![s.id],
                }),
            }
        }
        Ok((groups, total))
    }

    /// A session by id, for an administrator of its organization (`get-token`).
    pub async fn get_session(
        &self,
        caller: &Principal,
        sid: &str,
    ) -> Result<Option<Session>, Error> {
        check_sid("id", sid)?;
        let Some(s) = self.repo.get_session(sid).await? else {
            return Ok(None);
        };
        let is_self = matches!(caller, Principal::User(u) if u.id == s.user_id);
        if !is_self && !caller.administers(&s.organization) {
            return Err(Error::forbidden());
        }
        Ok(Some(s))
    }

    /// Casdoor's `POST /api/delete-session` with `{owner, name, application}`: ends that user's
    /// sessions of that application (all of them when no application is named).
    pub async fn delete_user_app_sessions(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
        application: &str,
    ) -> Result<usize, Error> {
        let user = self
            .user_for(caller, "owner, name", &format!("{owner}/{name}"))
            .await?;
        let which = SessionSelector::User {
            user_id: user.id,
            application: (!application.is_empty()).then(|| application.to_owned()),
        };
        Ok(self
            .end_sessions(&which, "revoked by an administrator")
            .await?
            .len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked() {
        assert_eq!(Page::parse(None, None).unwrap(), None);
        assert_eq!(
            Page::parse(Some("2"), Some("5")).unwrap(),
            Some(Page { number: 2, size: 5 })
        );
        assert_eq!(
            Page::parse(Some("3"), Some("5")).unwrap().unwrap().offset(),
            10
        );
        assert!(
            Page::parse(Some("0"), None)
                .unwrap_err()
                .to_string()
                .starts_with("p:")
        );
        assert!(
            Page::parse(None, Some("x"))
                .unwrap_err()
                .to_string()
                .starts_with("pageSize:")
        );
        assert!(Page::parse(None, Some("5000")).is_err());
    }

    #[test]
    fn session_ids_are_checked() {
        assert!(check_sid("sid", "").is_err());
        assert!(check_sid("sid", "a b").is_err());
        assert!(check_sid("sid", "no-such-session").is_err());
        assert!(check_sid("sid", "0f6c2a4e-5b1d-4c3e-9a8b-7d6e5f4a3b2").is_err());
        assert!(check_sid("sid", "0f6c2a4e-5b1d-4c3e-9a8b-7d6e5f4a3b2g").is_err());
        assert!(check_sid("sid", "0f6c2a4e-5b1d-4c3e-9a8b-7d6e5f4a3b2c").is_ok());
    }
}
