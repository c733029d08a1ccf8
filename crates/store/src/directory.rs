//! Finding users among a million (SPEC §10): one organization's page, one prefix search (a range
//! scan on SQLite, `LIKE 'v%'` on a text_pattern_ops index on PostgreSQL), an openid exactly,
//! and the total.

use std::collections::HashMap;

use diesel::prelude::*;
use iam_domain::model::{User, UserQuery, UserSearch, UserSort};

use crate::conn::{AnyConnection, DbError};
use crate::rows::UserRow;
use crate::schema::{users, wechat_identities};

/// `value` and everything it prefixes, in SQLite's bytewise order.
fn upper(value: &str) -> String {
    format!("{value}\u{10FFFF}")
}

/// `v <= col < v || U+10FFFF`: bytewise on SQLite; in the "C" collation on PostgreSQL (the
/// order of its prefix indexes), whatever the database's own collation.
macro_rules! prefix {
    (sqlite, $q:expr, $col:expr, $name:literal, $v:expr) => {
        $q.filter($col.ge($v.clone())).filter($col.lt(upper(&$v)))
    };
    (pg, $q:expr, $col:expr, $name:literal, $v:expr) => {
        $q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(concat!(
                "users.",
                $name,
                " COLLATE \"C\" >= "
            ))
            .bind::<diesel::sql_types::Text, _>($v.clone())
            .sql(concat!(" AND users.", $name, " COLLATE \"C\" < "))
            .bind::<diesel::sql_types::Text, _>(upper(&$v)),
        )
    };
}

macro_rules! filtered {
    ($dialect:ident, $q:expr, $query:expr, $openid_users:expr) => {{
        let mut q = $q;
        let query: &UserQuery = $query;
        if let Some(o) = &query.owner {
            q = q.filter(users::owner.eq(o.clone()));
        }
        if let Some(f) = query.forbidden {
            q = q.filter(users::is_forbidden.eq(f));
        }
        if let Some((by, v)) = &query.search {
            let v = v.clone();
            q = match by {
                UserSearch::Name => prefix!($dialect, q, users::name, "name", v),
                UserSearch::DisplayName => {
                    prefix!($dialect, q, users::display_name, "display_name", v)
                }
                UserSearch::Phone if v.starts_with('+') => {
                    let v = v
                        .chars()
                        .filter(|c| *c == '+' || c.is_ascii_digit())
                        .collect::<String>();
                    prefix!(
                        $dialect,
                        q,
                        users::phone_e164.assume_not_null(),
                        "phone_e164",
                        v
                    )
                }
                UserSearch::Phone => prefix!($dialect, q, users::phone, "phone", v),
                UserSearch::Email => prefix!($dialect, q, users::email, "email", v),
                UserSearch::WechatUnionId => {
                    prefix!($dialect, q, users::wechat_union_id, "wechat_union_id", v)
                }
                UserSearch::Wechat => q.filter(users::id.eq_any($openid_users.clone())),
            };
        }
        q
    }};
}

macro_rules! sorted {
    ($q:expr, $query:expr) => {{
        let q = $q;
        let (by, ascending) = $query.sort.unwrap_or((UserSort::CreatedTime, true));
        macro_rules! by {
            ($col:expr) => {
                if ascending {
                    q.order(($col.asc(), users::name.asc()))
                } else {
                    q.order(($col.desc(), users::name.desc()))
                }
            };
        }
        match by {
            UserSort::CreatedTime => by!(users::created_time),
            UserSort::Name => {
                if ascending {
                    q.order((users::name.asc(), users::owner.asc()))
                } else {
                    q.order((users::name.desc(), users::owner.desc()))
                }
            }
            UserSort::DisplayName => by!(users::display_name),
            UserSort::LastSigninTime => by!(users::last_signin_time),
            UserSort::UpdatedTime => by!(users::updated_time),
        }
    }};
}

