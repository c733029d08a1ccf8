//! The cluster's WeChat access tokens (SPEC §12): each statement is one conditional write, so
//! nodes racing for the lease or reporting a refused version never both win.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use iam_domain::model::StoredAccessToken;

use crate::conn::{AnyConnection, DbError, on_any};
use crate::records::dialect;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Binary>)]
    sealed: Option<Vec<u8>>,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = BigInt)]
    refresh_at: i64,
    #[diesel(sql_type = BigInt)]
    expires_at: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

pub(crate) fn get(
    c: &mut AnyConnection,
    appid: &str,
) -> Result<Option<StoredAccessToken>, DbError> {
    let sql = dialect(
        c,
        "SELECT sealed, version, refresh_at, expires_at FROM wechat_access_tokens WHERE appid = ?",
    );
    let row: Option<Row> = on_any!(c, |c| diesel::sql_query(sql.as_str())
        .bind::<Text, _>(appid)
        .get_result::<Row>(c)
        .optional()?);
    Ok(row.map(|r| StoredAccessToken {
        sealed: r.sealed,
        version: r.version,
        refresh_at: r.refresh_at,
        expires_at: r.expires_at,
    }))
}

pub(crate) fn lease(
    c: &mut AnyConnection,
    appid: &str,
    holder: &str,
    seen_version: i64,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool, DbError> {
    let create = dialect(
        c,
        "INSERT INTO wechat_access_tokens (appid) VALUES (?) ON CONFLICT (appid) DO NOTHING",
    );
    let take = dialect(
        c,
        "UPDATE wechat_access_tokens SET lease_holder = ?, lease_until = ? \
         WHERE appid = ? AND version = ? AND lease_until < ?",
    );
    let taken = on_any!(c, |c| {
        diesel::sql_query(create.as_str())
            .bind::<Text, _>(appid)
            .execute(c)?;
        diesel::sql_query(take.as_str())
            .bind::<Text, _>(holder)
            .bind::<BigInt, _>(until_ms)
            .bind::<Text, _>(appid)
            .bind::<BigInt, _>(seen_version)
            .bind::<BigInt, _>(now_ms)
            .execute(c)?
    });
    Ok(taken == 1)
}

pub(crate) fn put(
    c: &mut AnyConnection,
    appid: &str,
    holder: &str,
    sealed: &[u8],
    refresh_at_ms: i64,
    expires_at_ms: i64,
) -> Result<Option<i64>, DbError> {
    let sql = dialect(
        c,
        "UPDATE wechat_access_tokens SET sealed = ?, version = version + 1, refresh_at = ?, \
           expires_at = ?, lease_holder = '', lease_until = 0 \
         WHERE appid = ? AND lease_holder = ? RETURNING version",
    );
    let row: Option<Version> = on_any!(c, |c| diesel::sql_query(sql.as_str())
        .bind::<Binary, _>(sealed)
        .bind::<BigInt, _>(refresh_at_ms)
        .bind::<BigInt, _>(expires_at_ms)
        .bind::<Text, _>(appid)
        .bind::<Text, _>(holder)
        .get_result::<Version>(c)
        .optional()?);
    Ok(row.map(|v| v.version))
}

pub(crate) fn release(c: &mut AnyConnection, appid: &str, holder: &str) -> Result<(), DbError> {
    let sql = dialect(
        c,
        "UPDATE wechat_access_tokens SET lease_holder = '', lease_until = 0 \
         WHERE appid = ? AND lease_holder = ?",
    );
    on_any!(c, |c| diesel::sql_query(sql.as_str())
        .bind::<Text, _>(appid)
        .bind::<Text, _>(holder)
        .execute(c)?);
    Ok(())
}

pub(crate) fn expire(c: &mut AnyConnection, appid: &str, version: i64) -> Result<bool, DbError> {
    let sql = dialect(
        c,
        "UPDATE wechat_access_tokens SET refresh_at = 0, expires_at = 0 \
         WHERE appid = ? AND version = ? AND expires_at <> 0",
    );
    let n = on_any!(c, |c| diesel::sql_query(sql.as_str())
        .bind::<Text, _>(appid)
        .bind::<BigInt, _>(version)
        .execute(c)?);
    Ok(n == 1)
}
