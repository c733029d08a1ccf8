//! WeChat identities and phone numbers (SPEC §4 step 6, §8): who a mini program sign-in is,
//! binding and unbinding identities, and the E.164 backfill of phones stored before §8.

use std::collections::HashMap;

use chrono::Utc;
use diesel::prelude::*;
use iam_domain::StoreError;
use iam_domain::model::{
    BindOutcome, UnbindOutcome, User, WechatIdentity, WechatSignIn, WechatUserOutcome,
};
use iam_domain::ports::NewUser;
use iam_domain::values::{Phone, WechatId};

use crate::conn::{AnyConnection, DbError, on_any, write_tx};
use crate::repo::upsert_wechat_key;
use crate::rows::{IdentityRow, UserRow, parse_ts, stored_unionid, ts};
use crate::schema::*;

fn user(row: UserRow) -> Result<User, DbError> {
    User::try_from(row).map_err(DbError::from)
}

/// The user of (appid, openid), with the unionid the identity holds.
fn user_by_identity(
    c: &mut AnyConnection,
    appid: &str,
    openid: &str,
) -> Result<Option<(User, Option<WechatId>)>, DbError> {
    // Every sign-in's one read: on the backend's own connection (see on_any).
    let row = on_any!(c, |c| users::table
        .inner_join(wechat_identities::table)
        .filter(wechat_identities::appid.eq(appid))
        .filter(wechat_identities::openid.eq(openid))
        .select((UserRow::as_select(), wechat_identities::unionid))
        .first::<(UserRow, String)>(c)
        .optional()?);
    row.map(|(u, unionid)| Ok((user(u)?, stored_unionid(&unionid)?)))
        .transpose()
}

/// The user of `organization` holding `unionid` through any of their identities (or, for users
/// made elsewhere, in their properties). The oldest wins, so the answer is stable.
fn user_by_unionid(
    c: &mut AnyConnection,
    organization: &str,
    unionid: &str,
) -> Result<Option<User>, DbError> {
    let via_identity = users::table
        .inner_join(wechat_identities::table)
        .filter(wechat_identities::organization.eq(organization))
        .filter(wechat_identities::unionid.eq(unionid))
        .order(users::created_time.asc())
        .select(UserRow::as_select())
        .first::<UserRow>(c)
        .optional()?;
    let row = match via_identity {
        Some(r) => Some(r),
        None => users::table
            .filter(users::owner.eq(organization))
            .filter(users::wechat_union_id.eq(unionid))
            .order(users::created_time.asc())
            .select(UserRow::as_select())
            .first::<UserRow>(c)
            .optional()?,
    };
    row.map(user).transpose()
}

pub(crate) fn user_by_phone(
    c: &mut AnyConnection,
    organization: &str,
    e164: &str,
) -> Result<Option<User>, DbError> {
    users::table
        .filter(users::owner.eq(organization))
        .filter(users::phone_e164.eq(e164))
        .select(UserRow::as_select())
        .first::<UserRow>(c)
        .optional()?
        .map(user)
        .transpose()
}

/// Whether `phone` belongs to a user of `organization` other than `user`.
fn phone_held_by_another(
    c: &mut AnyConnection,
    organization: &str,
    phone: Option<&Phone>,
    user: &User,
) -> Result<bool, DbError> {
    let Some(p) = phone.filter(|p| !user.has_phone(p)) else {
        return Ok(false);
    };
    Ok(user_by_phone(c, organization, p.e164())?.is_some_and(|other| other.id != user.id))
}

pub(crate) fn insert_identity(
    c: &mut AnyConnection,
    identity: &WechatIdentity,
    user_id: &str,
) -> Result<(), DbError> {
    let mut row = IdentityRow::from(identity);
    row.user_id = user_id.to_owned();
    on_any!(c, |c| diesel::insert_into(wechat_identities::table)
        .values(&row)
        .execute(c)?);
    Ok(())
}

/// A first sign-in's new user and the WeChat identity that names them (inside the caller's
/// transaction); a uniqueness violation when another sign-in created them first.
pub(crate) fn insert_wechat_user(
    c: &mut AnyConnection,
    user: &User,
    identity: &WechatIdentity,
) -> Result<(), DbError> {
    // On the backend's own connection: the multi-backend one writes each statement's SQL text
    // again to find it among the prepared ones (a first sign-in's largest statement).
    let row = UserRow::from(user);
    on_any!(c, |c| diesel::insert_into(users::table)
        .values(&row)
        .execute(c)?);
    insert_identity(c, identity, &user.id)
}

