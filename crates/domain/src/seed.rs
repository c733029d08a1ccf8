//! Built-in objects that exist on every server (SPEC §6).

use chrono::{DateTime, Utc};

use crate::Secret;
use crate::model::{
    Application, BUILT_IN_APP, BUILT_IN_CERT, BUILT_IN_ORG, ExportPart, Organization, Profile, User,
};
use crate::values::{ClientId, DisplayName, ObjectName, WebUrl};

pub fn built_in_organization(now: DateTime<Utc>) -> Organization {
    Organization {
        name: ObjectName::literal(BUILT_IN_ORG),
        display_name: DisplayName::literal("Built-in Organization"),
        default_avatar: WebUrl::Empty,
        created_time: now,
        extra: Default::default(),
    }
}

/// The application of the built-in organization; its client credentials act as a global
/// administrator for the management API.
pub fn built_in_application(
    client_id: ClientId,
    client_secret: Secret,
    now: DateTime<Utc>,
) -> Application {
    Application {
        name: ObjectName::literal(BUILT_IN_APP),
        display_name: DisplayName::literal("App Built-in"),
        organization: ObjectName::literal(BUILT_IN_ORG),
        client_id,
        client_secret,
        cert: Some(ObjectName::literal(BUILT_IN_CERT)),
        enable_sign_up: false,
        providers: Vec::new(),
        grant_types: vec![
            "password".into(),
            "client_credentials".into(),
            "refresh_token".into(),
        ],
        token_format: "JWT".into(),
        expire_in_hours: Application::DEFAULT_EXPIRE_IN_HOURS,
        refresh_expire_in_hours: Application::DEFAULT_REFRESH_EXPIRE_IN_HOURS,
        max_sessions_per_user: 0,
        created_time: now,
        extra: Default::default(),
    }
}

/// `built-in/admin`, a global administrator. The password hash is made by the caller (the
/// hashing crate is an adapter concern).
pub fn built_in_admin(id: String, password_hash: Secret, now: DateTime<Utc>) -> User {
    User {
        id,
        owner: ObjectName::literal(BUILT_IN_ORG),
        name: ObjectName::literal("admin"),
        user_type: User::NORMAL_USER.into(),
        display_name: DisplayName::literal("Admin"),
        avatar: WebUrl::Empty,
        email: String::new(),
        phone: String::new(),
        country_code: String::new(),
        phone_e164: String::new(),
        is_admin: true,
        is_forbidden: false,
        is_deleted: false,
        signup_application: BUILT_IN_APP.into(),
        wechat: None,
        wechat_open_id: None,
        wechat_union_id: None,
        password_hash: Some(password_hash),
        profile: Profile::default(),
        created_time: now,
        updated_time: now,
        last_signin_time: None,
        extra: Default::default(),
    }
}

/// The objects of an `init_data.json` as they were sent, in the file's order.
#[derive(Debug, Clone, Default)]
pub struct SeedInputs {
    pub organizations: Vec<crate::objects::OrganizationInput>,
    pub providers: Vec<crate::objects::ProviderInput>,
    pub applications: Vec<crate::objects::ApplicationInput>,
    pub users: Vec<UserSeed>,
    pub certs: Vec<crate::objects::CertInput>,
}

/// A user of a seed file, with what only a seed carries.
#[derive(Debug, Clone, Default)]
pub struct UserSeed {
    pub input: crate::objects::UserInput,
    /// A password to hash and set.
    pub password: Option<String>,
    /// An argon2 hash as `iam export` writes it (Casdoor's `passwordType: argon2id`), or that
    /// hash sealed.
    pub password_hash: Option<String>,
    /// (appid, openid, unionid) of the user's WeChat identities.
    pub identities: Vec<(String, String, String)>,
}

/// What `iam export` does with secrets: seal them with the sealing key (a new server with the
/// same key opens them on import), or leave them out (new ones are generated on import).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportSecrets {
    Sealed,
    Omitted,
}

const SEALED: &str = "sealed:";

/// Lower-case hex of `bytes` (sealed secrets are written so, in exports and at rest).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower- or upper-case hex; `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn at(kind: &str, index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{kind}[{index}]")
    } else {
        format!("{kind}[{index}] {name:?}")
    }
}

