//! `Repository` for [`Store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use iam_domain::StoreError;
use iam_domain::model::{
    ADMIN_OWNER, Application, Cert, Organization, Provider, PurgeReport, RefreshOutcome,
    RefreshToken, Revocation, SeedBundle, SeedReport, Session, SessionQuery, SessionSelector,
    SignInWrite, TokenRecord, User, WechatIdentity, WechatUserOutcome,
};
use iam_domain::model::{
    BindOutcome, ExportPart, PasswordFailures, StoredAccessToken, UnbindOutcome, WechatSignIn,
};
use iam_domain::ports::{NewUser, Repository, StoreResult};

use crate::Store;
use crate::conn::{AnyConnection, DbError, insert_rows, write_tx};
use crate::identities as ids;
use crate::rows::*;
use crate::schema::*;
use crate::sessions as sess;

pub(crate) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, DbError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter()
        .map(|r| T::try_from(r).map_err(DbError::from))
        .collect()
}

fn convert_opt<R, T>(row: Option<R>) -> Result<Option<T>, DbError>
where
    T: TryFrom<R, Error = StoreError>,
{
    row.map(|r| T::try_from(r).map_err(DbError::from))
        .transpose()
}

pub(crate) fn read_organizations(c: &mut AnyConnection) -> Result<Vec<Organization>, DbError> {
    convert(
        organizations::table
            .order(organizations::name)
            .select(OrganizationRow::as_select())
            .load(c)?,
    )
}

/// The configuration's reads, shared by the `list_` methods and `iam export`'s snapshot; each
/// object's secrets opened as it is read.
impl Store {
    pub(crate) fn read_applications(
        &self,
        c: &mut AnyConnection,
        organization: Option<&str>,
    ) -> Result<Vec<Application>, DbError> {
        let mut q = applications::table
            .order(applications::name)
            .select(ApplicationRow::as_select())
            .into_boxed();
        if let Some(org) = organization {
            q = q.filter(applications::organization.eq(org.to_owned()));
        }
        let rows: Vec<Application> = convert(q.load(c)?)?;
        Ok(rows
            .into_iter()
            .map(|a| self.open_app(a))
            .collect::<Result<_, _>>()?)
    }

    pub(crate) fn read_providers(
        &self,
        c: &mut AnyConnection,
        owner: Option<&str>,
    ) -> Result<Vec<Provider>, DbError> {
        let mut q = providers::table
            .order((providers::owner, providers::name))
            .select(ProviderRow::as_select())
            .into_boxed();
        if let Some(owner) = owner {
            q = q.filter(providers::owner.eq(owner.to_owned()));
        }
        let rows: Vec<Provider> = convert(q.load(c)?)?;
        Ok(rows
            .into_iter()
            .map(|p| self.open_provider(p))
            .collect::<Result<_, _>>()?)
    }

    pub(crate) fn read_certs(&self, c: &mut AnyConnection) -> Result<Vec<Cert>, DbError> {
        let rows: Vec<Cert> = convert(
            certs::table
                .order(certs::name)
                .select(CertRow::as_select())
                .load(c)?,
        )?;
        Ok(rows
            .into_iter()
            .map(|x| self.open_cert(x))
            .collect::<Result<_, _>>()?)
    }
}

/// An upsert without ON CONFLICT (diesel's multi-backend has none): update, and insert when
/// nothing was there.
pub(crate) fn upsert_wechat_key(
    c: &mut AnyConnection,
    appid: &str,
    openid: &str,
    sealed: &[u8],
) -> Result<(), DbError> {
    let now = ts(&Utc::now());
    let updated = crate::fixed::execute(
        c,
        crate::fixed::NewSessionKey {
            sealed,
            at: &now,
            appid,
            openid,
        },
    )?;
    if updated == 0 {
        let row = (
            wechat_sessions::appid.eq(appid),
            wechat_sessions::openid.eq(openid),
            wechat_sessions::sealed_key.eq(sealed),
            wechat_sessions::updated_time.eq(&now),
        );
        crate::conn::on_any!(c, |c| diesel::insert_into(wechat_sessions::table)
            .values(row)
            .execute(c)?);
    }
    Ok(())
}

