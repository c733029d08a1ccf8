//! `iam export`'s read: one snapshot, handed out a page at a time.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use iam_domain::model::{ExportPart, SeedBundle, User, WechatIdentity};
use iam_domain::ports::EXPORT_PAGE;

use crate::Store;
use crate::conn::{AnyConnection, DbError};
use crate::repo::{convert, read_organizations};
use crate::rows::*;
use crate::schema::*;

/// Runs `f` in a read transaction that sees one snapshot throughout: SQLite's deferred
/// transaction reads one state of the log from its first read to its end (and blocks no
/// writer); PostgreSQL's is made REPEATABLE READ, as each statement of an ordinary one sees
/// what committed before it.
fn snapshot<T>(
    c: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    c.transaction(|c| {
        if let AnyConnection::Postgresql(_) = c {
            c.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        f(c)
    })
}

impl Store {
    /// The export's read (see `Repository::export`). Users are read organization by
    /// organization, by name after the last one sent: each page is one seek into the
    /// (owner, name) key, however far in. Every user has an organization (a foreign key), so
    /// no user is missed.
    pub(crate) fn export_snapshot(
        &self,
        c: &mut AnyConnection,
        part: &mut dyn FnMut(ExportPart) -> bool,
    ) -> Result<bool, DbError> {
        snapshot(c, |c| {
            let organizations = read_organizations(c)?;
            let applications = self.read_applications(c, None)?;
            let providers = self.read_providers(c, None)?;
            let certs = self.read_certs(c)?;
            let owners: Vec<String> = organizations.iter().map(|o| o.name.to_string()).collect();
            let configuration = SeedBundle {
                organizations,
                applications,
                providers,
                certs,
                ..SeedBundle::default()
            };
            if !part(ExportPart::Configuration(configuration)) {
                return Ok(false);
            }
            for owner in owners {
                let mut after: Option<String> = None;
                loop {
                    let mut q = users::table
                        .filter(users::owner.eq(&owner))
                        .order(users::name)
                        .limit(EXPORT_PAGE as i64)
                        .select(UserRow::as_select())
                        .into_boxed();
                    if let Some(name) = after.take() {
                        q = q.filter(users::name.gt(name));
                    }
                    let users: Vec<User> = convert(q.load(c)?)?;
                    let Some(last) = users.last() else { break };
                    after = Some(last.name.to_string());
                    let more = users.len() == EXPORT_PAGE;
                    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
                    let identities: Vec<WechatIdentity> = convert(
                        wechat_identities::table
                            .filter(wechat_identities::user_id.eq_any(ids))
                            .order((wechat_identities::appid, wechat_identities::openid))
                            .select(IdentityRow::as_select())
                            .load(c)?,
                    )?;
                    if !part(ExportPart::Users { users, identities }) {
                        return Ok(false);
                    }
                    if !more {
                        break;
                    }
                }
            }
            Ok(true)
        })
    }
}
