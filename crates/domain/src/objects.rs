//! Building configuration objects and users from what a caller sent — the management API and the
//! seed file alike. One constructor per entity owns the defaults, the limits and the generated
//! secrets, so the two ways in can never disagree.

use chrono::{DateTime, Utc};

use crate::Secret;
use crate::model::{
    ADMIN_OWNER, Application, Cert, Extra, Organization, Profile, Provider, ProviderItem, User,
};
use crate::values::{
    APPLICATION_LINKS, AppId, ClientId, CryptoAlgorithm, DisplayName, InvalidValue,
    ORGANIZATION_LINKS, ObjectName, USER_LINKS, WebUrl, WechatId, check_links, check_redirect_uris,
    is_mini_program_type, short_text,
};

/// What secrets look like on the way out, and what keeps them on the way back in.
pub const MASK: &str = "***";

/// 256 random bits and more as lowercase hex: generated client ids and secrets.
pub fn random_hex(chars: usize) -> String {
    let mut s = String::with_capacity(chars + 32);
    while s.len() < chars {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(chars);
    s
}

fn name(field: &'static str, s: &str) -> Result<ObjectName, InvalidValue> {
    ObjectName::parse(field, s)
}

fn or_default(s: String, default: &str) -> String {
    if s.is_empty() { default.to_owned() } else { s }
}

/// Token lifetimes: 0 or absent is the default; otherwise 1 hour to 10 years, rounded up.
pub fn hours(field: &'static str, v: Option<f64>, default: i64) -> Result<i64, InvalidValue> {
    match v {
        None => Ok(default),
        Some(0.0) => Ok(default),
        Some(h) if h > 0.0 && h <= 87_600.0 => Ok(h.ceil() as i64),
        Some(h) => Err(InvalidValue::new(
            field,
            format!("{h} is not between 0 and 87600 hours"),
        )),
    }
}

#[derive(Debug, Clone, Default)]
pub struct OrganizationInput {
    pub name: String,
    pub display_name: String,
    pub default_avatar: String,
    pub extra: Extra,
}

impl Organization {
    pub fn from_input(i: OrganizationInput, now: DateTime<Utc>) -> Result<Self, InvalidValue> {
        crate::password_rules::validate_options(i.extra.get("passwordOptions"))
            .map_err(|e| InvalidValue::new("passwordOptions", e))?;
        check_links(&i.extra, ORGANIZATION_LINKS)?;
        Ok(Self {
            name: name("name", &i.name)?,
            display_name: DisplayName::parse("displayName", &i.display_name)?,
            default_avatar: WebUrl::parse("defaultAvatar", &i.default_avatar)?,
            created_time: now,
            extra: i.extra,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProviderItemInput {
    pub owner: String,
    pub name: String,
    pub can_sign_up: Option<bool>,
    pub can_sign_in: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ApplicationInput {
    pub name: String,
    pub display_name: String,
    pub organization: String,
    pub client_id: String,
    pub client_secret: String,
    pub cert: String,
    pub enable_sign_up: bool,
    pub providers: Vec<ProviderItemInput>,
    pub grant_types: Vec<String>,
    pub token_format: String,
    pub expire_in_hours: Option<f64>,
    pub refresh_expire_in_hours: Option<f64>,
    pub max_sessions_per_user: Option<i64>,
    pub extra: Extra,
}

/// Casdoor console's grant types for an application created without any: what a stored
/// application with an empty list gets too (the migration of 2026-12-02).
pub const DEFAULT_GRANT_TYPES: [&str; 6] = [
    "authorization_code",
    "password",
    "client_credentials",
    "token",
    "id_token",
    "refresh_token",
];

/// Whether a constructor makes a new object (secrets may be generated) or the next version of a
/// stored one (an empty or masked secret keeps the stored one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Create,
    Update,
}

impl Application {
    pub fn from_input(
        i: ApplicationInput,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidValue> {
        let mut providers = Vec::with_capacity(i.providers.len());
        for (n, item) in i.providers.into_iter().enumerate() {
            let at = |e: InvalidValue| {
                InvalidValue::new("providers", format!("[{n}].{}: {}", e.field, e.reason))
            };
            if !item.owner.is_empty() {
                ObjectName::parse("owner", &item.owner).map_err(at)?;
            }
            providers.push(ProviderItem {
                name: ObjectName::parse("name", &item.name)
                    .map_err(at)?
                    .into_string(),
                owner: item.owner,
                can_sign_up: item.can_sign_up.unwrap_or(true),
                can_sign_in: item.can_sign_in.unwrap_or(true),
            });
        }
        let create = purpose == Purpose::Create;
        let client_id = match i.client_id {
            id if id.is_empty() && create => random_hex(20),
            id => id,
        };
        let client_id =
            ClientId::parse(&client_id).map_err(|e| InvalidValue::new("clientId", e.reason))?;
        let client_secret = match i.client_secret {
            s if s.is_empty() && create => random_hex(40),
            s if s == MASK && create => {
                return Err(InvalidValue::new("clientSecret", "\"***\" is not a secret"));
            }
            s => s,
        };
        let cert = match i.cert.as_str() {
            "" => None,
            c => Some(ObjectName::parse("cert", c)?),
        };
        for g in &i.grant_types {
            short_text("grantTypes", g, 100)?;
        }
        check_links(&i.extra, APPLICATION_LINKS)?;
        check_redirect_uris(&i.extra)?;
        Ok(Self {
            name: name("name", &i.name)?,
            display_name: DisplayName::parse("displayName", &i.display_name)?,
            organization: name("organization", &i.organization)?,
            client_id,
            client_secret: Secret::new(client_secret),
            cert,
            enable_sign_up: i.enable_sign_up,
            providers,
            // An empty list is Casdoor console's default, never "nothing allowed".
            grant_types: if i.grant_types.is_empty() {
                DEFAULT_GRANT_TYPES
                    .iter()
                    .map(|g| (*g).to_owned())
                    .collect()
            } else {
                i.grant_types
            },
            token_format: or_default(i.token_format, "JWT"),
            expire_in_hours: hours(
                "expireInHours",
                i.expire_in_hours,
                Application::DEFAULT_EXPIRE_IN_HOURS,
            )?,
            refresh_expire_in_hours: hours(
                "refreshExpireInHours",
                i.refresh_expire_in_hours,
                Application::DEFAULT_REFRESH_EXPIRE_IN_HOURS,
            )?,
            max_sessions_per_user: match i.max_sessions_per_user.unwrap_or(0) {
                n @ 0..=10_000 => n as u32,
                _ => {
                    return Err(InvalidValue::new(
                        "maxSessionsPerUser",
                        "must be 0 (unlimited) to 10000",
                    ));
                }
            },
            created_time: now,
            extra: i.extra,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProviderInput {
    pub owner: String,
    pub name: String,
    pub display_name: String,
    pub category: String,
    pub provider_type: String,
    pub sub_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub extra: Extra,
}

impl Provider {
    /// An empty owner is `admin`, Casdoor's owner of shared providers.
    pub fn from_input(i: ProviderInput, now: DateTime<Utc>) -> Result<Self, InvalidValue> {
        if i.provider_type.is_empty() {
            return Err(InvalidValue::new("type", "is required"));
        }
        Ok(Self {
            owner: name("owner", &or_default(i.owner, ADMIN_OWNER))?,
            name: name("name", &i.name)?,
            display_name: DisplayName::parse("displayName", &i.display_name)?,
            category: or_default(i.category, "OAuth"),
            provider_type: short_text("type", &i.provider_type, 100)?,
            sub_type: short_text("subType", &i.sub_type, 100)?,
            client_id: short_text("clientId", &i.client_id, 200)?,
            client_secret: Secret::new(i.client_secret),
            created_time: now,
            extra: i.extra,
        })
    }

    /// A mini program provider must carry a usable APPID and APPSECRET. Checked once the stored
    /// secret has been kept for a masked one.
    pub fn check_complete(&self) -> Result<(), InvalidValue> {
        if !is_mini_program_type(&self.provider_type) {
            return Ok(());
        }
        if self.client_id.is_empty() {
            return Err(InvalidValue::new(
                "clientId",
                "the mini program's APPID is required for a WeChat provider",
            ));
        }
        AppId::parse(&self.client_id).map_err(|e| InvalidValue::new("clientId", e.reason))?;
        if self.client_secret.is_empty() || self.client_secret.expose() == MASK {
            return Err(InvalidValue::new(
                "clientSecret",
                "the mini program's APPSECRET is required for a WeChat provider",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct CertInput {
    pub name: String,
    pub display_name: String,
    pub cert_type: String,
    pub crypto_algorithm: String,
    pub bit_size: Option<i64>,
    pub certificate: String,
    pub private_key: String,
    pub extra: Extra,
}

impl Cert {
    /// A cert as sent. A new cert with neither `certificate` nor `privateKey` is generated by
    /// the caller (the second value is `true`); giving only one of them is an error. An update
    /// keeps what it does not send.
    pub fn from_input(
        i: CertInput,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<(Self, bool), InvalidValue> {
        let alg = CryptoAlgorithm::parse(&i.crypto_algorithm)?;
        let cert_type = match i.cert_type.as_str() {
            "" | "x509" => "x509".to_owned(),
            t => {
                return Err(InvalidValue::new(
                    "type",
                    format!("{t:?} is not supported (x509)"),
                ));
            }
        };
        let bit_size = match (alg, i.bit_size) {
            (_, None | Some(0)) => alg.default_bit_size(),
            (CryptoAlgorithm::Rs256, Some(b)) if [2048, 3072, 4096].contains(&b) => b as i32,
            (CryptoAlgorithm::Es256, Some(256)) => 256,
            (_, Some(b)) => {
                return Err(InvalidValue::new(
                    "bitSize",
                    format!("{b} is not a key size of {}", alg.as_str()),
                ));
            }
        };
        let generate = match (i.certificate.is_empty(), i.private_key.is_empty()) {
            _ if purpose == Purpose::Update => false,
            (true, true) => true,
            (false, false) => false,
            _ => {
                return Err(InvalidValue::new(
                    "certificate, privateKey",
                    "give both, or neither to generate them",
                ));
            }
        };
        let cert_name = name("name", &i.name)?;
        Ok((
            Self {
                // A generated cert is shown by its name when it has no display name.
                display_name: if i.display_name.is_empty() {
                    DisplayName::of_name(&cert_name)
                } else {
                    DisplayName::parse("displayName", &i.display_name)?
                },
                name: cert_name,
                cert_type,
                crypto_algorithm: alg,
                bit_size,
                certificate: i.certificate,
                private_key: Secret::new(i.private_key),
                created_time: now,
                extra: i.extra,
            },
            generate,
        ))
    }
}

#[derive(Debug, Clone, Default)]
pub struct UserInput {
    /// Kept when given (a user moved by `iam export`, so tokens' `sub` stays the same).
    pub id: Option<String>,
    pub owner: String,
    pub name: String,
    pub user_type: String,
    pub display_name: String,
    pub avatar: String,
    pub email: String,
    pub phone: String,
    pub country_code: String,
    pub is_admin: bool,
    pub is_forbidden: bool,
    pub signup_application: String,
    /// `homepage` is checked again by [`User::from_input`], whatever variant it arrives as.
    pub profile: Profile,
    /// The first OpenID and the UnionID (Casdoor's `wechat`, `properties`).
    pub wechat: String,
    pub wechat_open_id: String,
    pub wechat_union_id: String,
    /// Casdoor's fields without a column of their own.
    pub extra: Extra,
}

impl User {
    /// A user made by an administrator or the seed file (not by a sign-in). The id is new; the
    /// password, if any, is hashed by the caller.
    pub fn from_input(i: UserInput, now: DateTime<Utc>) -> Result<Self, InvalidValue> {
        let p = i.profile;
        check_links(&i.extra, USER_LINKS)?;
        let text = |field: &'static str, v: String| short_text(field, &v, 1000);
        let id = match i.id.filter(|id| !id.is_empty()) {
            Some(id) => uuid::Uuid::parse_str(&id)
                .map_err(|_| InvalidValue::new("id", "must be a UUID"))?
                .to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let mut user = Self {
            id,
            owner: name("owner", &i.owner)?,
            name: name("name", &i.name)?,
            user_type: or_default(short_text("type", &i.user_type, 100)?, User::NORMAL_USER),
            display_name: DisplayName::parse("displayName", &i.display_name)?,
            avatar: WebUrl::parse("avatar", &i.avatar)?,
            email: short_text("email", &i.email, 254)?,
            phone: short_text("phone", &i.phone, 32)?,
            country_code: short_text("countryCode", &i.country_code, 8)?,
            phone_e164: String::new(),
            is_admin: i.is_admin,
            is_forbidden: i.is_forbidden,
            is_deleted: false,
            signup_application: short_text("signupApplication", &i.signup_application, 100)?,
            wechat: WechatId::parse_optional("wechat", &i.wechat)?,
            wechat_open_id: WechatId::parse_optional("properties.wechatOpenId", &i.wechat_open_id)?,
            wechat_union_id: WechatId::parse_optional(
                "properties.wechatUnionId",
                &i.wechat_union_id,
            )?,
            password_hash: None,
            profile: Profile {
                first_name: text("firstName", p.first_name)?,
                last_name: text("lastName", p.last_name)?,
                bio: text("bio", p.bio)?,
                gender: text("gender", p.gender)?,
                language: text("language", p.language)?,
                location: text("location", p.location)?,
                region: text("region", p.region)?,
                homepage: WebUrl::parse("homepage", p.homepage.as_str())?,
                title: text("title", p.title)?,
                affiliation: text("affiliation", p.affiliation)?,
                birthday: text("birthday", p.birthday)?,
            },
            created_time: now,
            updated_time: now,
            last_signin_time: None,
            extra: i.extra,
        };
        user.normalize_phone()?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applications_get_defaults_and_secrets() {
        let a = Application::from_input(
            ApplicationInput {
                name: "a".into(),
                organization: "o".into(),
                ..Default::default()
            },
            Purpose::Create,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(a.client_id.len(), 20);
        assert_eq!(a.client_secret.expose().len(), 40);
        assert_eq!(a.expire_in_hours, Application::DEFAULT_EXPIRE_IN_HOURS);
        let e = Application::from_input(
            ApplicationInput {
                name: "a".into(),
                organization: "o".into(),
                expire_in_hours: Some(-1.0),
                ..Default::default()
            },
            Purpose::Create,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.field, "expireInHours");
    }

    #[test]
    fn certs_default_their_size_and_refuse_other_types() {
        let (c, generate) = Cert::from_input(
            CertInput {
                name: "c".into(),
                ..Default::default()
            },
            Purpose::Create,
            Utc::now(),
        )
        .unwrap();
        assert!(generate);
        assert_eq!((c.bit_size, c.display_name.as_str()), (2048, "c"));
        let e = Cert::from_input(
            CertInput {
                name: "c".into(),
                cert_type: "saml".into(),
                ..Default::default()
            },
            Purpose::Create,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.field, "type");
    }

    #[test]
    fn wechat_providers_need_an_appid() {
        let p = Provider::from_input(
            ProviderInput {
                name: "wx".into(),
                provider_type: "WeChat".into(),
                client_id: "not an appid".into(),
                client_secret: "s".into(),
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
        assert_eq!(p.owner, ADMIN_OWNER);
        assert_eq!(p.check_complete().unwrap_err().field, "clientId");
    }

    #[test]
    fn user_urls_are_http() {
        let e = User::from_input(
            UserInput {
                owner: "o".into(),
                name: "u".into(),
                profile: Profile {
                    homepage: WebUrl::stored("javascript:alert(1)".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.field, "homepage");
    }

    #[test]
    fn wechat_ids_are_printable_ascii_or_none() {
        let user = |open_id: &str| {
            User::from_input(
                UserInput {
                    owner: "o".into(),
                    name: "u".into(),
                    wechat_open_id: open_id.into(),
                    ..Default::default()
                },
                Utc::now(),
            )
        };
        assert_eq!(
            user("o\u{200B}1").unwrap_err().field,
            "properties.wechatOpenId"
        );
        assert_eq!(user("a b").unwrap_err().field, "properties.wechatOpenId");
        assert_eq!(user("").unwrap().wechat_open_id, None);
        let u = user("oX_1-2").unwrap();
        assert_eq!(u.wechat_open_id.as_deref(), Some("oX_1-2"));
    }

    #[test]
    fn every_display_name_has_the_user_rule() {
        let org = |d: &str| {
            Organization::from_input(
                OrganizationInput {
                    name: "o".into(),
                    display_name: d.into(),
                    ..Default::default()
                },
                Utc::now(),
            )
        };
        assert_eq!(org("evil\u{202E}gpj.exe").unwrap_err().field, "displayName");
        assert_eq!(org("two\nlines").unwrap_err().field, "displayName");
        assert_eq!(org("My Shop").unwrap().display_name.as_str(), "My Shop");
        let app = Application::from_input(
            ApplicationInput {
                name: "a".into(),
                organization: "o".into(),
                display_name: "a\u{200B}b".into(),
                ..Default::default()
            },
            Purpose::Create,
            Utc::now(),
        );
        assert_eq!(app.unwrap_err().field, "displayName");
    }
}