/// The find-or-create loop. Each write is one transaction that starts by writing; a uniqueness
/// violation means another caller won the race (the same identity, or another identity with
/// the same phone), so we read again and find their row.
pub(crate) fn find_or_create(
    c: &mut AnyConnection,
    sign_in: &WechatSignIn,
    new_user: Option<NewUser>,
) -> Result<WechatUserOutcome, DbError> {
    resolve(c, sign_in, new_user.as_ref(), Writes::Allowed)?.ok_or_else(|| {
        DbError::from(StoreError::Unavailable(
            "find-or-create stopped before writing".into(),
        ))
    })
}

/// What [`find_or_create`] answers when that takes no write: the identity's user (or their
/// phone's conflict), or `NotFound` when nothing links the sign-in to anyone and no user is to
/// be created. `None` when a write is needed: linking the identity to a user found by unionid
/// or phone, or creating the user. Only reads, so it waits for no writer (SQLite's WAL).
pub(crate) fn find_without_writing(
    c: &mut AnyConnection,
    sign_in: &WechatSignIn,
    new_user: Option<&NewUser>,
) -> Result<Option<WechatUserOutcome>, DbError> {
    resolve(c, sign_in, new_user, Writes::Refused)
}

#[derive(Clone, Copy, PartialEq)]
enum Writes {
    Allowed,
    /// Stop (answer `None`) where a write would be made.
    Refused,
}

