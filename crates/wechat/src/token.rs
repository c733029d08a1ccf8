//! Access tokens per appid: cached until shortly before expiry, refreshed by one caller at a time
//! (the others wait for that refresh and share its result).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iam_domain::Secret;
use iam_domain::ports::WechatError;
use tokio::sync::Mutex;

use crate::WechatClient;

struct Cached {
    token: String,
    refresh_at: Instant,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Cached>>>>>,
}

impl TokenCache {
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
        // Holding the slot's lock across the fetch is the single flight: concurrent callers queue
        // here and find the fresh token when they get the lock.
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let (token, expires_in) = client.fetch_stable_token(appid, secret).await?;
        let lifetime = Duration::from_secs(expires_in.max(0) as u64);
        // Refresh 5 minutes early (WeChat rotates stable tokens then), or halfway for short ones.
        let margin = Duration::from_secs(300).min(lifetime / 2);
        *guard = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Forgets `token` if it is still the cached one (another caller may already have replaced it).
    pub(crate) async fn invalidate(&self, appid: &str, token: &str) {
        let slot = self.slot(appid);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|c| c.token == token) {
            *guard = None;
        }
    }
}