/// The users holding `openid`: through any of their identities, or (made elsewhere) as their
/// `wechat`. Two indexed lookups, rather than one `OR` no planner serves from an index.
fn openid_users(
    c: &mut AnyConnection,
    owner: Option<&str>,
    openid: &str,
) -> Result<Vec<String>, DbError> {
    let mut ids: Vec<String> = wechat_identities::table
        .filter(wechat_identities::openid.eq(openid))
        .select(wechat_identities::user_id)
        .load(c)?;
    let mut q = users::table
        .filter(users::wechat.eq(openid))
        .select(users::id)
        .into_boxed();
    if let Some(o) = owner {
        q = q.filter(users::owner.eq(o.to_owned()));
    }
    ids.extend(q.load::<String>(c)?);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// An organization's page in the default order, found from the (owner, created_time, name)
/// index alone and then read by name: a deep page skips index entries, not rows.
fn default_page(
    c: &mut AnyConnection,
    owner: &str,
    ascending: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<UserRow>, DbError> {
    let q = users::table
        .filter(users::owner.eq(owner))
        .select(users::name)
        .offset(offset)
        .limit(limit);
    let names: Vec<String> = if ascending {
        q.order((users::created_time.asc(), users::name.asc()))
            .load(c)?
    } else {
        q.order((users::created_time.desc(), users::name.desc()))
            .load(c)?
    };
    let mut rows: Vec<UserRow> = users::table
        .filter(users::owner.eq(owner))
        .filter(users::name.eq_any(&names))
        .select(UserRow::as_select())
        .load(c)?;
    // Back into the index's order: a name's place looked up, not searched for (a search per
    // comparison made a page of 1,000 users cost 30 ms of CPU in this sort alone).
    let place: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    rows.sort_unstable_by_key(|r| place.get(r.name.as_str()).copied());
    Ok(rows)
}

pub(crate) fn search(
    c: &mut AnyConnection,
    query: &UserQuery,
) -> Result<(Vec<User>, u64), DbError> {
    let (limit, offset) = crate::rows::sql_window(query.limit, query.offset);
    let by_openid = match &query.search {
        Some((UserSearch::Wechat, v)) => openid_users(c, query.owner.as_deref(), v)?,
        _ => Vec::new(),
    };
    let default_order = match query.sort {
        None => Some(true),
        Some((UserSort::CreatedTime, ascending)) => Some(ascending),
        Some(_) => None,
    };
    let (rows, total): (Vec<UserRow>, i64) = if let (Some(owner), None, None, Some(ascending)) =
        (&query.owner, &query.search, query.forbidden, default_order)
    {
        let rows = default_page(c, owner, ascending, offset, limit)?;
        let total = if query.skip_total {
            0
        } else {
            users::table
                .filter(users::owner.eq(owner))
                .count()
                .get_result::<i64>(c)?
        };
        (rows, total)
    } else {
        search_rows(c, query, &by_openid, offset, limit)?
    };
    let users = rows
        .into_iter()
        .map(|r| User::try_from(r).map_err(DbError::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((users, total.max(0) as u64))
}

/// Any other page: the filters and order on either dialect's boxed query.
fn search_rows(
    c: &mut AnyConnection,
    query: &UserQuery,
    by_openid: &[String],
    offset: i64,
    limit: i64,
) -> Result<(Vec<UserRow>, i64), DbError> {
    let by_openid = by_openid.to_vec();
    // The same statements on each dialect's boxed query (their prefix filters differ).
    macro_rules! page_on {
        ($c:expr, $dialect:ident, $backend:ty) => {{
            let total = if query.skip_total {
                0
            } else {
                filtered!(
                    $dialect,
                    users::table.into_boxed::<$backend>(),
                    query,
                    by_openid
                )
                .count()
                .get_result($c)?
            };
            let q = filtered!(
                $dialect,
                users::table.into_boxed::<$backend>(),
                query,
                by_openid
            );
            let rows = sorted!(q, query)
                .select(UserRow::as_select())
                .offset(offset)
                .limit(limit)
                .load($c)?;
            Ok((rows, total))
        }};
    }
    match c {
        AnyConnection::Sqlite(c) => page_on!(c, sqlite, diesel::sqlite::Sqlite),
        AnyConnection::Postgresql(c) => page_on!(c, pg, diesel::pg::Pg),
    }
}

pub(crate) fn by_email(
    c: &mut AnyConnection,
    owner: &str,
    email: &str,
) -> Result<Option<User>, DbError> {
    users::table
        .filter(users::owner.eq(owner))
        .filter(users::email.eq(email))
        .order(users::created_time.asc())
        .select(UserRow::as_select())
        .first::<UserRow>(c)
        .optional()?
        .map(|r| User::try_from(r).map_err(DbError::from))
        .transpose()
}
