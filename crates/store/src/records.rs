//! Audit records (SPEC §10): batched inserts, filtered and paginated reads over indexed
//! columns, and the batching writer that takes records off the hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use iam_domain::StoreError;
use iam_domain::model::{Record, RecordField, RecordQuery};
use iam_domain::ports::{AuditSink, Repository};

use crate::conn::{AnyConnection, DbError, on_any};
use crate::rows::{parse_ts, ts};
use crate::schema::records;

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = records)]
pub struct RecordRow {
    pub id: i64,
    pub name: String,
    pub created_time: String,
    pub organization: String,
    pub client_ip: String,
    pub user_name: String,
    pub user_id: String,
    pub method: String,
    pub request_uri: String,
    pub action: String,
    pub language: String,
    pub object: String,
    pub response: String,
    pub status_code: i32,
    pub errcode: i64,
    pub detail: String,
    pub user_agent: String,
    pub is_triggered: bool,
    pub added_by: String,
}

#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = records)]
pub struct NewRecordRow {
    pub name: String,
    pub created_time: String,
    pub organization: String,
    pub client_ip: String,
    pub user_name: String,
    pub user_id: String,
    pub method: String,
    pub request_uri: String,
    pub action: String,
    pub language: String,
    pub object: String,
    pub response: String,
    pub status_code: i32,
    pub errcode: i64,
    pub detail: String,
    pub user_agent: String,
    pub is_triggered: bool,
    pub added_by: String,
}

impl From<&Record> for NewRecordRow {
    fn from(r: &Record) -> Self {
        Self {
            name: r.name.clone(),
            created_time: ts(&r.created_time),
            organization: r.organization.clone(),
            client_ip: r.client_ip.clone(),
            user_name: r.user_name.clone(),
            user_id: r.user_id.clone(),
            method: r.method.clone(),
            request_uri: r.request_uri.clone(),
            action: r.action.clone(),
            language: r.language.clone(),
            object: r.object.clone(),
            response: r.response.clone(),
            status_code: r.status_code,
            errcode: r.wechat_errcode,
            detail: r.detail.clone(),
            user_agent: r.user_agent.clone(),
            is_triggered: r.is_triggered,
            added_by: r.added_by.clone(),
        }
    }
}

impl TryFrom<RecordRow> for Record {
    type Error = StoreError;
    fn try_from(r: RecordRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_time: parse_ts("record", &r.created_time)?,
            id: r.id,
            name: r.name,
            organization: r.organization,
            client_ip: r.client_ip,
            user_name: r.user_name,
            user_id: r.user_id,
            method: r.method,
            request_uri: r.request_uri,
            action: r.action,
            language: r.language,
            object: r.object,
            response: r.response,
            status_code: r.status_code,
            wechat_errcode: r.errcode,
            detail: r.detail,
            user_agent: r.user_agent,
            is_triggered: r.is_triggered,
            added_by: r.added_by,
        })
    }
}

pub(crate) fn insert(c: &mut AnyConnection, batch: &[Record]) -> Result<(), DbError> {
    // 100 rows a statement on PostgreSQL.
    for chunk in batch.chunks(100) {
        let rows: Vec<NewRecordRow> = chunk.iter().map(NewRecordRow::from).collect();
        crate::conn::insert_rows(c, records::table, rows)?;
    }
    Ok(())
}

/// Applies the query's filters to a boxed query of either dialect.
macro_rules! filtered {
    ($q:expr, $query:expr) => {{
        let mut q = $q;
        let query: &RecordQuery = $query;
        if let Some(o) = &query.organization {
            q = q.filter(records::organization.eq(o.clone()));
        }
        if let Some(u) = &query.user_name {
            q = q.filter(records::user_name.eq(u.clone()));
        }
        if let Some(a) = &query.action {
            q = q.filter(records::action.eq(a.clone()));
        }
        if let Some(r) = &query.response {
            q = q.filter(records::response.eq(r.clone()));
        }
        if let Some(from) = &query.from {
            q = q.filter(records::created_time.ge(ts(from)));
        }
        if let Some(to) = &query.to {
            q = q.filter(records::created_time.lt(ts(to)));
        }
        if let Some((field, value)) = &query.field {
            let v = value.clone();
            q = match field {
                RecordField::Name => q.filter(records::name.eq(v)),
                RecordField::CreatedTime => q.filter(records::created_time.eq(v)),
                RecordField::Organization => q.filter(records::organization.eq(v)),
                RecordField::ClientIp => q.filter(records::client_ip.eq(v)),
                RecordField::User => q.filter(records::user_name.eq(v)),
                RecordField::Method => q.filter(records::method.eq(v)),
                RecordField::RequestUri => q.filter(records::request_uri.eq(v)),
                RecordField::Action => q.filter(records::action.eq(v)),
                RecordField::Object => q.filter(records::object.eq(v)),
                RecordField::Response => q.filter(records::response.eq(v)),
                RecordField::StatusCode => {
                    q.filter(records::status_code.eq(v.parse::<i32>().unwrap_or(-1)))
                }
            };
        }
        q
    }};
}

