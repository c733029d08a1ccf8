//! Finding users (SPEC §10): pages and searches of `get-users`, Casdoor's other ways to find a
//! user (`get-user` by email, phone or id; `get-global-users`; `get-sorted-users`) and
//! `get-user-count`. Every listing is paged by the database: nothing loads a whole organization.

use crate::Error;
use crate::model::{User, UserQuery, UserSearch, UserSort};
use crate::records::{ascending, given};
use crate::service::{Iam, Principal};
use crate::sessions::Page;
use crate::values::Phone;

/// `get-users`'s parameters as sent.
#[derive(Debug, Clone, Default)]
pub struct UserListParams {
    pub owner: Option<String>,
    pub p: Option<String>,
    pub page_size: Option<String>,
    pub field: Option<String>,
    pub value: Option<String>,
    pub sort_field: Option<String>,
    pub sort_order: Option<String>,
}

/// How `get-user` names the user when it does not send `id`.
#[derive(Debug, Clone)]
pub enum UserKey {
    Email(String),
    Phone(String),
    /// The user's UUID (Casdoor's `userId`).
    Id(String),
}

const SEARCH_FIELDS: &str = "name, displayName, phone, email, wechat, wechatUnionId";
const SORT_FIELDS: &str = "createdTime, name, displayName, lastSigninTime, updatedTime";

impl UserListParams {
    /// The query these parameters ask for; `max` bounds an unpaged answer.
    fn query(&self, max: u64) -> Result<(UserQuery, bool), Error> {
        let page = Page::parse(self.p.as_deref(), self.page_size.as_deref())?;
        let search = match given(&self.field) {
            None => None,
            Some(f) => {
                let by = UserSearch::parse(f).ok_or_else(|| {
                    Error::invalid(format!(
                        "field: {f:?} is not searchable (one of {SEARCH_FIELDS})"
                    ))
                })?;
                given(&self.value).map(|v| (by, v.chars().take(200).collect::<String>()))
            }
        };
        let sort = match given(&self.sort_field) {
            None => None,
            Some(f) => Some((
                UserSort::parse(f).ok_or_else(|| {
                    Error::invalid(format!(
                        "sortField: {f:?} is not sortable (one of {SORT_FIELDS})"
                    ))
                })?,
                ascending(given(&self.sort_order), true)?,
            )),
        };
        Ok((
            UserQuery {
                owner: given(&self.owner).map(str::to_owned),
                search,
                sort,
                offset: page.map(|p| p.offset()).unwrap_or(0),
                limit: page.map(|p| p.size).unwrap_or(max),
                skip_total: false,
                forbidden: None,
            },
            page.is_some(),
        ))
    }
}

impl Iam {
    /// A page of users and the total; an organization's unsearched total (a count over all its
    /// users, the slowest part of a page at a million) comes from a few seconds' cache.
    pub(crate) async fn users_page(&self, mut query: UserQuery) -> Result<(Vec<User>, u64), Error> {
        let key = query.owner.clone().unwrap_or_else(|| "*".into());
        let unfiltered = query.search.is_none() && query.forbidden.is_none();
        let cached = match unfiltered {
            true => self.cache.user_totals.get(&key).map(|n| *n),
            false => None,
        };
        query.skip_total = cached.is_some();
        let (users, total) = self.repo.search_users(&query).await?;
        match cached {
            Some(n) => Ok((users, n)),
            None => {
                if unfiltered {
                    self.cache.user_totals.put(key, std::sync::Arc::new(total));
                }
                Ok((users, total))
            }
        }
    }

    /// `GET /api/get-users`: a page of an organization you administer (with `p`), or — as
    /// Casdoor answers small organizations — all of it, but never more than `max` users.
    /// Returns the users and how many match in all.
    pub async fn get_users_page(
        &self,
        caller: &Principal,
        params: &UserListParams,
        max: u64,
    ) -> Result<(Vec<User>, u64), Error> {
        let owner = given(&params.owner).ok_or_else(|| Error::invalid("owner: is required"))?;
        if !caller.administers(owner) {
            return Err(Error::forbidden());
        }
        let (query, _) = params.query(max)?;
        self.users_page(query).await
    }

    /// `GET /api/get-global-users`: every organization's users, for global administrators.
    pub async fn get_global_users(
        &self,
        caller: &Principal,
        params: &UserListParams,
        max: u64,
    ) -> Result<(Vec<User>, u64), Error> {
        if !caller.is_global_admin() {
            return Err(Error::forbidden());
        }
        let (mut query, _) = params.query(max)?;
        query.owner = None;
        self.users_page(query).await
    }

    /// `GET /api/get-sorted-users?owner=&sorter=&limit=`.
    pub async fn get_sorted_users(
        &self,
        caller: &Principal,
        owner: &str,
        sorter: &str,
        limit: &str,
        max: u64,
    ) -> Result<Vec<User>, Error> {
        if owner.is_empty() {
            return Err(Error::invalid("owner: is required"));
        }
        if !caller.administers(owner) {
            return Err(Error::forbidden());
        }
        let by = UserSort::parse(sorter).ok_or_else(|| {
            Error::invalid(format!(
                "sorter: {sorter:?} is not sortable (one of {SORT_FIELDS})"
            ))
        })?;
        let limit = match limit.trim() {
            "" => max,
            l => l
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    Error::invalid(format!("limit: must be a whole number from 1, got {l:?}"))
                })?
                .min(max),
        };
        // Casdoor sorts descending: the newest, the latest sign-ins first.
        let query = UserQuery {
            owner: Some(owner.to_owned()),
            search: None,
            sort: Some((by, false)),
            offset: 0,
            limit,
            skip_total: true,
            forbidden: None,
        };
        Ok(self.repo.search_users(&query).await?.0)
    }

    /// `GET /api/get-user-count?owner=`: how many users the organization has (`isOnline` is
    /// accepted and ignored: this server keeps no online state).
    pub async fn user_count(&self, caller: &Principal, owner: &str) -> Result<u64, Error> {
        if owner.is_empty() {
            return Err(Error::invalid("owner: is required"));
        }
        if !caller.administers(owner) {
            return Err(Error::forbidden());
        }
        if let Some(n) = self.cache.user_totals.get(owner) {
            return Ok(*n);
        }
        let n = self.repo.count_users(owner).await?.max(0) as u64;
        self.cache
            .user_totals
            .put(owner.to_owned(), std::sync::Arc::new(n));
        Ok(n)
    }

    /// `GET /api/get-user?owner=&email=|phone=|userId=`: one user of an organization you
    /// administer, or yourself; `None` when there is none.
    pub async fn find_user(
        &self,
        caller: &Principal,
        owner: &str,
        key: UserKey,
    ) -> Result<Option<User>, Error> {
        if owner.is_empty() {
            return Err(Error::invalid("owner: is required"));
        }
        let user = match &key {
            UserKey::Email(e) => self.repo.get_user_by_email(owner, e.trim()).await?,
            UserKey::Phone(p) => {
                let phone = Phone::parse("phone", p, "")?;
                self.repo.get_user_by_phone(owner, phone.e164()).await?
            }
            UserKey::Id(id) => self
                .repo
                .get_user_by_id(id.trim())
                .await?
                .filter(|u| u.owner.as_str() == owner),
        };
        let Some(user) = user else {
            return if caller.administers(owner) {
                Ok(None)
            } else {
                Err(Error::forbidden())
            };
        };
        let is_self = matches!(caller, Principal::User(u) if u.id == user.id);
        if !is_self && !caller.administers(owner) {
            return Err(Error::forbidden());
        }
        Ok(Some(user))
    }
}
