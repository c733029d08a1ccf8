//! Failed password attempts per user (SPEC §12's lockout), counted in one statement so that
//! nodes counting at once never lose a failure.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use iam_domain::model::PasswordFailures;

use crate::conn::{AnyConnection, DbError, on_any};
use crate::rows::{parse_ts, ts};
use crate::schema::password_failures;

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Integer)]
    wrong_times: i32,
    #[diesel(sql_type = Text)]
    last_wrong_time: String,
}

fn failures(wrong_times: i32, last: &str) -> Result<PasswordFailures, DbError> {
    Ok(PasswordFailures {
        wrong_times: wrong_times.max(0) as u32,
        last_wrong_time: Some(parse_ts("password failure", last)?),
    })
}

pub(crate) fn get(c: &mut AnyConnection, user_id: &str) -> Result<PasswordFailures, DbError> {
    let row: Option<(i32, String)> = password_failures::table
        .find(user_id)
        .select((
            password_failures::wrong_times,
            password_failures::last_wrong_time,
        ))
        .first(c)
        .optional()?;
    match row {
        Some((n, last)) => failures(n, &last),
        None => Ok(PasswordFailures::default()),
    }
}

/// One more failure at `now`; a count whose last failure came before `stale_before` starts
/// again at one. The count after it.
pub(crate) fn add(
    c: &mut AnyConnection,
    user_id: &str,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> Result<PasswordFailures, DbError> {
    let sql = crate::records::dialect(
        c,
        "INSERT INTO password_failures (user_id, wrong_times, last_wrong_time) VALUES (?, 1, ?) \
         ON CONFLICT (user_id) DO UPDATE SET \
           wrong_times = CASE WHEN password_failures.last_wrong_time < ? THEN 1 \
                              ELSE password_failures.wrong_times + 1 END, \
           last_wrong_time = excluded.last_wrong_time \
         RETURNING wrong_times, last_wrong_time",
    );
    let row = on_any!(c, |c| diesel::sql_query(sql.as_str())
        .bind::<Text, _>(user_id)
        .bind::<Text, _>(ts(&now))
        .bind::<Text, _>(ts(&stale_before))
        .get_result::<Counted>(c)?);
    failures(row.wrong_times, &row.last_wrong_time)
}

pub(crate) fn reset(c: &mut AnyConnection, user_id: &str) -> Result<(), DbError> {
    diesel::delete(password_failures::table.find(user_id)).execute(c)?;
    Ok(())
}
