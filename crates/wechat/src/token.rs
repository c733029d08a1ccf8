//! Access tokens per appid. On one node: cached until shortly before expiry, refreshed by one
//! caller at a time (the others wait for that refresh and share its result). With a
//! [`SharedAccessTokens`] (several nodes on one database, SPEC §12): the node's copy lasts until
//! the stored token's refresh time; then the stored token is read, and when it is due, the one
//! node that takes the lease calls `stable_token` while the others wait for its result. A token
//! WeChat refuses is expired by version, so a refusal seen by every node causes one refresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iam_domain::Secret;
use iam_domain::ports::{SharedAccessTokens, SharedToken, WechatError};
use tokio::sync::Mutex;

use crate::WechatClient;

#[derive(Clone)]
struct Cached {
    token: String,
    /// Unix milliseconds.
    refresh_at: i64,
    /// The stored version (0 when the token is this node's own).
    version: i64,
}

/// How long a node holds the refresh lease: a crashed holder's lease runs out after this.
const LEASE_MS: i64 = 15_000;
/// How often a node waiting for another's refresh looks again.
const POLL: Duration = Duration::from_millis(50);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// When a token fetched now with `expires_in` seconds left is refreshed: 5 minutes early (WeChat
/// rotates stable tokens then), or halfway for short ones.
fn refresh_time(now: i64, expires_in: i64) -> (i64, i64) {
    let lifetime = expires_in.max(0) * 1000;
    let margin = (300_000).min(lifetime / 2);
    (now + lifetime - margin, now + lifetime)
}

#[derive(Default)]
pub(crate) struct TokenCache {
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Cached>>>>>,
    shared: Option<Arc<dyn SharedAccessTokens>>,
}

impl TokenCache {
    pub(crate) fn shared(shared: Arc<dyn SharedAccessTokens>) -> Self {
        Self {
            slots: Default::default(),
            shared: Some(shared),
        }
    }

    fn slot(&self, appid: &str) -> Arc<Mutex<Option<Cached>>> {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.entry(appid.to_owned()).or_default().clone()
    }

    pub(crate) async fn get(
        &self,
        client: &WechatClient,
        appid: &str,
        secret: &Secret,
    ) -> Result<String, WechatError> {
        let slot = self.slot(appid);
        // Holding the slot's lock across the fetch is the single flight on this node:
        // concurrent callers queue here and find the fresh token when they get the lock.
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref()
            && now_ms() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = match &self.shared {
            Some(shared) => {
                self.cluster_token(shared.as_ref(), client, appid, secret)
                    .await?
            }
            None => Self::fetch(client, appid, secret).await?,
        };
        let token = fresh.token.clone();
        *guard = Some(fresh);
        Ok(token)
    }

    async fn fetch(
        client: &WechatClient,
        appid: &str,
        secret: &Secret,
    ) -> Result<Cached, WechatError> {
        let (token, expires_in) = client.fetch_stable_token(appid, secret).await?;
        let (refresh_at, _) = refresh_time(now_ms(), expires_in);
        Ok(Cached {
            token,
            refresh_at,
            version: 0,
        })
    }

    fn cached(t: SharedToken) -> Cached {
        Cached {
            token: t.token.expose().to_owned(),
            refresh_at: t.refresh_at,
            version: t.version,
        }
    }

    /// The stored token, refreshed by this node if it is due and this node wins the lease.
    /// The database failing never stops a WeChat call: the node then fetches for itself.
    async fn cluster_token(
        &self,
        shared: &dyn SharedAccessTokens,
        client: &WechatClient,
        appid: &str,
        secret: &Secret,
    ) -> Result<Cached, WechatError> {
        // Waiting longer than a lease would mean the holder died: its lease has run out by then.
        let deadline = now_ms() + LEASE_MS + 5_000;
        loop {
            let stored = match shared.load(appid).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(appid, error = %e, "cannot read the shared access token");
                    return Self::fetch(client, appid, secret).await;
                }
            };
            let now = now_ms();
            if let Some(t) = &stored
                && now < t.refresh_at
            {
                return Ok(Self::cached(t.clone()));
            }
            let seen = stored.as_ref().map_or(0, |t| t.version);
            match shared.lease(appid, seen, LEASE_MS).await {
                Ok(true) => return self.refresh(shared, client, appid, secret).await,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(appid, error = %e, "cannot lease the shared access token");
                    return Self::fetch(client, appid, secret).await;
                }
            }
            // Another node is refreshing. A token still valid (refreshed ahead of its expiry)
            // serves meanwhile, for a moment only.
            if let Some(t) = stored
                && now < t.expires_at
            {
                let mut c = Self::cached(t);
                c.refresh_at = now + 1_000;
                return Ok(c);
            }
            if now > deadline {
                tracing::warn!(appid, "no node refreshed the access token in time");
                return Self::fetch(client, appid, secret).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Under the lease: one `stable_token` call for the whole cluster.
    async fn refresh(
        &self,
        shared: &dyn SharedAccessTokens,
        client: &WechatClient,
        appid: &str,
        secret: &Secret,
    ) -> Result<Cached, WechatError> {
        let (token, expires_in) = match client.fetch_stable_token(appid, secret).await {
            Ok(t) => t,
            Err(e) => {
                if let Err(db) = shared.release(appid).await {
                    tracing::warn!(appid, error = %db, "cannot release the access token lease");
                }
                return Err(e);
            }
        };
        let (refresh_at, expires_at) = refresh_time(now_ms(), expires_in);
        let version = match shared
            .store(appid, &Secret::new(token.clone()), refresh_at, expires_at)
            .await
        {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::warn!(
                    appid,
                    "the access token lease ran out before the refresh ended"
                );
                0
            }
            Err(e) => {
                tracing::warn!(appid, error = %e, "cannot store the shared access token");
                0
            }
        };
        tracing::info!(appid, version, "access token refreshed for the cluster");
        Ok(Cached {
            token,
            refresh_at,
            version,
        })
    }

    /// Forgets `token` if it is still the cached one (another caller may already have replaced
    /// it), and expires its stored version for the cluster.
    pub(crate) async fn invalidate(&self, appid: &str, token: &str) {
        let slot = self.slot(appid);
        let mut guard = slot.lock().await;
        let Some(c) = guard.as_ref().filter(|c| c.token == token).cloned() else {
            return;
        };
        *guard = None;
        if let Some(shared) = &self.shared
            && c.version > 0
            && let Err(e) = shared.expire(appid, c.version).await
        {
            tracing::warn!(appid, error = %e, "cannot expire the shared access token");
        }
    }
}
