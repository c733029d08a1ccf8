//! SPEC §10's benchmark: a database with a million users (each with a WeChat identity and a
//! phone) and five million audit records, filled in minutes with batched multi-row inserts, then
//! the queries an operator runs against it (p50/p95 of each, target p95 ≤ 50 ms), the returning
//! sign-in rate against the same run on an empty database (target ≥ 0.8×), and the database's
//! size.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use diesel::Connection;
use diesel::connection::SimpleConnection;
use iam_e2e::Db;

/// 90 days, in seconds: users and records are spread over them.
const SPAN: i64 = 90 * 24 * 3600;

fn when(now: chrono::DateTime<chrono::Utc>, i: u64, n: u64) -> String {
    let back = SPAN - (SPAN as f64 * (i as f64 / n.max(1) as f64)) as i64;
    (now - chrono::Duration::seconds(back)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn openid(i: u64) -> String {
    format!("oSEED{i:023}")
}

fn exec(conn: &mut Conn, sql: &str) -> Result<()> {
    match conn {
        Conn::Sqlite(c) => c.batch_execute(sql)?,
        Conn::Pg(c) => c.batch_execute(sql)?,
    }
    Ok(())
}

enum Conn {
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
}

/// Inserts `n` rows made by `row(i)` into `head` (an `INSERT … VALUES` prefix), 1,000 rows a
/// statement and 50 statements a transaction.
fn fill(conn: &mut Conn, head: &str, n: u64, row: impl Fn(u64) -> String) -> Result<()> {
    let mut i = 0;
    while i < n {
        let mut tx = String::from("BEGIN;\n");
        for _ in 0..50 {
            if i >= n {
                break;
            }
            let end = (i + 1000).min(n);
            tx.push_str(head);
            let rows: Vec<String> = (i..end).map(&row).collect();
            tx.push_str(&rows.join(","));
            tx.push_str(";\n");
            i = end;
        }
        tx.push_str("COMMIT;");
        exec(conn, &tx)?;
    }
    Ok(())
}

/// Fills the demo organization of a database the server has already migrated and seeded.
pub fn seed(db: &Db, users: u64, records: u64) -> Result<Duration> {
    let started = Instant::now();
    let mut conn = match db.driver() {
        "sqlite" => {
            let mut c = diesel::SqliteConnection::establish(&db.url())?;
            c.batch_execute("PRAGMA busy_timeout = 60000; PRAGMA synchronous = OFF;")?;
            Conn::Sqlite(c)
        }
        _ => Conn::Pg(diesel::PgConnection::establish(&db.url())?),
    };
    let now = chrono::Utc::now();
    let appid = crate::APPID;
    fill(
        &mut conn,
        "INSERT INTO users (id, owner, name, display_name, phone, country_code, phone_e164, \
         signup_application, wechat, wechat_open_id, created_time, updated_time, \
         last_signin_time) VALUES ",
        users,
        |i| {
            let (o, t) = (openid(i), when(now, i, users));
            format!(
                "('00000000-0000-4000-8000-{i:012}','demo','wechat-{o}','User {i}','13{i:09}',\
                 'CN','+8613{i:09}','demo-miniprogram','{o}','{o}','{t}','{t}','{t}')"
            )
        },
    )
    .context("users")?;
    fill(
        &mut conn,
        "INSERT INTO wechat_identities (appid, openid, unionid, organization, user_id, \
         created_time) VALUES ",
        users,
        |i| {
            format!(
                "('{appid}','{}','','demo','00000000-0000-4000-8000-{i:012}','{}')",
                openid(i),
                when(now, i, users)
            )
        },
    )
    .context("identities")?;
    const ACTIONS: [(&str, &str, i64); 6] = [
        ("signin-wechat-miniprogram", "ok", 0),
        ("signin-wechat-miniprogram", "ok", 0),
        ("signin-wechat-miniprogram", "ok", 0),
        ("signin-wechat-miniprogram", "invalid_grant", 40029),
        ("refresh-token", "ok", 0),
        ("signin-password", "invalid_grant", 0),
    ];
    fill(
        &mut conn,
        "INSERT INTO records (name, created_time, organization, client_ip, user_name, \
         user_id, method, request_uri, action, response, status_code, errcode) VALUES ",
        records,
        |i| {
            let (action, response, errcode) = ACTIONS[(i % 6) as usize];
            let u = (i * 7919) % users.max(1);
            let status = if response == "ok" { 200 } else { 400 };
            format!(
                "('seed-{i}','{}','demo','10.0.{}.{}','wechat-{}','00000000-0000-4000-8000-{u:012}',\
                 'POST','/oauth/token','{action}','{response}',{status},{errcode})",
                when(now, i, records),
                (i / 256) % 256,
                i % 256,
                openid(u)
            )
        },
    )
    .context("records")?;
    if let Conn::Pg(c) = &mut conn {
        // What autovacuum does to a table that has settled: statistics, and the visibility map
        // that lets an index-only scan skip the table.
        c.batch_execute("VACUUM ANALYZE")?;
    } else if let Conn::Sqlite(c) = &mut conn {
        c.batch_execute("ANALYZE")?;
    }
    Ok(started.elapsed())
}

/// The database's size in MB.
pub fn size_mb(db: &Db) -> f64 {
    match db {
        Db::Sqlite { .. } => {
            let size = |p: String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            (size(db.url()) + size(format!("{}-wal", db.url()))) as f64 / 1e6
        }
        _ => {
            #[derive(diesel::QueryableByName)]
            struct Size {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                bytes: i64,
            }
            use diesel::RunQueryDsl;
            diesel::PgConnection::establish(&db.url())
                .ok()
                .and_then(|mut c| {
                    diesel::sql_query("SELECT pg_database_size(current_database()) AS bytes")
                        .get_result::<Size>(&mut c)
                        .ok()
                })
                .map(|s| s.bytes as f64 / 1e6)
                .unwrap_or(0.0)
        }
    }
}

/// How many users and WeChat identities the database holds.
pub fn counts(db: &Db) -> Result<(i64, i64)> {
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        users: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        identities: i64,
    }
    use diesel::RunQueryDsl;
    let q = diesel::sql_query(
        "SELECT (SELECT COUNT(*) FROM users) AS users, \
         (SELECT COUNT(*) FROM wechat_identities) AS identities",
    );
    let c: Counts = match db {
        Db::Sqlite { .. } => q.get_result(&mut diesel::SqliteConnection::establish(&db.url())?)?,
        _ => q.get_result(&mut diesel::PgConnection::establish(&db.url())?)?,
    };
    Ok((c.users, c.identities))
}

/// How a timed request is authenticated: the API's Bearer token, or the console's cookie.
pub enum Auth {
    Bearer(String),
    Cookie(String),
}

/// Signs the built-in administrator in to the console as a browser does; its session cookie.
pub async fn console_cookie(base: &str, password: &str) -> Result<String> {
    // The sign-in answers 303 with the cookie: it must not be followed.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie_of = |resp: &reqwest::Response, name: &str| {
        resp.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|l| {
                l.split(';')
                    .next()?
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let login = client.get(format!("{base}/console/login")).send().await?;
    let csrf = cookie_of(&login, "iam_console_login");
    let resp = client
        .post(format!("{base}/console/login"))
        .header(reqwest::header::COOKIE, format!("iam_console_login={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", password),
        ])
        .send()
        .await?;
    let session = cookie_of(&resp, "iam_console");
    anyhow::ensure!(!session.is_empty(), "console sign-in: {}", resp.status());
    Ok(format!("iam_console={session}"))
}

/// p50 and p95 of `samples` GETs of `path`; errors fail the run.
pub async fn timed(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    auth: &Auth,
    samples: usize,
) -> Result<(Duration, Duration)> {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let req = client.get(format!("{base}{path}"));
        let req = match auth {
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Cookie(cookie) => req.header(reqwest::header::COOKIE, cookie),
        };
        let resp = req.send().await?;
        // A redirect (the console's sign-in page) would time the wrong page.
        anyhow::ensure!(
            path.starts_with(resp.url().path()),
            "{path} was redirected to {}",
            resp.url()
        );
        let status = resp.status();
        let body = resp.text().await?;
        times.push(t.elapsed());
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
    }
    times.sort();
    Ok((
        crate::percentile(&times, 0.5),
        crate::percentile(&times, 0.95),
    ))
}