fn resolve(
    c: &mut AnyConnection,
    sign_in: &WechatSignIn,
    new_user: Option<&NewUser>,
    writes: Writes,
) -> Result<Option<WechatUserOutcome>, DbError> {
    let identity = &sign_in.identity;
    let org = identity.organization.as_str();
    let phone = sign_in.phone.as_ref();
    let mut built: Option<User> = None;
    for _ in 0..8 {
        if let Some((user, stored_unionid)) =
            user_by_identity(c, &identity.appid, &identity.openid)?
        {
            if phone_held_by_another(c, org, phone, &user)? {
                return Ok(Some(WechatUserOutcome::PhoneConflict));
            }
            return Ok(Some(WechatUserOutcome::Found {
                user,
                stored_unionid,
            }));
        }
        let by_unionid = match &identity.unionid {
            None => None,
            Some(unionid) => user_by_unionid(c, org, unionid)?,
        };
        let link = match (by_unionid, phone) {
            (Some(u), _) => {
                if phone_held_by_another(c, org, phone, &u)? {
                    return Ok(Some(WechatUserOutcome::PhoneConflict));
                }
                Some(u)
            }
            (None, Some(p)) => user_by_phone(c, org, p.e164())?,
            (None, None) => None,
        };
        if let Some(user) = link {
            if writes == Writes::Refused {
                return Ok(None);
            }
            match write_tx(c, |c| insert_identity(c, identity, &user.id)) {
                Ok(()) => return Ok(Some(WechatUserOutcome::Linked(user))),
                Err(e) if e.is_unique_violation() => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(make) = new_user else {
            return Ok(Some(WechatUserOutcome::NotFound));
        };
        if writes == Writes::Refused {
            return Ok(None);
        }
        let new_user: &User = built.get_or_insert_with(|| make());
        let created = write_tx(c, |c| insert_wechat_user(c, new_user, identity));
        match created {
            Ok(()) => return Ok(Some(WechatUserOutcome::Created(new_user.clone()))),
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict(format!(
        "user for wechat identity {} (a user with that name exists without the identity)",
        identity.openid
    ))
    .into())
}

pub(crate) fn list_user_identities(
    c: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<WechatIdentity>, DbError> {
    let rows: Vec<IdentityRow> = wechat_identities::table
        .filter(wechat_identities::user_id.eq(user_id))
        .order((wechat_identities::created_time, wechat_identities::appid))
        .select(IdentityRow::as_select())
        .load(c)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let last: Option<String> = wechat_sessions::table
            .find((&r.appid, &r.openid))
            .select(wechat_sessions::updated_time)
            .first(c)
            .optional()?;
        let mut identity = WechatIdentity::try_from(r)?;
        identity.last_signin_time = last.map(|t| parse_ts("wechat session", &t)).transpose()?;
        out.push(identity);
    }
    Ok(out)
}

/// Fills the user's WeChat fields (Casdoor's `wechat`, `wechatOpenId`, `wechatUnionId`) that
/// are still empty from a newly bound identity.
fn fill_wechat_fields(c: &mut AnyConnection, identity: &WechatIdentity) -> Result<(), DbError> {
    let id = identity.user_id.as_str();
    diesel::update(users::table.find(id).filter(users::wechat.eq("")))
        .set(users::wechat.eq(identity.openid.as_str()))
        .execute(c)?;
    diesel::update(users::table.find(id).filter(users::wechat_open_id.eq("")))
        .set(users::wechat_open_id.eq(identity.openid.as_str()))
        .execute(c)?;
    if let Some(unionid) = &identity.unionid {
        diesel::update(users::table.find(id).filter(users::wechat_union_id.eq("")))
            .set(users::wechat_union_id.eq(unionid.as_str()))
            .execute(c)?;
    }
    Ok(())
}

pub(crate) fn bind(
    c: &mut AnyConnection,
    identity: &WechatIdentity,
    sealed_key: &[u8],
) -> Result<BindOutcome, DbError> {
    let once = |c: &mut AnyConnection| {
        write_tx(c, |c| {
            let owner: Option<String> = wechat_identities::table
                .find((identity.appid.as_str(), identity.openid.as_str()))
                .select(wechat_identities::user_id)
                .first(c)
                .optional()?;
            match owner {
                Some(o) if o != identity.user_id => Ok(BindOutcome::OtherUser),
                Some(_) => {
                    upsert_wechat_key(c, &identity.appid, &identity.openid, sealed_key)?;
                    Ok(BindOutcome::AlreadyBound)
                }
                None => {
                    insert_identity(c, identity, &identity.user_id)?;
                    upsert_wechat_key(c, &identity.appid, &identity.openid, sealed_key)?;
                    fill_wechat_fields(c, identity)?;
                    Ok(BindOutcome::Bound)
                }
            }
        })
    };
    // A concurrent bind of the same identity makes the insert fail: read again.
    match once(c) {
        Err(e) if e.is_unique_violation() => once(c),
        other => other,
    }
}

pub(crate) fn unbind(
    c: &mut AnyConnection,
    user_id: &str,
    appid: &str,
    openid: Option<&str>,
) -> Result<UnbindOutcome, DbError> {
    write_tx(c, |c| {
        // The user's row lock (a no-op update) serializes unbinds of one user, so two of them
        // cannot each leave the other as the last way in and both go through.
        let locked = diesel::update(users::table.find(user_id))
            .set(users::id.eq(users::id))
            .execute(c)?;
        if locked == 0 {
            return Ok(UnbindOutcome::NotBound);
        }
        let all: Vec<(String, String)> = wechat_identities::table
            .filter(wechat_identities::user_id.eq(user_id))
            .order(wechat_identities::created_time)
            .select((wechat_identities::appid, wechat_identities::openid))
            .load(c)?;
        let (mine, others): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(a, o)| a == appid && openid.is_none_or(|wanted| o == wanted));
        let openid = match mine.as_slice() {
            [] => return Ok(UnbindOutcome::NotBound),
            [(_, o)] => o.clone(),
            several => {
                let openids = several.iter().map(|(_, o)| o.clone()).collect();
                return Ok(UnbindOutcome::Several(openids));
            }
        };
        let (has_password, wechat): (bool, String) = users::table
            .find(user_id)
            .select((users::password_hash.is_not_null(), users::wechat))
            .first(c)?;
        if others.is_empty() && !has_password {
            return Ok(UnbindOutcome::LastWayIn);
        }
        diesel::delete(
            wechat_identities::table
                .filter(wechat_identities::user_id.eq(user_id))
                .filter(wechat_identities::appid.eq(appid))
                .filter(wechat_identities::openid.eq(&openid)),
        )
        .execute(c)?;
        diesel::delete(wechat_sessions::table.find((appid, &openid))).execute(c)?;
        // Casdoor's `wechat` names the user's first openid: move it to one that still exists.
        if openid == wechat {
            let next = others.first().map(|(_, o)| o.clone()).unwrap_or_default();
            diesel::update(users::table.find(user_id))
                .set((
                    users::wechat.eq(&next),
                    users::wechat_open_id.eq(&next),
                    users::updated_time.eq(ts(&Utc::now())),
                ))
                .execute(c)?;
        }
        Ok(UnbindOutcome::Unbound(openid))
    })
}

/// Gives every user whose phone was stored before §8 its E.164 form, in one transaction. Two
/// users of one organization with the same number stop it: nothing is written and the error
/// names them, so an operator can decide whose number it is. A phone that cannot be parsed is
/// kept as it is, without an E.164 form, and logged.
pub(crate) fn backfill_phones(c: &mut AnyConnection) -> Result<usize, DbError> {
    // After the first run only unparseable phones are left here, so a start reads few rows.
    let rows: Vec<(String, String, String, String, String)> = users::table
        .filter(users::phone.ne(""))
        .filter(users::phone_e164.is_null())
        .order((users::owner, users::created_time, users::name))
        .select((
            users::id,
            users::owner,
            users::name,
            users::phone,
            users::country_code,
        ))
        .load(c)?;
    let mut holder: HashMap<(String, String), String> = HashMap::new();
    let (mut updates, mut clashes) = (Vec::new(), Vec::new());
    for (id, owner, name, phone, country) in &rows {
        let parsed = match Phone::parse("phone", phone, country) {
            Ok(p) => p,
            Err(e) => {
                // The reason quotes the number: log only which field and user.
                tracing::warn!(user = %format!("{owner}/{name}"), field = e.field, "phone kept without an E.164 form: it is not a phone number the library accepts");
                continue;
            }
        };
        let e164 = parsed.e164().to_owned();
        let first = match holder.get(&(owner.clone(), e164.clone())) {
            Some(n) => Some(n.clone()),
            None => user_by_phone(c, owner, &e164)?.map(|u| u.name.to_string()),
        };
        match first {
            Some(first) => clashes.push(format!(
                "{owner}/{first} and {owner}/{name} both have {}",
                parsed.masked()
            )),
            None => {
                holder.insert((owner.clone(), e164.clone()), name.clone());
                updates.push((id.clone(), e164));
            }
        }
    }
    if !clashes.is_empty() {
        return Err(StoreError::Migration(format!(
            "a phone number may belong to one user of an organization, but {}. \
             Nothing was changed: give one user of each pair another phone (or none), then start again",
            clashes.join("; ")
        ))
        .into());
    }
    if updates.is_empty() {
        return Ok(0);
    }
    write_tx(c, |c| {
        for (id, e164) in &updates {
            diesel::update(users::table.find(id))
                .set(users::phone_e164.eq(e164))
                .execute(c)?;
        }
        Ok(updates.len())
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use iam_domain::model::{WechatIdentity, WechatSignIn, WechatUserOutcome};
    use iam_domain::ports::Repository;
    use iam_domain::values::{AppId, WechatId};

    fn sign_in() -> WechatSignIn {
        WechatSignIn {
            identity: WechatIdentity {
                appid: AppId::parse("wxaaaaaaaaaaaaaaaa").expect("appid"),
                openid: WechatId::parse("openid", "oNOBODY").expect("openid"),
                unionid: None,
                organization: "demo".into(),
                user_id: String::new(),
                created_time: chrono::Utc::now(),
                last_signin_time: None,
            },
            phone: None,
        }
    }

    /// With no connection idle, a sign-in's read is not answered on the caller's thread: it
    /// waits for a connection on the blocking pool, as every other read does, and then answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_no_idle_connection_the_read_waits_on_the_pool() {
        let (_dir, store) = crate::test_store(1).await;
        assert!(
            store.try_here(|_| Ok(())).is_some(),
            "an idle connection is used here"
        );
        let held = store.pool.get().expect("the only connection");
        assert!(store.try_here(|_| Ok(())).is_none(), "none is idle");
        let s = store.clone();
        let read =
            tokio::spawn(async move { s.find_or_create_wechat_user(&sign_in(), None).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!read.is_finished(), "answered without a connection");
        drop(held);
        let outcome = read.await.expect("task").expect("read");
        assert_eq!(outcome, WechatUserOutcome::NotFound);
    }
}