/// A secret as an export carries it: sealed under its object's name, or left out.
fn export_secret(
    sealer: &dyn crate::ports::SessionSealer,
    how: ExportSecrets,
    what: &str,
    secret: &Secret,
) -> Result<Secret, String> {
    if how == ExportSecrets::Omitted || secret.is_empty() {
        return Ok(Secret::default());
    }
    let sealed = sealer.seal("iam-export", what, secret)?;
    Ok(Secret::new(format!("{SEALED}{}", hex(&sealed))))
}

/// The secrets of one part of an export, sealed or left out as asked.
fn export_secrets(
    sealer: &dyn crate::ports::SessionSealer,
    how: ExportSecrets,
    part: &mut ExportPart,
) -> Result<(), String> {
    let seal = |what: &str, secret: &mut Secret| -> Result<(), String> {
        *secret = export_secret(sealer, how, what, secret)?;
        Ok(())
    };
    match part {
        ExportPart::Configuration(b) => {
            for a in &mut b.applications {
                seal(&format!("application/{}", a.name), &mut a.client_secret)?;
            }
            for p in &mut b.providers {
                seal(
                    &format!("provider/{}/{}", p.owner, p.name),
                    &mut p.client_secret,
                )?;
            }
            for c in &mut b.certs {
                seal(&format!("cert/{}", c.name), &mut c.private_key)?;
            }
        }
        ExportPart::Users { users, .. } => {
            for u in users {
                if let Some(h) = &mut u.password_hash {
                    seal(&format!("user/{}/{}", u.owner, u.name), h)?;
                    if h.is_empty() {
                        u.password_hash = None;
                    }
                }
            }
        }
        ExportPart::End => {}
    }
    Ok(())
}

impl crate::service::Iam {
    /// A secret of a seed file: a sealed one (from `iam export`) is opened with this server's
    /// sealing key; anything else is taken as it is.
    fn seed_secret(&self, what: &str, text: String) -> Result<String, String> {
        let Some(h) = text.strip_prefix(SEALED) else {
            return Ok(text);
        };
        let bytes = unhex(h).ok_or_else(|| "the sealed secret is not hex".to_owned())?;
        self.sealer
            .open("iam-export", what, &bytes)
            .map(|s| s.expose().to_owned())
            .map_err(|_| {
                "the sealed secret cannot be opened: this server's sealing key \
                 (sessionKeyEncryptionKey) is not the one of the server that exported it"
                    .to_owned()
            })
    }

