//! The returning sign-in's two UPDATEs as statements of a fixed text, so that each connection
//! prepares them once. Diesel's update builder marks every UPDATE unsafe to cache (its SET list
//! may differ from one call to the next), and a profile of returning sign-ins showed SQLite
//! parsing both again on every sign-in.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Binary, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

use crate::conn::{AnyConnection, DbError};

/// `UPDATE users SET last_signin_time = ?, updated_time = ? WHERE id = ?`
pub(crate) struct SignedIn<'a> {
    pub at: &'a str,
    pub user_id: &'a str,
}

/// `UPDATE wechat_sessions SET sealed_key = ?, updated_time = ? WHERE appid = ? AND openid = ?`
pub(crate) struct NewSessionKey<'a> {
    pub sealed: &'a [u8],
    pub at: &'a str,
    pub appid: &'a str,
    pub openid: &'a str,
}

impl QueryId for SignedIn<'_> {
    type QueryId = SignedIn<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryId for NewSessionKey<'_> {
    type QueryId = NewSessionKey<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for SignedIn<'_>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<Text>,
    str: diesel::serialize::ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE users SET last_signin_time = ");
        out.push_bind_param::<Text, _>(self.at)?;
        out.push_sql(", updated_time = ");
        out.push_bind_param::<Text, _>(self.at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.user_id)
    }
}

impl<DB> QueryFragment<DB> for NewSessionKey<'_>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<Text>
        + diesel::sql_types::HasSqlType<Binary>,
    str: diesel::serialize::ToSql<Text, DB>,
    [u8]: diesel::serialize::ToSql<Binary, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE wechat_sessions SET sealed_key = ");
        out.push_bind_param::<Binary, _>(self.sealed)?;
        out.push_sql(", updated_time = ");
        out.push_bind_param::<Text, _>(self.at)?;
        out.push_sql(" WHERE appid = ");
        out.push_bind_param::<Text, _>(self.appid)?;
        out.push_sql(" AND openid = ");
        out.push_bind_param::<Text, _>(self.openid)
    }
}

impl<C> RunQueryDsl<C> for SignedIn<'_> {}
impl<C> RunQueryDsl<C> for NewSessionKey<'_> {}

/// Runs a fixed statement on either backend; the rows it changed.
pub(crate) fn execute<Q>(c: &mut AnyConnection, q: Q) -> Result<usize, DbError>
where
    Q: QueryFragment<Sqlite>
        + QueryFragment<Pg>
        + QueryId
        + RunQueryDsl<diesel::SqliteConnection>
        + RunQueryDsl<diesel::PgConnection>,
{
    Ok(match c {
        AnyConnection::Sqlite(c) => q.execute(c)?,
        AnyConnection::Postgresql(c) => q.execute(c)?,
    })
}