/// Runs a write again when a concurrent insert won a race (the losing transaction rolled back).
pub(crate) fn retry_unique<T>(mut f: impl FnMut() -> Result<T, DbError>) -> Result<T, DbError> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if e.is_unique_violation() && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

fn check_application_refs(c: &mut AnyConnection, app: &Application) -> Result<(), DbError> {
    for item in &app.providers {
        let owners: Vec<&str> = if item.owner.is_empty() {
            vec![ADMIN_OWNER, app.organization.as_str()]
        } else {
            vec![item.owner.as_str()]
        };
        let found: i64 = providers::table
            .filter(providers::name.eq(item.name.as_str()))
            .filter(providers::owner.eq_any(owners))
            .count()
            .get_result(c)?;
        if found == 0 {
            return Err(StoreError::MissingReference(format!(
                "provider {:?} listed by application {:?}",
                item.name, app.name
            ))
            .into());
        }
    }
    if let Some(cert) = &app.cert {
        let found: i64 = certs::table
            .filter(certs::name.eq(cert.as_str()))
            .count()
            .get_result(c)?;
        if found == 0 {
            return Err(StoreError::MissingReference(format!(
                "cert {:?} of application {:?}",
                cert, app.name
            ))
            .into());
        }
    }
    Ok(())
}

/// New objects only, in dependency order; the caller's transaction makes it all or nothing.
fn insert_together(c: &mut AnyConnection, bundle: &SeedBundle) -> Result<(), DbError> {
    for o in &bundle.organizations {
        diesel::insert_into(organizations::table)
            .values(&OrganizationRow::from(o))
            .execute(c)?;
    }
    for p in &bundle.providers {
        diesel::insert_into(providers::table)
            .values(&ProviderRow::from(p))
            .execute(c)?;
    }
    for app in &bundle.applications {
        check_application_refs(c, app)?;
        diesel::insert_into(applications::table)
            .values(&ApplicationRow::try_from(app)?)
            .execute(c)?;
    }
    Ok(())
}

/// Users or identities asked about, or inserted, in one statement while seeding.
const SEED_CHUNK: usize = 500;

/// Two-part keys grouped by their first part (an owner, an appid): one
/// `first = ? AND second IN (…)` question each.
fn by_first<'a>(
    keys: impl Iterator<Item = (&'a str, &'a str)>,
) -> std::collections::BTreeMap<&'a str, Vec<&'a str>> {
    let mut groups: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (first, second) in keys {
        groups.entry(first).or_default().push(second);
    }
    groups
}

/// Which of these users are stored, by (owner, name): their ids.
fn existing_users<'a>(
    c: &mut AnyConnection,
    chunk: &'a [User],
) -> Result<std::collections::HashMap<(&'a str, &'a str), String>, DbError> {
    let mut found = std::collections::HashMap::new();
    for (owner, names) in by_first(chunk.iter().map(|u| (u.owner.as_str(), u.name.as_str()))) {
        let rows: Vec<(String, String)> = crate::conn::on_any!(c, |c| users::table
            .filter(users::owner.eq(owner))
            .filter(users::name.eq_any(&names))
            .select((users::name, users::id))
            .load(c)?);
        let asked: std::collections::HashSet<&str> = names.into_iter().collect();
        for (name, id) in rows {
            if let Some(name) = asked.get(name.as_str()) {
                found.insert((owner, *name), id);
            }
        }
    }
    Ok(found)
}

