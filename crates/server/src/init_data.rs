//! `init_data.json` in Casdoor's format: parsed into domain objects before anything is written, so
//! a malformed file stops start-up with a message naming the object and nothing is half-loaded.

use chrono::{DateTime, Utc};
use iam_domain::Secret;
use iam_domain::model::{
    ADMIN_OWNER, Application, Cert, Organization, Profile, Provider, ProviderItem, SeedBundle, User,
};
use iam_domain::values::{AvatarUrl, ClientId, CryptoAlgorithm, DisplayName, ObjectName};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct File {
    organizations: Vec<OrgJson>,
    applications: Vec<AppJson>,
    providers: Vec<ProviderJson>,
    users: Vec<UserJson>,
    certs: Vec<CertJson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OrgJson {
    name: String,
    display_name: String,
    default_avatar: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AppJson {
    name: String,
    display_name: String,
    organization: String,
    client_id: String,
    client_secret: String,
    cert: String,
    enable_sign_up: bool,
    providers: Vec<ProviderItemJson>,
    grant_types: Option<Vec<String>>,
    token_format: String,
    expire_in_hours: Option<f64>,
    refresh_expire_in_hours: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ProviderItemJson {
    owner: String,
    name: String,
    can_sign_up: Option<bool>,
    can_sign_in: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ProviderJson {
    owner: String,
    name: String,
    display_name: String,
    category: String,
    #[serde(rename = "type")]
    provider_type: String,
    sub_type: String,
    client_id: String,
    client_secret: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct UserJson {
    owner: String,
    name: String,
    #[serde(rename = "type")]
    user_type: String,
    password: String,
    display_name: String,
    avatar: String,
    email: String,
    phone: String,
    country_code: String,
    is_admin: bool,
    is_forbidden: bool,
    signup_application: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CertJson {
    name: String,
    display_name: String,
    #[serde(rename = "type")]
    cert_type: String,
    crypto_algorithm: String,
    bit_size: i32,
    certificate: String,
    private_key: String,
}

/// What the loader needs from outside: password hashing, cert generation and random secrets are
/// adapters' work.
pub struct SeedTools<'a> {
    pub hash_password: &'a dyn Fn(&str) -> Result<Secret, String>,
    pub generate_cert: &'a dyn Fn(&str, CryptoAlgorithm) -> Result<Cert, String>,
    pub random_hex: &'a dyn Fn(usize) -> String,
    pub now: DateTime<Utc>,
}

fn name_of(kind: &str, index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{kind}[{index}]")
    } else {
        format!("{kind}[{index}] {name:?}")
    }
}

fn hours(v: Option<f64>, default: i64, what: &str) -> Result<i64, String> {
    match v {
        None => Ok(default),
        Some(h) if h > 0.0 && h.is_finite() && h <= 24.0 * 365.0 * 10.0 => Ok(h.ceil() as i64),
        Some(0.0) => Ok(default),
        Some(h) => Err(format!("{what}: {h} is not a positive number of hours")),
    }
}

pub fn parse(text: &str, tools: &SeedTools<'_>) -> Result<SeedBundle, String> {
    let file: File = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let now = tools.now;
    let mut b = SeedBundle::default();

    for (i, o) in file.organizations.into_iter().enumerate() {
        let at = name_of("organizations", i, &o.name);
        let name = ObjectName::parse("name", &o.name).map_err(|e| format!("{at}: {e}"))?;
        if !o.default_avatar.is_empty() {
            AvatarUrl::parse("defaultAvatar", &o.default_avatar)
                .map_err(|e| format!("{at}: {e}"))?;
        }
        b.organizations.push(Organization {
            name: name.into_string(),
            display_name: o.display_name,
            default_avatar: o.default_avatar,
            created_time: now,
        });
    }

    for (i, c) in file.certs.into_iter().enumerate() {
        let at = name_of("certs", i, &c.name);
        let name = ObjectName::parse("name", &c.name).map_err(|e| format!("{at}: {e}"))?;
        let alg = CryptoAlgorithm::parse(&c.crypto_algorithm).map_err(|e| format!("{at}: {e}"))?;
        let cert = match (c.certificate.is_empty(), c.private_key.is_empty()) {
            (true, true) => {
                (tools.generate_cert)(name.as_str(), alg).map_err(|e| format!("{at}: {e}"))?
            }
            (false, false) => Cert {
                name: name.into_string(),
                display_name: c.display_name,
                cert_type: if c.cert_type.is_empty() {
                    "x509".into()
                } else {
                    c.cert_type
                },
                crypto_algorithm: alg,
                bit_size: c.bit_size,
                certificate: c.certificate,
                private_key: Secret::new(c.private_key),
                created_time: now,
            },
            _ => {
                return Err(format!(
                    "{at}: certificate and privateKey must be given together (or both left empty to generate them)"
                ));
            }
        };
        b.certs.push(cert);
    }

    for (i, p) in file.providers.into_iter().enumerate() {
        let at = name_of("providers", i, &p.name);
        let name = ObjectName::parse("name", &p.name).map_err(|e| format!("{at}: {e}"))?;
        let owner = if p.owner.is_empty() {
            ADMIN_OWNER.to_owned()
        } else {
            p.owner
        };
        ObjectName::parse("owner", &owner).map_err(|e| format!("{at}: {e}"))?;
        if p.provider_type.is_empty() {
            return Err(format!("{at}: type is required"));
        }
        if iam_domain::values::is_mini_program_type(&p.provider_type) {
            if p.client_id.is_empty() {
                return Err(format!(
                    "{at}: clientId (the mini program's APPID) is required"
                ));
            }
            if p.client_secret.is_empty() {
                return Err(format!(
                    "{at}: clientSecret (the mini program's APPSECRET) is required"
                ));
            }
        }
        b.providers.push(Provider {
            owner,
            name: name.into_string(),
            display_name: p.display_name,
            category: if p.category.is_empty() {
                "OAuth".into()
            } else {
                p.category
            },
            provider_type: p.provider_type,
            sub_type: p.sub_type,
            client_id: p.client_id,
            client_secret: Secret::new(p.client_secret),
            created_time: now,
        });
    }

    for (i, a) in file.applications.into_iter().enumerate() {
        let at = name_of("applications", i, &a.name);
        let name = ObjectName::parse("name", &a.name).map_err(|e| format!("{at}: {e}"))?;
        ObjectName::parse("organization", &a.organization).map_err(|e| format!("{at}: {e}"))?;
        let client_id = if a.client_id.is_empty() {
            (tools.random_hex)(20)
        } else {
            ClientId::parse(&a.client_id)
                .map_err(|e| format!("{at}: {e}"))?
                .into_string()
        };
        let client_secret = if a.client_secret.is_empty() {
            (tools.random_hex)(40)
        } else {
            a.client_secret
        };
        let mut providers = Vec::new();
        for (j, item) in a.providers.into_iter().enumerate() {
            ObjectName::parse("name", &item.name)
                .map_err(|e| format!("{at}: providers[{j}]: {e}"))?;
            providers.push(ProviderItem {
                owner: item.owner,
                name: item.name,
                can_sign_up: item.can_sign_up.unwrap_or(true),
                can_sign_in: item.can_sign_in.unwrap_or(true),
            });
        }
        b.applications.push(Application {
            name: name.into_string(),
            display_name: a.display_name,
            organization: a.organization,
            client_id,
            client_secret: Secret::new(client_secret),
            cert: a.cert,
            enable_sign_up: a.enable_sign_up,
            providers,
            grant_types: a.grant_types.unwrap_or_default(),
            token_format: if a.token_format.is_empty() {
                "JWT".into()
            } else {
                a.token_format
            },
            expire_in_hours: hours(
                a.expire_in_hours,
                Application::DEFAULT_EXPIRE_IN_HOURS,
                "expireInHours",
            )
            .map_err(|e| format!("{at}: {e}"))?,
            refresh_expire_in_hours: hours(
                a.refresh_expire_in_hours,
                Application::DEFAULT_REFRESH_EXPIRE_IN_HOURS,
                "refreshExpireInHours",
            )
            .map_err(|e| format!("{at}: {e}"))?,
            created_time: now,
        });
    }

    for (i, u) in file.users.into_iter().enumerate() {
        let at = name_of("users", i, &u.name);
        let owner = ObjectName::parse("owner", &u.owner).map_err(|e| format!("{at}: {e}"))?;
        let name = ObjectName::parse("name", &u.name).map_err(|e| format!("{at}: {e}"))?;
        DisplayName::parse("displayName", &u.display_name).map_err(|e| format!("{at}: {e}"))?;
        if !u.avatar.is_empty() {
            AvatarUrl::parse("avatar", &u.avatar).map_err(|e| format!("{at}: {e}"))?;
        }
        let password_hash = if u.password.is_empty() {
            None
        } else {
            Some((tools.hash_password)(&u.password).map_err(|e| format!("{at}: password: {e}"))?)
        };
        b.users.push(User {
            id: uuid::Uuid::new_v4().to_string(),
            owner: owner.into_string(),
            name: name.into_string(),
            user_type: if u.user_type.is_empty() {
                User::NORMAL_USER.into()
            } else {
                u.user_type
            },
            display_name: u.display_name,
            avatar: u.avatar,
            email: u.email,
            phone: u.phone,
            country_code: u.country_code,
            is_admin: u.is_admin,
            is_forbidden: u.is_forbidden,
            is_deleted: false,
            signup_application: u.signup_application,
            wechat: String::new(),
            wechat_open_id: String::new(),
            wechat_union_id: String::new(),
            password_hash,
            profile: Profile::default(),
            created_time: now,
            updated_time: now,
            last_signin_time: None,
        });
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> SeedTools<'static> {
        SeedTools {
            hash_password: &|p| Ok(Secret::new(format!("hashed:{p}"))),
            generate_cert: &|n, a| {
                Ok(Cert {
                    name: n.into(),
                    display_name: n.into(),
                    cert_type: "x509".into(),
                    crypto_algorithm: a,
                    bit_size: 2048,
                    certificate: "C".into(),
                    private_key: Secret::new("K"),
                    created_time: Utc::now(),
                })
            },
            random_hex: &|n| "a".repeat(n),
            now: Utc::now(),
        }
    }

    #[test]
    fn the_shipped_demo_file_parses() {
        let text = include_str!("../../../conf/init_data.json");
        let b = parse(text, &tools()).unwrap();
        assert_eq!(b.applications[0].client_id, "6825f4f0af45554c8952");
        assert!(b.applications[0].enable_sign_up);
        assert_eq!(b.providers[0].provider_type, "WeChat");
        assert_eq!(b.providers[0].client_id, "wx5f3c1b2a9d8e7f60");
    }

    #[test]
    fn errors_name_the_object() {
        let e = parse(
            r#"{"organizations":[{"name":"ok"},{"name":"bad/name"}]}"#,
            &tools(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "organizations[1] \"bad/name\": name: must not contain '/'"
        );
        let e = parse(
            r#"{"providers":[{"name":"wx","type":"WeChat","clientId":"wx1"}]}"#,
            &tools(),
        )
        .unwrap_err();
        assert!(e.starts_with("providers[0] \"wx\": clientSecret"), "{e}");
        let e = parse(
            r#"{"applications":[{"name":"a","organization":"o","expireInHours":-1}]}"#,
            &tools(),
        )
        .unwrap_err();
        assert!(e.contains("applications[0] \"a\": expireInHours"), "{e}");
        let e = parse(r#"{"users":[{"owner":"o","name":""}]}"#, &tools()).unwrap_err();
        assert_eq!(e, "users[0]: name: is required");
        assert!(
            parse("{", &tools())
                .unwrap_err()
                .starts_with("not valid JSON")
        );
    }

    #[test]
    fn secrets_are_generated_and_passwords_hashed() {
        let b = parse(
            r#"{"applications":[{"name":"a","organization":"o"}],"users":[{"owner":"o","name":"u","password":"pw"}],"certs":[{"name":"c"}]}"#,
            &tools(),
        )
        .unwrap();
        assert_eq!(b.applications[0].client_id.len(), 20);
        assert_eq!(b.applications[0].client_secret.expose().len(), 40);
        assert_eq!(
            b.users[0].password_hash.as_ref().unwrap().expose(),
            "hashed:pw"
        );
        assert_eq!(b.certs[0].certificate, "C");
    }
}
