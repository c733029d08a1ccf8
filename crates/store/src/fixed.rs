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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{InstrumentationEvent, SimpleConnection};
    use diesel::{Connection, ExpressionMethods, QueryDsl, RunQueryDsl};

    use super::*;

    /// The statements the connection put into its prepared-statement cache.
    fn cached(c: &mut diesel::SqliteConnection) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        c.set_instrumentation(move |e: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = e
                && let Ok(mut v) = into.lock()
            {
                v.push(sql.to_owned());
            }
        });
        seen
    }

    /// The reason this module exists, and its proof: the builder's UPDATE is never cached,
    /// the fixed one is prepared once and then reused.
    #[test]
    fn fixed_updates_are_prepared_once_per_connection() {
        let mut c = diesel::SqliteConnection::establish(":memory:").expect("sqlite");
        c.batch_execute(
            "CREATE TABLE users (id TEXT PRIMARY KEY, last_signin_time TEXT, updated_time TEXT);
             INSERT INTO users VALUES ('u1', NULL, '');
             CREATE TABLE wechat_sessions (appid TEXT, openid TEXT, sealed_key BLOB,
                 updated_time TEXT, PRIMARY KEY (appid, openid));
             INSERT INTO wechat_sessions VALUES ('wx1', 'o1', x'00', '');",
        )
        .expect("schema");
        let seen = cached(&mut c);
        for _ in 0..3 {
            diesel::update(crate::schema::users::table.find("u1"))
                .set(crate::schema::users::updated_time.eq("t0"))
                .execute(&mut c)
                .expect("builder update");
        }
        assert!(
            seen.lock().expect("lock").is_empty(),
            "diesel's update builder is not cached"
        );
        let mut any = AnyConnection::Sqlite(c);
        for n in 0..3 {
            let at = format!("t{n}");
            let user = SignedIn {
                at: &at,
                user_id: "u1",
            };
            assert_eq!(execute(&mut any, user).expect("signed in"), 1);
            let key = NewSessionKey {
                sealed: &[n],
                at: &at,
                appid: "wx1",
                openid: "o1",
            };
            assert_eq!(execute(&mut any, key).expect("session key"), 1);
        }
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2, "each fixed statement cached once: {seen:?}");
        assert!(seen[0].starts_with("UPDATE users SET last_signin_time"));
        assert!(seen[1].starts_with("UPDATE wechat_sessions SET sealed_key"));
    }
}