/// Which of these identities are stored, by (appid, openid).
fn existing_identities<'a>(
    c: &mut AnyConnection,
    chunk: &'a [WechatIdentity],
) -> Result<std::collections::HashSet<(&'a str, &'a str)>, DbError> {
    let mut found = std::collections::HashSet::new();
    let keys = chunk.iter().map(|i| (i.appid.as_str(), i.openid.as_str()));
    for (appid, openids) in by_first(keys) {
        let rows: Vec<String> = crate::conn::on_any!(c, |c| wechat_identities::table
            .filter(wechat_identities::appid.eq(appid))
            .filter(wechat_identities::openid.eq_any(&openids))
            .select(wechat_identities::openid)
            .load(c)?);
        let asked: std::collections::HashSet<&str> = openids.into_iter().collect();
        for openid in rows {
            if let Some(openid) = asked.get(openid.as_str()) {
                found.insert((appid, *openid));
            }
        }
    }
    Ok(found)
}

fn apply_seed(
    c: &mut AnyConnection,
    bundle: &SeedBundle,
    new_only: bool,
) -> Result<SeedReport, DbError> {
    let mut report = SeedReport::default();
    let mut tally = |existed: bool| {
        match (existed, new_only) {
            (false, _) => report.created += 1,
            (true, true) => report.kept += 1,
            (true, false) => report.replaced += 1,
        };
        !(existed && new_only)
    };
    // One organization, cert, provider or application: replaced (or kept) when its key is
    // taken, inserted when not. The row is built only when it is written.
    macro_rules! seed_row {
        ($table:path, $key:expr, $row:expr) => {{
            let existed = $table.find($key).count().get_result::<i64>(c)? > 0;
            if tally(existed) {
                let row = $row;
                if existed {
                    diesel::update($table.find($key)).set(&row).execute(c)?;
                } else {
                    diesel::insert_into($table).values(&row).execute(c)?;
                }
            }
        }};
    }
    for o in &bundle.organizations {
        seed_row!(
            organizations::table,
            o.name.as_str(),
            OrganizationRow::from(o)
        );
    }
    for cert in &bundle.certs {
        seed_row!(certs::table, cert.name.as_str(), CertRow::from(cert));
    }
    for p in &bundle.providers {
        let key = (p.owner.as_str(), p.name.as_str());
        seed_row!(providers::table, key, ProviderRow::from(p));
    }
    for app in &bundle.applications {
        seed_row!(applications::table, app.name.as_str(), {
            check_application_refs(c, app)?;
            ApplicationRow::try_from(app)?
        });
    }
    // Users and identities a chunk at a time: a seed may be an `iam export` of a million
    // users, and a round trip per row to PostgreSQL took six minutes for 100,000 of them.
    // Which are stored is asked before anything is written (a table filled inside this
    // transaction has no statistics, and PostgreSQL's plan then scans it for each question);
    // what this seed writes is remembered here. The new rows go in a chunk a statement.
    let mut known: std::collections::HashMap<(&str, &str), String> = Default::default();
    for chunk in bundle.users.chunks(SEED_CHUNK) {
        known.extend(existing_users(c, chunk)?);
    }
    for chunk in bundle.users.chunks(SEED_CHUNK) {
        let mut rows: Vec<UserRow> = Vec::with_capacity(chunk.len());
        let mut pending = std::collections::HashMap::new();
        for u in chunk {
            let key = (u.owner.as_str(), u.name.as_str());
            // Named twice: the later one replaces the earlier, as it would a stored one.
            let earlier = pending.get(&key).copied();
            let found = known.get(&key);
            if tally(found.is_some()) {
                let mut row = UserRow::from(u);
                match (earlier, found) {
                    (Some(i), _) => {
                        let slot: &mut UserRow = &mut rows[i];
                        row.id = std::mem::take(&mut slot.id);
                        *slot = row;
                    }
                    (None, Some(id)) => {
                        // The id is the user's identity in tokens: replacing keeps it.
                        row.id = id.clone();
                        diesel::update(users::table.find(id)).set(&row).execute(c)?;
                    }
                    (None, None) => {
                        known.insert(key, row.id.clone());
                        pending.insert(key, rows.len());
                        rows.push(row);
                    }
                }
            }
        }
        insert_rows(c, users::table, rows)?;
    }
    let mut stored = std::collections::HashSet::new();
    for chunk in bundle.identities.chunks(SEED_CHUNK) {
        stored.extend(existing_identities(c, chunk)?);
    }
    for chunk in bundle.identities.chunks(SEED_CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for identity in chunk {
            if stored.insert((identity.appid.as_str(), identity.openid.as_str())) {
                report.created += 1;
                rows.push(IdentityRow::from(identity));
            } else {
                report.kept += 1;
            }
        }
        insert_rows(c, wechat_identities::table, rows)?;
    }
    Ok(report)
}