    /// Everything a new server needs to take over from this one (`iam export`): configuration,
    /// signing keys, users with their password hashes and WeChat identities, read as one
    /// snapshot and sent to `to` a part at a time (the channel bounds what is held: a million
    /// users never are at once). [`ExportPart::End`] is sent last, only when everything was
    /// read; `Ok(false)` when `to`'s receiver went away first.
    pub async fn export(
        &self,
        how: ExportSecrets,
        to: std::sync::mpsc::SyncSender<ExportPart>,
    ) -> Result<bool, crate::Error> {
        let sealer = self.sealer.clone();
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let (sending, failure) = (to.clone(), failed.clone());
        let part = Box::new(move |mut part: ExportPart| {
            if let Err(e) = export_secrets(sealer.as_ref(), how, &mut part) {
                if let Ok(mut f) = failure.lock() {
                    *f = Some(e);
                }
                return false;
            }
            sending.send(part).is_ok()
        });
        let read = self.repo.export(part).await?;
        if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
            return Err(crate::Error::Internal(format!(
                "cannot seal the export's secrets: {e}"
            )));
        }
        Ok(read && to.send(ExportPart::End).is_ok())
    }

    /// Builds the seed file's objects with the same constructors the management API uses, so the
    /// two can never disagree. Nothing is written; an error names the object.
    pub async fn build_seed(&self, inputs: SeedInputs) -> Result<crate::model::SeedBundle, String> {
        use crate::model::{Application, Cert, Organization, Provider, User};
        use crate::objects::Purpose;
        let now = Utc::now();
        let mut b = crate::model::SeedBundle::default();
        for (i, o) in inputs.organizations.into_iter().enumerate() {
            let here = at("organizations", i, &o.name);
            b.organizations
                .push(Organization::from_input(o, now).map_err(|e| format!("{here}: {e}"))?);
        }
        for (i, mut c) in inputs.certs.into_iter().enumerate() {
            let here = at("certs", i, &c.name);
            c.private_key = self
                .seed_secret(&format!("cert/{}", c.name), c.private_key)
                .map_err(|e| format!("{here}: privateKey: {e}"))?;
            let (cert, generate) =
                Cert::from_input(c, Purpose::Create, now).map_err(|e| format!("{here}: {e}"))?;
            b.certs.push(
                self.complete_cert(cert, generate)
                    .map_err(|e| format!("{here}: {e}"))?,
            );
        }
        for (i, mut p) in inputs.providers.into_iter().enumerate() {
            let here = at("providers", i, &p.name);
            let owner = if p.owner.is_empty() {
                crate::model::ADMIN_OWNER
            } else {
                &p.owner
            };
            p.client_secret = self
                .seed_secret(&format!("provider/{owner}/{}", p.name), p.client_secret)
                .map_err(|e| format!("{here}: clientSecret: {e}"))?;
            let p = Provider::from_input(p, now).map_err(|e| format!("{here}: {e}"))?;
            p.check_complete().map_err(|e| format!("{here}: {e}"))?;
            b.providers.push(p);
        }
        for (i, mut a) in inputs.applications.into_iter().enumerate() {
            let here = at("applications", i, &a.name);
            a.client_secret = self
                .seed_secret(&format!("application/{}", a.name), a.client_secret)
                .map_err(|e| format!("{here}: clientSecret: {e}"))?;
            b.applications.push(
                Application::from_input(a, Purpose::Create, now)
                    .map_err(|e| format!("{here}: {e}"))?,
            );
        }
        for (i, u) in inputs.users.into_iter().enumerate() {
            let here = at("users", i, &u.input.name);
            let mut user = User::from_input(u.input, now).map_err(|e| format!("{here}: {e}"))?;
            if let Some(h) = u.password_hash.filter(|h| !h.is_empty()) {
                let what = format!("user/{}/{}", user.owner, user.name);
                let hash = self
                    .seed_secret(&what, h)
                    .map_err(|e| format!("{here}: password: {e}"))?;
                if !hash.starts_with("$argon2") {
                    return Err(format!(
                        "{here}: password: passwordType argon2id needs an argon2 hash"
                    ));
                }
                user.password_hash = Some(Secret::new(hash));
            } else if let Some(p) = u.password.filter(|p| !p.is_empty()) {
                // A seeded password is accepted even when it breaks the organization's rules
                // (Casdoor itself seeds `123`), with a warning naming the user.
                let options = b
                    .organizations
                    .iter()
                    .find(|o| o.name == user.owner)
                    .map(crate::password_rules::password_options)
                    .unwrap_or_else(|| vec!["AtLeast6".into()]);
                if let Err(e) = crate::password_rules::check_password(&options, &p) {
                    tracing::warn!(
                        user = %format!("{}/{}", user.owner, user.name),
                        "the seeded {e}; accepted, change it"
                    );
                }
                user.password_hash = Some(
                    self.passwords
                        .hash(&p)
                        .await
                        .map_err(|e| format!("{here}: password: {e}"))?,
                );
            }
            for (appid, openid, unionid) in u.identities {
                let appid =
                    crate::values::AppId::parse(&appid).map_err(|e| format!("{here}: {e}"))?;
                let openid = crate::values::WechatId::parse("openid", &openid)
                    .map_err(|e| format!("{here}: {e}"))?;
                let unionid = crate::values::WechatId::parse_optional("unionid", &unionid)
                    .map_err(|e| format!("{here}: {e}"))?;
                b.identities.push(crate::model::WechatIdentity {
                    appid,
                    openid,
                    unionid,
                    organization: user.owner.to_string(),
                    user_id: user.id.clone(),
                    created_time: now,
                    last_signin_time: None,
                });
            }
            b.users.push(user);
        }
        Ok(b)
    }

    /// Writes a seed bundle in one transaction (see [`crate::ports::Repository::apply_seed`]).
    pub async fn apply_seed(
        &self,
        bundle: crate::model::SeedBundle,
        new_only: bool,
    ) -> Result<crate::model::SeedReport, crate::StoreError> {
        let r = self.repo.apply_seed(bundle, new_only).await;
        self.cache.clear();
        r
    }
}
