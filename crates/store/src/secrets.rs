//! Secrets at rest (SPEC §12): signing keys, client secrets and WeChat AppSecrets are sealed with
//! the sealing key (the one that seals session keys, shared by every node) before they reach a
//! row, and opened as they are read. A sealed value is `sealed:v1:<hex>` and is bound to its
//! object (`application/<name>`, `provider/<owner>/<name>`, `cert/<name>`), so a value copied
//! onto another row does not open. Plaintext written by an older version is read as it is and
//! sealed in place at start ([`Store::seal_plaintext_secrets`]).

use diesel::prelude::*;
use iam_domain::model::{Application, Cert, Provider, SeedBundle};
use iam_domain::seed::{hex, unhex};
use iam_domain::{Secret, StoreError};

use crate::Store;
use crate::conn::DbError;
use crate::schema::{applications, certs, providers};

const SEALED: &str = "sealed:v1:";
const CONTEXT: &str = "secret-at-rest";

fn app_key(name: &str) -> String {
    format!("application/{name}")
}

fn provider_key(owner: &str, name: &str) -> String {
    format!("provider/{owner}/{name}")
}

fn cert_key(name: &str) -> String {
    format!("cert/{name}")
}

impl Store {
    fn seal_text(&self, what: &str, secret: &Secret) -> Result<Secret, StoreError> {
        let Some(sealer) = &self.sealer else {
            return Ok(secret.clone());
        };
        // The domain's objects always hold the plain secret (reads open it), so anything
        // non-empty is sealed - even a secret someone chose to spell like a sealed one.
        if secret.expose().is_empty() {
            return Ok(secret.clone());
        }
        let sealed = sealer
            .seal(CONTEXT, what, secret)
            .map_err(|e| StoreError::Corrupt(format!("{what}: cannot seal its secret: {e}")))?;
        Ok(Secret::new(format!("{SEALED}{}", hex(&sealed))))
    }

    fn open_text(&self, what: &str, stored: Secret) -> Result<Secret, StoreError> {
        let Some(h) = stored.expose().strip_prefix(SEALED) else {
            return Ok(stored);
        };
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{what}: its secret is sealed and this store was opened without the sealing key"
            ))
        })?;
        let bytes = unhex(h)
            .ok_or_else(|| StoreError::Corrupt(format!("{what}: the sealed secret is not hex")))?;
        sealer.open(CONTEXT, what, &bytes).map_err(|e| {
            StoreError::Corrupt(format!(
                "{what}: the sealed secret does not open ({e}): is sessionKeyEncryptionKey the one \
                 that sealed it?"
            ))
        })
    }

    pub(crate) fn seal_app(&self, a: &Application) -> Result<Application, StoreError> {
        let mut a = a.clone();
        a.client_secret = self.seal_text(&app_key(a.name.as_str()), &a.client_secret)?;
        Ok(a)
    }

    pub(crate) fn open_app(&self, mut a: Application) -> Result<Application, StoreError> {
        a.client_secret = self.open_text(&app_key(a.name.as_str()), a.client_secret)?;
        Ok(a)
    }

    pub(crate) fn seal_provider(&self, p: &Provider) -> Result<Provider, StoreError> {
        let mut p = p.clone();
        let key = provider_key(p.owner.as_str(), p.name.as_str());
        p.client_secret = self.seal_text(&key, &p.client_secret)?;
        Ok(p)
    }

    pub(crate) fn open_provider(&self, mut p: Provider) -> Result<Provider, StoreError> {
        let key = provider_key(p.owner.as_str(), p.name.as_str());
        p.client_secret = self.open_text(&key, p.client_secret)?;
        Ok(p)
    }

    pub(crate) fn seal_cert(&self, c: &Cert) -> Result<Cert, StoreError> {
        let mut c = c.clone();
        c.private_key = self.seal_text(&cert_key(c.name.as_str()), &c.private_key)?;
        Ok(c)
    }

    pub(crate) fn open_cert(&self, mut c: Cert) -> Result<Cert, StoreError> {
        c.private_key = self.open_text(&cert_key(c.name.as_str()), c.private_key)?;
        Ok(c)
    }

    pub(crate) fn seal_bundle(&self, mut b: SeedBundle) -> Result<SeedBundle, StoreError> {
        for a in &mut b.applications {
            *a = self.seal_app(a)?;
        }
        for p in &mut b.providers {
            *p = self.seal_provider(p)?;
        }
        for c in &mut b.certs {
            *c = self.seal_cert(c)?;
        }
        Ok(b)
    }

    /// Seals, in place, every secret an older version left in plaintext; how many. Safe with
    /// several nodes doing it at once (a row is only ever rewritten from plaintext to sealed).
    pub async fn seal_plaintext_secrets(&self) -> Result<usize, StoreError> {
        if self.sealer.is_none() {
            return Ok(0);
        }
        let me = self.clone();
        self.run(move |c| {
            let plain = |s: &String| !s.is_empty() && !s.starts_with(SEALED);
            let mut n = 0;
            let rows: Vec<(String, String)> = applications::table
                .select((applications::name, applications::client_secret))
                .load(c)?;
            for (name, secret) in rows.into_iter().filter(|(_, s)| plain(s)) {
                let sealed = me.seal_text(&app_key(&name), &Secret::new(secret.clone()))?;
                n += diesel::update(
                    applications::table
                        .find(&name)
                        .filter(applications::client_secret.eq(&secret)),
                )
                .set(applications::client_secret.eq(sealed.expose()))
                .execute(c)?;
            }
            let rows: Vec<(String, String, String)> = providers::table
                .select((providers::owner, providers::name, providers::client_secret))
                .load(c)?;
            for (owner, name, secret) in rows.into_iter().filter(|(_, _, s)| plain(s)) {
                let key = provider_key(&owner, &name);
                let sealed = me.seal_text(&key, &Secret::new(secret.clone()))?;
                n += diesel::update(
                    providers::table
                        .find((&owner, &name))
                        .filter(providers::client_secret.eq(&secret)),
                )
                .set(providers::client_secret.eq(sealed.expose()))
                .execute(c)?;
            }
            let rows: Vec<(String, String)> = certs::table
                .select((certs::name, certs::private_key))
                .load(c)?;
            for (name, key) in rows.into_iter().filter(|(_, s)| plain(s)) {
                let sealed = me.seal_text(&cert_key(&name), &Secret::new(key.clone()))?;
                n += diesel::update(certs::table.find(&name).filter(certs::private_key.eq(&key)))
                    .set(certs::private_key.eq(sealed.expose()))
                    .execute(c)?;
            }
            Ok::<_, DbError>(n)
        })
        .await
    }
}
