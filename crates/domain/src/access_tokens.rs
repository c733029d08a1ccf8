//! The cluster's WeChat access tokens (SPEC §12): one `stable_token` per appid for every node,
//! kept sealed in the database, refreshed by whichever node first takes the lease.
//!
//! The WeChat adapter keeps a copy per node until the stored token's refresh time; this is what
//! it asks before it calls WeChat itself.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Secret;
use crate::ports::{Repository, SessionSealer, SharedAccessTokens, SharedToken};

/// The sealing context of access tokens: a sealed access token does not open as a session key.
const CONTEXT: &str = "wechat-access-token";

/// [`SharedAccessTokens`] on the repository, sealed with the session-key sealer, leasing under
/// this process's own holder id.
pub struct ClusterAccessTokens {
    repo: Arc<dyn Repository>,
    sealer: Arc<dyn SessionSealer>,
    holder: String,
}

impl ClusterAccessTokens {
    pub fn new(repo: Arc<dyn Repository>, sealer: Arc<dyn SessionSealer>) -> Self {
        Self {
            repo,
            sealer,
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl SharedAccessTokens for ClusterAccessTokens {
    async fn load(&self, appid: &str) -> Result<Option<SharedToken>, String> {
        let Some(row) = self
            .repo
            .get_access_token(appid)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let Some(sealed) = row.sealed else {
            return Ok(None);
        };
        // A token sealed under another key (a node with another sealing key) is treated as due,
        // at its real version, so this node can take the lease and replace it instead of
        // waiting for a refresh that its version would never match.
        let token = match self.sealer.open(CONTEXT, appid, &sealed) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(
                    appid,
                    error = %e,
                    "the stored access token does not open: is sessionKeyEncryptionKey the same \
                     on every node?"
                );
                return Ok(Some(SharedToken {
                    token: Secret::new(String::new()),
                    version: row.version,
                    refresh_at: 0,
                    expires_at: 0,
                }));
            }
        };
        Ok(Some(SharedToken {
            token,
            version: row.version,
            refresh_at: row.refresh_at,
            expires_at: row.expires_at,
        }))
    }

    async fn lease(&self, appid: &str, seen_version: i64, lease_ms: i64) -> Result<bool, String> {
        let now = now_ms();
        self.repo
            .lease_access_token(appid, &self.holder, seen_version, now, now + lease_ms)
            .await
            .map_err(|e| e.to_string())
    }

    async fn store(
        &self,
        appid: &str,
        token: &Secret,
        refresh_at: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, String> {
        let sealed = self.sealer.seal(CONTEXT, appid, token)?;
        self.repo
            .put_access_token(appid, &self.holder, &sealed, refresh_at, expires_at)
            .await
            .map_err(|e| e.to_string())
    }

    async fn release(&self, appid: &str) -> Result<(), String> {
        self.repo
            .release_access_token(appid, &self.holder)
            .await
            .map_err(|e| e.to_string())
    }

    async fn expire(&self, appid: &str, version: i64) -> Result<bool, String> {
        self.repo
            .expire_access_token(appid, version)
            .await
            .map_err(|e| e.to_string())
    }
}
