//! Linked identities (SPEC §8.3): a user's WeChat identities, binding one more to a user who
//! signed in another way, and unbinding one that is not their last way in.

use chrono::Utc;

use crate::Error;
use crate::model::{BindOutcome, UnbindOutcome, User, WechatIdentity};
use crate::ports::Claims;
use crate::service::{Iam, Principal};
use crate::values::{AppId, WechatCode, split_id};

/// One identity as `get-user-identities` shows it: with the name of its provider.
pub struct IdentityView {
    pub provider: String,
    pub identity: WechatIdentity,
}

impl Iam {
    /// The user `id` names (`owner/name`), or the caller; only the user themself or an
    /// administrator of their organization may act on them.
    async fn identity_target(&self, caller: &Principal, id: Option<&str>) -> Result<User, Error> {
        let id = id.filter(|s| !s.is_empty());
        let user = match (id, caller) {
            (None, Principal::User(u)) => return Ok(u.clone()),
            (None, Principal::Application(_)) => {
                return Err(Error::invalid("id: owner/name of the user is required"));
            }
            (Some(id), _) => {
                let (owner, name) = split_id("id", id)?;
                self.repo
                    .get_user(owner.as_str(), name.as_str())
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("the user {id} does not exist")))?
            }
        };
        let is_self = matches!(caller, Principal::User(u) if u.id == user.id);
        if !is_self && !caller.administers(user.owner.as_str()) {
            return Err(Error::forbidden());
        }
        Ok(user)
    }

    /// `GET /api/get-user-identities`.
    pub async fn user_identities(
        &self,
        caller: &Principal,
        id: Option<&str>,
    ) -> Result<Vec<IdentityView>, Error> {
        let user = self.identity_target(caller, id).await?;
        let identities = self.repo.list_user_identities(&user.id).await?;
        let mut providers = self.repo.list_providers(None).await?;
        // The organization's own providers first, then the shared (admin) ones.
        providers.sort_by_key(|p| p.owner.as_str() != user.owner.as_str());
        Ok(identities
            .into_iter()
            .map(|identity| IdentityView {
                provider: providers
                    .iter()
                    .find(|p| {
                        p.client_id == identity.appid
                            && crate::values::is_mini_program_type(&p.provider_type)
                    })
                    .map(|p| p.name.to_string())
                    .unwrap_or_default(),
                identity,
            })
            .collect())
    }

    /// `POST /api/wechat/bind`: links the WeChat identity of a `wx.login()` code of the token's
    /// mini program to the caller. Returns the identity and whether it was new.
    pub async fn bind_wechat(
        &self,
        caller: &Principal,
        claims: Option<&Claims>,
        code: &str,
        provider: Option<&str>,
    ) -> Result<(WechatIdentity, bool), Error> {
        let code = WechatCode::parse(code)?;
        let mp = self.mini_program_caller(caller, claims, provider).await?;
        // A WeChat account signs in to its mini program's organization: it may only be linked
        // to a user of that organization (not, say, to a global administrator's account).
        if mp.user.owner.as_str() != mp.organization {
            return Err(Error::Forbidden(format!(
                "the user belongs to organization {}; this mini program signs users in to {}",
                mp.user.owner, mp.organization
            )));
        }
        let (appid, session) = self.exchange_code(&mp.provider, &code).await?;
        let identity = WechatIdentity {
            appid: appid.clone(),
            openid: session.openid.clone(),
            unionid: session.unionid.clone(),
            organization: mp.user.owner.to_string(),
            user_id: mp.user.id.clone(),
            created_time: Utc::now(),
            last_signin_time: None,
        };
        let sealed = self
            .sealer
            .seal(&identity.appid, &identity.openid, &session.session_key)
            .map_err(|e| Error::Internal(format!("cannot seal the session key: {e}")))?;
        match self.repo.bind_wechat_identity(&identity, &sealed).await? {
            BindOutcome::OtherUser => Err(Error::Conflict(
                "this WeChat account is bound to another user".into(),
            )),
            outcome => {
                self.user_changed(&mp.user.id);
                Ok((identity, outcome == BindOutcome::Bound))
            }
        }
    }

    /// `POST /api/wechat/unbind`: removes the user's identity of mini program `appid` (the
    /// one of `openid`, which must be named when the user holds several there), unless it is
    /// their last way in.
    pub async fn unbind_wechat(
        &self,
        caller: &Principal,
        id: Option<&str>,
        appid: &str,
        openid: Option<&str>,
    ) -> Result<String, Error> {
        let appid = AppId::parse(appid)?;
        let openid = openid
            .filter(|o| !o.is_empty())
            .map(|o| crate::values::WechatId::parse("openid", o))
            .transpose()?;
        let user = self.identity_target(caller, id).await?;
        match self
            .repo
            .unbind_wechat_identity(
                &user.id,
                appid.as_str(),
                openid.as_ref().map(|o| o.as_str()),
            )
            .await?
        {
            UnbindOutcome::Unbound(openid) => {
                self.user_changed(&user.id);
                Ok(openid)
            }
            UnbindOutcome::NotBound => Err(Error::NotFound(match &openid {
                Some(o) => format!(
                    "the user {} has no WeChat identity {o} of mini program {appid}",
                    user.id_path()
                ),
                None => format!(
                    "the user {} has no WeChat identity of mini program {appid}",
                    user.id_path()
                ),
            })),
            UnbindOutcome::Several(openids) => Err(Error::Invalid(format!(
                "openid: the user {} has {} WeChat accounts in mini program {appid} ({}): \
                 name the one to unbind",
                user.id_path(),
                openids.len(),
                openids.join(", ")
            ))),
            UnbindOutcome::LastWayIn => Err(Error::Conflict(
                "unbinding it would leave the user no way to sign in: set a password or bind \
                 another WeChat account first"
                    .into(),
            )),
        }
    }
}