macro_rules! sorted {
    ($q:expr, $query:expr) => {{
        let q = $q;
        let (field, ascending) = $query.sort.unwrap_or((RecordField::CreatedTime, false));
        macro_rules! by {
            ($col:expr) => {
                if ascending {
                    q.order(($col.asc(), records::id.asc()))
                } else {
                    q.order(($col.desc(), records::id.desc()))
                }
            };
        }
        match field {
            RecordField::Name => by!(records::name),
            RecordField::CreatedTime => by!(records::created_time),
            RecordField::Organization => by!(records::organization),
            RecordField::ClientIp => by!(records::client_ip),
            RecordField::User => by!(records::user_name),
            RecordField::Method => by!(records::method),
            RecordField::RequestUri => by!(records::request_uri),
            RecordField::Action => by!(records::action),
            RecordField::Object => by!(records::object),
            RecordField::Response => by!(records::response),
            RecordField::StatusCode => by!(records::status_code),
        }
    }};
}

pub(crate) fn list(
    c: &mut AnyConnection,
    query: &RecordQuery,
) -> Result<(Vec<Record>, u64), DbError> {
    let (limit, offset) = crate::rows::sql_window(query.limit, query.offset);
    macro_rules! page_on {
        ($c:expr, $backend:ty) => {{
            let total = filtered!(records::table.into_boxed::<$backend>(), query)
                .count()
                .get_result($c)?;
            let q = filtered!(records::table.into_boxed::<$backend>(), query);
            let rows = sorted!(q, query)
                .select(RecordRow::as_select())
                .offset(offset)
                .limit(limit)
                .load($c)?;
            (rows, total)
        }};
    }
    let (rows, total): (Vec<RecordRow>, i64) = match c {
        AnyConnection::Sqlite(c) => page_on!(c, diesel::sqlite::Sqlite),
        AnyConnection::Postgresql(c) => page_on!(c, diesel::pg::Pg),
    };
    let records = rows
        .into_iter()
        .map(|r| Record::try_from(r).map_err(DbError::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((records, total.max(0) as u64))
}

/// Deletes at most `batch` records created before `cutoff`.
pub(crate) fn purge(
    c: &mut AnyConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, DbError> {
    let ids: Vec<i64> = records::table
        .filter(records::created_time.lt(ts(&cutoff)))
        .select(records::id)
        .limit(batch)
        .load(c)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(records::table.filter(records::id.eq_any(&ids))).execute(c)? as u64)
}

/// What the writer's queue carries: a record, or a request to say when all before it are written.
// Nearly every item is a record: boxing them to shrink the rare flush would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Record(Record),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The batching writer: records go into a bounded queue and a task writes them in batches of
/// up to [`RecordWriter::BATCH`], one transaction each. A full queue drops the record and counts
/// it (`on_drop`): an audit write never blocks a sign-in. A record that arrives while the writer
/// is idle is written at once; under a stream of them (every client_credentials token is one)
/// the writer commits at most once per [`RecordWriter::PAUSE`] and takes what queued meanwhile,
/// so a burst costs a few transactions a second instead of one per wake-up. What a crash can lose
/// is the batch in flight and what queued behind it (a few milliseconds' worth); a graceful stop
/// flushes the queue first.
#[derive(Clone)]
pub struct RecordWriter {
    tx: tokio::sync::mpsc::Sender<Queued>,
    dropped: Arc<AtomicU64>,
    on_drop: Arc<dyn Fn() + Send + Sync>,
}

impl RecordWriter {
    pub const BATCH: usize = 500;
    /// The least time between two commits of the writer.
    pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

    /// Starts the writer's task on `repo`, with room for `capacity` records in the queue.
    pub fn spawn(
        repo: Arc<dyn Repository>,
        capacity: usize,
        on_drop: Arc<dyn Fn() + Send + Sync>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Queued>(capacity.max(1));
        let task = tokio::spawn(async move {
            let mut queued = Vec::with_capacity(Self::BATCH);
            let mut last_commit: Option<tokio::time::Instant> = None;
            while rx.recv_many(&mut queued, Self::BATCH).await > 0 {
                if let Some(next) = last_commit.map(|t| t + Self::PAUSE)
                    && next > tokio::time::Instant::now()
                {
                    tokio::time::sleep_until(next).await;
                    while queued.len() < Self::BATCH {
                        match rx.try_recv() {
                            Ok(q) => queued.push(q),
                            Err(_) => break,
                        }
                    }
                }
                let mut batch = Vec::with_capacity(queued.len());
                let mut waiting = Vec::new();
                for q in queued.drain(..) {
                    match q {
                        Queued::Record(r) => batch.push(r),
                        Queued::Flush(done) => waiting.push(done),
                    }
                }
                if !batch.is_empty()
                    && let Err(e) = repo.insert_records(&batch).await
                {
                    // The database is down: these are lost, and said so.
                    tracing::warn!(records = batch.len(), error = %e, "audit records not written");
                }
                if !batch.is_empty() {
                    last_commit = Some(tokio::time::Instant::now());
                }
                for done in waiting {
                    let _ = done.send(());
                }
            }
        });
        (
            Self {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                on_drop,
            },
            task,
        )
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl AuditSink for RecordWriter {
    fn record(&self, record: Record) {
        if self.tx.try_send(Queued::Record(record)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            (self.on_drop)();
        }
    }

    async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Queued::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

#[derive(diesel::QueryableByName, Debug)]
struct CountSql {
    #[diesel(sql_type = diesel::sql_types::Text)]
    bucket: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    action: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    response: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    errcode: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl From<CountSql> for iam_domain::model::CountRow {
    fn from(r: CountSql) -> Self {
        Self {
            bucket: r.bucket,
            action: r.action,
            response: r.response,
            errcode: r.errcode,
            n: r.n.max(0) as u64,
        }
    }
}

/// `$1`-style placeholders for PostgreSQL, `?` for SQLite, in a statement written with `?`.
pub(crate) fn dialect(c: &AnyConnection, sql: &str) -> String {
    match c {
        AnyConnection::Sqlite(_) => sql.to_owned(),
        AnyConnection::Postgresql(_) => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(ch);
                }
            }
            out
        }
    }
}

/// Runs a counting statement whose binds are all text.
fn counts(
    c: &mut AnyConnection,
    sql: &str,
    binds: &[String],
) -> Result<Vec<iam_domain::model::CountRow>, DbError> {
    use diesel::sql_types::Text;
    let sql = dialect(c, sql);
    let rows = on_any!(c, |c| {
        let mut q = diesel::sql_query(sql).into_boxed();
        for b in binds {
            q = q.bind::<Text, _>(b.clone());
        }
        q.load::<CountSql>(c)?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The organization filter of a counting statement, and its bind.
fn org_clause(column: &str, organization: Option<&str>, binds: &mut Vec<String>) -> String {
    match organization {
        Some(o) => {
            binds.push(o.to_owned());
            format!("{column} = ? AND ")
        }
        None => String::new(),
    }
}

pub(crate) fn record_counts(
    c: &mut AnyConnection,
    organization: Option<&str>,
    since: DateTime<Utc>,
    by_day: bool,
) -> Result<Vec<iam_domain::model::CountRow>, DbError> {
    let width = if by_day { 10 } else { 13 };
    let mut binds = Vec::new();
    let org = org_clause("organization", organization, &mut binds);
    binds.push(ts(&since));
    let sql = format!(
        "SELECT substr(created_time, 1, {width}) AS bucket, action, response, errcode, \
         count(*) AS n FROM records WHERE {org}created_time >= ? \
         GROUP BY substr(created_time, 1, {width}), action, response, errcode"
    );
    counts(c, &sql, &binds)
}

pub(crate) fn rollup_counts(
    c: &mut AnyConnection,
    organization: Option<&str>,
    from: &str,
) -> Result<Vec<iam_domain::model::CountRow>, DbError> {
    let mut binds = Vec::new();
    let org = org_clause("organization", organization, &mut binds);
    binds.push(from.to_owned());
    let sql = format!(
        "SELECT day AS bucket, action, response, errcode, sum(n) AS n FROM record_rollups \
         WHERE {org}day >= ? GROUP BY day, action, response, errcode"
    );
    let rows = counts(c, &sql.replace("sum(n)", "CAST(sum(n) AS BIGINT)"), &binds)?;
    Ok(rows)
}

pub(crate) fn new_users_since(
    c: &mut AnyConnection,
    organization: Option<&str>,
    since: DateTime<Utc>,
) -> Result<Vec<(String, u64)>, DbError> {
    let mut binds = Vec::new();
    let org = org_clause("owner", organization, &mut binds);
    binds.push(ts(&since));
    let sql = format!(
        "SELECT substr(created_time, 1, 10) AS bucket, 'new-user' AS action, 'ok' AS response, \
         CAST(0 AS BIGINT) AS errcode, count(*) AS n FROM users WHERE {org}created_time >= ? \
         GROUP BY substr(created_time, 1, 10)"
    );
    Ok(counts(c, &sql, &binds)?
        .into_iter()
        .map(|r| (r.bucket, r.n))
        .collect())
}

/// Rolls up one day (`YYYY-MM-DD`) unless it is already: its records' counts and its new
/// users, per organization, and the day's mark, in one transaction. A concurrent roll-up of
/// the same day loses on the mark's key and changes nothing.
fn roll_up_day(c: &mut AnyConnection, day: &str, next: &str) -> Result<bool, DbError> {
    use crate::schema::{record_rollups, rollup_days};
    let done = rollup_days::table
        .find(day)
        .select(rollup_days::day)
        .first::<String>(c)
        .optional()?;
    if done.is_some() {
        return Ok(false);
    }
    let (from, until) = (format!("{day}T00:00:00"), format!("{next}T00:00:00"));
    let records = counts(
        c,
        "SELECT organization AS bucket, action, response, errcode, count(*) AS n FROM records \
         WHERE created_time >= ? AND created_time < ? \
         GROUP BY organization, action, response, errcode",
        &[from.clone(), until.clone()],
    )?;
    let users = counts(
        c,
        "SELECT owner AS bucket, 'new-user' AS action, 'ok' AS response, \
         CAST(0 AS BIGINT) AS errcode, count(*) AS n FROM users \
         WHERE created_time >= ? AND created_time < ? GROUP BY owner",
        &[from, until],
    )?;
    let result = crate::conn::write_tx(c, |c| {
        diesel::insert_into(rollup_days::table)
            .values((
                rollup_days::day.eq(day),
                rollup_days::done_time.eq(ts(&Utc::now())),
            ))
            .execute(c)?;
        for r in records.iter().chain(users.iter()) {
            diesel::insert_into(record_rollups::table)
                .values((
                    record_rollups::organization.eq(&r.bucket),
                    record_rollups::day.eq(day),
                    record_rollups::action.eq(&r.action),
                    record_rollups::response.eq(&r.response),
                    record_rollups::errcode.eq(r.errcode),
                    record_rollups::n.eq(r.n as i64),
                ))
                .execute(c)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn roll_up_days(c: &mut AnyConnection, from: &str, until: &str) -> Result<u32, DbError> {
    let parse = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|e| DbError::from(StoreError::Corrupt(format!("day {s:?}: {e}"))))
    };
    let (mut day, until) = (parse(from)?, parse(until)?);
    let mut rolled = 0;
    while day < until {
        let next = day.succ_opt().unwrap_or(day);
        if roll_up_day(c, &day.to_string(), &next.to_string())? {
            rolled += 1;
        }
        if next == day {
            break;
        }
        day = next;
    }
    Ok(rolled)
}