#[async_trait]
impl Repository for Store {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|c| c.batch_execute("SELECT 1").map_err(DbError::from))
            .await
    }

    async fn get_organization(&self, name: &str) -> StoreResult<Option<Organization>> {
        let name = name.to_owned();
        self.run(move |c| {
            let row = organizations::table
                .find(name)
                .select(OrganizationRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn list_organizations(&self) -> StoreResult<Vec<Organization>> {
        self.run(read_organizations).await
    }

    async fn insert_organization(&self, org: &Organization) -> StoreResult<()> {
        let row = OrganizationRow::from(org);
        self.run(move |c| {
            diesel::insert_into(organizations::table)
                .values(&row)
                .execute(c)?;
            Ok(())
        })
        .await
    }

    async fn update_organization(&self, org: &Organization) -> StoreResult<bool> {
        let row = OrganizationRow::from(org);
        self.run(move |c| {
            let n = diesel::update(organizations::table.find(row.name.clone()))
                .set(&row)
                .execute(c)?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_organization(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.run(move |c| {
            write_tx(c, |c| {
                // No such organization: nothing to delete. Its providers are those whose owner
                // is its name, and `admin` owns the shared ones, so going on would delete every
                // shared provider on a request naming an organization `admin`.
                let exists: i64 = organizations::table.find(&name).count().get_result(c)?;
                if exists == 0 {
                    return Ok(false);
                }
                let users: i64 = users::table
                    .filter(users::owner.eq(&name))
                    .count()
                    .get_result(c)?;
                let apps: i64 = applications::table
                    .filter(applications::organization.eq(&name))
                    .count()
                    .get_result(c)?;
                if users > 0 || apps > 0 {
                    return Err(StoreError::Conflict(format!(
                        "organization {name:?} still has {users} users and {apps} applications; it"
                    ))
                    .into());
                }
                let n = diesel::delete(providers::table.filter(providers::owner.eq(&name)))
                    .execute(c)
                    .and_then(|_| diesel::delete(organizations::table.find(&name)).execute(c))?;
                Ok(n > 0)
            })
        })
        .await
    }

    async fn get_application(&self, name: &str) -> StoreResult<Option<Application>> {
        let name = name.to_owned();
        self.run(move |c| {
            let row = applications::table
                .find(name)
                .select(ApplicationRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await?
        .map(|x| self.open_app(x))
        .transpose()
    }

    async fn get_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        let client_id = client_id.to_owned();
        self.run(move |c| {
            let row = applications::table
                .filter(applications::client_id.eq(client_id))
                .select(ApplicationRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await?
        .map(|x| self.open_app(x))
        .transpose()
    }

    async fn list_applications(&self, organization: Option<&str>) -> StoreResult<Vec<Application>> {
        let (store, organization) = (self.clone(), organization.map(str::to_owned));
        self.run(move |c| store.read_applications(c, organization.as_deref()))
            .await
    }

    async fn insert_application(&self, app: &Application) -> StoreResult<()> {
        let app = self.seal_app(app)?;
        self.run(move |c| {
            write_tx(c, |c| {
                check_application_refs(c, &app)?;
                diesel::insert_into(applications::table)
                    .values(&ApplicationRow::try_from(&app)?)
                    .execute(c)?;
                Ok(())
            })
        })
        .await
    }

    async fn update_application(&self, app: &Application) -> StoreResult<bool> {
        let app = self.seal_app(app)?;
        self.run(move |c| {
            write_tx(c, |c| {
                check_application_refs(c, &app)?;
                let n = diesel::update(applications::table.find(app.name.as_str()))
                    .set(&ApplicationRow::try_from(&app)?)
                    .execute(c)?;
                Ok(n > 0)
            })
        })
        .await
    }

    async fn delete_application(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.run(move |c| Ok(diesel::delete(applications::table.find(name)).execute(c)? > 0))
            .await
    }

    async fn get_provider(&self, owner: &str, name: &str) -> StoreResult<Option<Provider>> {
        let key = (owner.to_owned(), name.to_owned());
        self.run(move |c| {
            let row = providers::table
                .find(key)
                .select(ProviderRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await?
        .map(|x| self.open_provider(x))
        .transpose()
    }

    async fn list_providers(&self, owner: Option<&str>) -> StoreResult<Vec<Provider>> {
        let (store, owner) = (self.clone(), owner.map(str::to_owned));
        self.run(move |c| store.read_providers(c, owner.as_deref()))
            .await
    }

    async fn insert_together(&self, bundle: &SeedBundle) -> StoreResult<()> {
        let bundle = self.seal_bundle(bundle.clone())?;
        self.run(move |c| write_tx(c, |c| insert_together(c, &bundle)))
            .await
    }

    async fn insert_provider(&self, provider: &Provider) -> StoreResult<()> {
        let row = ProviderRow::from(&self.seal_provider(provider)?);
        self.run(move |c| {
            diesel::insert_into(providers::table)
                .values(&row)
                .execute(c)?;
            Ok(())
        })
        .await
    }

    async fn update_provider(&self, provider: &Provider) -> StoreResult<bool> {
        let row = ProviderRow::from(&self.seal_provider(provider)?);
        self.run(move |c| {
            let key = (row.owner.clone(), row.name.clone());
            Ok(diesel::update(providers::table.find(key))
                .set(&row)
                .execute(c)?
                > 0)
        })
        .await
    }

    async fn delete_provider(&self, owner: &str, name: &str) -> StoreResult<bool> {
        let key = (owner.to_owned(), name.to_owned());
        self.run(move |c| Ok(diesel::delete(providers::table.find(key)).execute(c)? > 0))
            .await
    }

    async fn get_cert(&self, name: &str) -> StoreResult<Option<Cert>> {
        let name = name.to_owned();
        self.run(move |c| {
            let row = certs::table
                .find(name)
                .select(CertRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await?
        .map(|x| self.open_cert(x))
        .transpose()
    }

    async fn list_certs(&self) -> StoreResult<Vec<Cert>> {
        let store = self.clone();
        self.run(move |c| store.read_certs(c)).await
    }

    async fn insert_cert(&self, cert: &Cert) -> StoreResult<()> {
        let row = CertRow::from(&self.seal_cert(cert)?);
        self.run(move |c| {
            diesel::insert_into(certs::table).values(&row).execute(c)?;
            Ok(())
        })
        .await
    }

    async fn update_cert(&self, cert: &Cert) -> StoreResult<bool> {
        let row = CertRow::from(&self.seal_cert(cert)?);
        self.run(move |c| {
            Ok(diesel::update(certs::table.find(row.name.clone()))
                .set(&row)
                .execute(c)?
                > 0)
        })
        .await
    }

    async fn delete_cert(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.run(move |c| Ok(diesel::delete(certs::table.find(name)).execute(c)? > 0))
            .await
    }

    async fn get_user(&self, owner: &str, name: &str) -> StoreResult<Option<User>> {
        let (owner, name) = (owner.to_owned(), name.to_owned());
        self.run(move |c| {
            let row = users::table
                .filter(users::owner.eq(owner))
                .filter(users::name.eq(name))
                .select(UserRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn search_users(
        &self,
        query: &iam_domain::model::UserQuery,
    ) -> StoreResult<(Vec<User>, u64)> {
        let query = query.clone();
        self.run(move |c| crate::directory::search(c, &query)).await
    }

    async fn get_user_by_email(&self, owner: &str, email: &str) -> StoreResult<Option<User>> {
        let (owner, email) = (owner.to_owned(), email.to_owned());
        self.run(move |c| crate::directory::by_email(c, &owner, &email))
            .await
    }

    async fn get_user_by_phone(&self, owner: &str, e164: &str) -> StoreResult<Option<User>> {
        let (owner, e164) = (owner.to_owned(), e164.to_owned());
        self.run(move |c| ids::user_by_phone(c, &owner, &e164))
            .await
    }

    async fn get_user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.run(move |c| {
            let row = users::table
                .find(id)
                .select(UserRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn list_users(&self, owner: Option<&str>) -> StoreResult<Vec<User>> {
        let owner = owner.map(str::to_owned);
        self.run(move |c| {
            let mut q = users::table
                .order((users::owner, users::name))
                .select(UserRow::as_select())
                .into_boxed();
            if let Some(owner) = owner {
                q = q.filter(users::owner.eq(owner));
            }
            convert(q.load(c)?)
        })
        .await
    }

    async fn count_users(&self, owner: &str) -> StoreResult<i64> {
        let owner = owner.to_owned();
        self.run(move |c| {
            Ok(users::table
                .filter(users::owner.eq(owner))
                .count()
                .get_result(c)?)
        })
        .await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let row = UserRow::from(user);
        self.run(move |c| {
            diesel::insert_into(users::table).values(&row).execute(c)?;
            Ok(())
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<bool> {
        let row = UserRow::from(user);
        self.run(move |c| {
            Ok(diesel::update(users::table.find(row.id.clone()))
                .set(&row)
                .execute(c)?
                > 0)
        })
        .await
    }

    async fn delete_user(&self, owner: &str, name: &str) -> StoreResult<bool> {
        let (owner, name) = (owner.to_owned(), name.to_owned());
        self.run(move |c| {
            let n = diesel::delete(
                users::table
                    .filter(users::owner.eq(owner))
                    .filter(users::name.eq(name)),
            )
            .execute(c)?;
            Ok(n > 0)
        })
        .await
    }

    async fn password_failures(&self, user_id: &str) -> StoreResult<PasswordFailures> {
        let id = user_id.to_owned();
        self.run(move |c| crate::passwords::get(c, &id)).await
    }

    async fn add_password_failure(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<PasswordFailures> {
        let id = user_id.to_owned();
        self.run(move |c| crate::passwords::add(c, &id, now, stale_before))
            .await
    }

    async fn reset_password_failures(&self, user_id: &str) -> StoreResult<()> {
        let id = user_id.to_owned();
        self.run(move |c| crate::passwords::reset(c, &id)).await
    }

    async fn get_access_token(&self, appid: &str) -> StoreResult<Option<StoredAccessToken>> {
        let appid = appid.to_owned();
        self.run(move |c| crate::access_tokens::get(c, &appid))
            .await
    }

    async fn lease_access_token(
        &self,
        appid: &str,
        holder: &str,
        seen_version: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let (appid, holder) = (appid.to_owned(), holder.to_owned());
        self.run(move |c| {
            crate::access_tokens::lease(c, &appid, &holder, seen_version, now_ms, until_ms)
        })
        .await
    }

    async fn put_access_token(
        &self,
        appid: &str,
        holder: &str,
        sealed: &[u8],
        refresh_at_ms: i64,
        expires_at_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let (appid, holder, sealed) = (appid.to_owned(), holder.to_owned(), sealed.to_vec());
        self.run(move |c| {
            crate::access_tokens::put(c, &appid, &holder, &sealed, refresh_at_ms, expires_at_ms)
        })
        .await
    }

    async fn release_access_token(&self, appid: &str, holder: &str) -> StoreResult<()> {
        let (appid, holder) = (appid.to_owned(), holder.to_owned());
        self.run(move |c| crate::access_tokens::release(c, &appid, &holder))
            .await
    }

    async fn expire_access_token(&self, appid: &str, version: i64) -> StoreResult<bool> {
        let appid = appid.to_owned();
        self.run(move |c| crate::access_tokens::expire(c, &appid, version))
            .await
    }

    async fn export(
        &self,
        mut part: Box<dyn FnMut(ExportPart) -> bool + Send>,
    ) -> StoreResult<bool> {
        let store = self.clone();
        self.run(move |c| store.export_snapshot(c, &mut *part))
            .await
    }

    async fn list_wechat_identities(&self) -> StoreResult<Vec<WechatIdentity>> {
        self.run(|c| {
            convert(
                wechat_identities::table
                    .order((wechat_identities::appid, wechat_identities::openid))
                    .select(IdentityRow::as_select())
                    .load(c)?,
            )
        })
        .await
    }

    async fn get_wechat_identity(
        &self,
        appid: &str,
        openid: &str,
    ) -> StoreResult<Option<WechatIdentity>> {
        let key = (appid.to_owned(), openid.to_owned());
        self.run(move |c| {
            let row = wechat_identities::table
                .find(key)
                .select(IdentityRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn find_or_create_wechat_user(
        &self,
        sign_in: &WechatSignIn,
        new_user: Option<NewUser>,
    ) -> StoreResult<WechatUserOutcome> {
        // Most sign-ins are answered by reads alone: a returning user, or no user yet.
        if let Some(found) =
            self.try_here(|c| ids::find_without_writing(c, sign_in, new_user.as_ref()))
            && let Some(outcome) = found?
        {
            return Ok(outcome);
        }
        let sign_in = sign_in.clone();
        self.run(move |c| ids::find_or_create(c, &sign_in, new_user))
            .await
    }

    async fn list_user_identities(&self, user_id: &str) -> StoreResult<Vec<WechatIdentity>> {
        let user_id = user_id.to_owned();
        self.run(move |c| ids::list_user_identities(c, &user_id))
            .await
    }

    async fn bind_wechat_identity(
        &self,
        identity: &WechatIdentity,
        sealed_key: &[u8],
    ) -> StoreResult<BindOutcome> {
        let (identity, sealed) = (identity.clone(), sealed_key.to_vec());
        self.run(move |c| ids::bind(c, &identity, &sealed)).await
    }

    async fn unbind_wechat_identity(
        &self,
        user_id: &str,
        appid: &str,
        openid: Option<&str>,
    ) -> StoreResult<UnbindOutcome> {
        let (user_id, appid) = (user_id.to_owned(), appid.to_owned());
        let openid = openid.map(str::to_owned);
        self.run(move |c| ids::unbind(c, &user_id, &appid, openid.as_deref()))
            .await
    }

    async fn save_wechat_session(
        &self,
        appid: &str,
        openid: &str,
        sealed_key: &[u8],
    ) -> StoreResult<()> {
        let (appid, openid, sealed) = (appid.to_owned(), openid.to_owned(), sealed_key.to_vec());
        self.run(move |c| {
            retry_unique(|| write_tx(c, |c| upsert_wechat_key(c, &appid, &openid, &sealed)))
        })
        .await
    }

    async fn record_sign_in(&self, write: &SignInWrite) -> StoreResult<Vec<String>> {
        let write = write.clone();
        // PostgreSQL: one transaction per sign-in. Grouping them there (tried: +43% returning
        // sign-ins) failed a two-node first-sign-in race in CI with a 503; not yet understood.
        if self.driver == crate::Driver::Sqlite {
            return self.sign_ins.record(self.pool.clone(), write).await;
        }
        self.run(move |c| retry_unique(|| write_tx(c, |c| sess::record_sign_in(c, &write))))
            .await
    }

    async fn rotate_refresh(
        &self,
        hash: &str,
        application: &str,
        next: &RefreshToken,
        session_expires: DateTime<Utc>,
    ) -> StoreResult<RefreshOutcome> {
        let (hash, application, next) = (hash.to_owned(), application.to_owned(), next.clone());
        self.run(move |c| {
            write_tx(c, |c| {
                sess::rotate_refresh(c, &hash, &application, &next, session_expires)
            })
        })
        .await
    }

    async fn get_refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshToken>> {
        let hash = hash.to_owned();
        self.run(move |c| {
            let row = refresh_tokens::table
                .find(hash)
                .select(RefreshRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>> {
        let id = id.to_owned();
        self.run(move |c| {
            let row = sessions::table
                .find(id)
                .select(SessionRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn list_sessions(
        &self,
        query: &SessionQuery,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<Session>, u64)> {
        let query = query.clone();
        self.run(move |c| sess::list_sessions(c, &query, now)).await
    }

    async fn revoke_sessions(
        &self,
        which: &SessionSelector,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let (which, reason) = (which.clone(), reason.to_owned());
        self.run(move |c| write_tx(c, |c| sess::revoke_sessions(c, &which, &reason, now)))
            .await
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let jti = jti.to_owned();
        self.run(move |c| write_tx(c, |c| sess::revoke_jti(c, &jti, expires, now)))
            .await
    }

    async fn revocations_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Revocation>> {
        self.run(move |c| sess::revocations_since(c, since, now))
            .await
    }

    async fn purge(
        &self,
        now: DateTime<Utc>,
        records_before: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<PurgeReport> {
        self.run(move |c| sess::purge(c, now, records_before, batch))
            .await
    }

    async fn insert_records(&self, batch: &[iam_domain::model::Record]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.to_vec();
        self.run(move |c| write_tx(c, |c| crate::records::insert(c, &batch)))
            .await
    }

    async fn record_counts(
        &self,
        organization: Option<&str>,
        since: DateTime<Utc>,
        by_day: bool,
    ) -> StoreResult<Vec<iam_domain::model::CountRow>> {
        let org = organization.map(str::to_owned);
        self.run(move |c| crate::records::record_counts(c, org.as_deref(), since, by_day))
            .await
    }

    async fn rollup_counts(
        &self,
        organization: Option<&str>,
        from: &str,
    ) -> StoreResult<Vec<iam_domain::model::CountRow>> {
        let (org, from) = (organization.map(str::to_owned), from.to_owned());
        self.run(move |c| crate::records::rollup_counts(c, org.as_deref(), &from))
            .await
    }

    async fn new_users_since(
        &self,
        organization: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, u64)>> {
        let org = organization.map(str::to_owned);
        self.run(move |c| crate::records::new_users_since(c, org.as_deref(), since))
            .await
    }

    async fn roll_up_days(&self, from: &str, until: &str) -> StoreResult<u32> {
        let (from, until) = (from.to_owned(), until.to_owned());
        self.run(move |c| crate::records::roll_up_days(c, &from, &until))
            .await
    }

    async fn list_records(
        &self,
        query: &iam_domain::model::RecordQuery,
    ) -> StoreResult<(Vec<iam_domain::model::Record>, u64)> {
        let query = query.clone();
        self.run(move |c| crate::records::list(c, &query)).await
    }

    async fn session_table_counts(&self) -> StoreResult<[u64; 4]> {
        self.run(sess::table_counts).await
    }

    async fn get_legacy_token(&self, access_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = access_hash.to_owned();
        self.run(move |c| {
            let row = tokens::table
                .filter(tokens::access_token_hash.eq(hash))
                .select(TokenRow::as_select())
                .first(c)
                .optional()?;
            convert_opt(row)
        })
        .await
    }

    async fn revoke_legacy_token(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |c| {
            diesel::update(tokens::table.find(id))
                .set(tokens::revoked.eq(true))
                .execute(c)?;
            Ok(())
        })
        .await
    }

    async fn get_wechat_session(&self, appid: &str, openid: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = (appid.to_owned(), openid.to_owned());
        self.run(move |c| {
            Ok(wechat_sessions::table
                .find(key)
                .select(wechat_sessions::sealed_key)
                .first(c)
                .optional()?)
        })
        .await
    }

    async fn apply_seed(&self, bundle: SeedBundle, new_only: bool) -> StoreResult<SeedReport> {
        let bundle = self.seal_bundle(bundle)?;
        self.run(move |c| write_tx(c, |c| apply_seed(c, &bundle, new_only)))
            .await
    }
}
