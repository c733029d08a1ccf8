//! Casdoor's JSON shapes of our objects: one wire type per entity, read by the management API
//! and by the seed file alike (`iam_server`'s `init_data.json` loader), and turned into domain
//! objects only through the domain's constructors. The schema attributes state the limits the
//! domain enforces, so clients (and the fuzzer) know them. Unknown keys and `null`s are
//! tolerated. Secrets are written out as `***`.

use chrono::{DateTime, SecondsFormat, Utc};
use iam_domain::model::{
    ADMIN_OWNER, Application, Cert, ExportPart, Extra, Organization, Profile, Provider, User,
    WechatIdentity,
};
use iam_domain::objects::{
    ApplicationInput, CertInput, MASK, OrganizationInput, ProviderInput, ProviderItemInput,
    UserInput,
};
use iam_domain::users::UserPatch;
use iam_domain::values::WebUrl;
use poem_openapi::Object;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{Example, ToJSON, Type};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A wire value from JSON, for the API's bodies and the seed file alike: a value of the wrong
/// type is named by its path (`applications[0].expireInHours: invalid type …`).
pub fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| at_path(e).1)
}

/// A wire value read straight from JSON text, with no `Value` tree in between: broken JSON is
/// "not valid JSON: …", a value of the wrong type "not valid: path: …".
pub fn from_json_text<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    read_json(serde_json::de::StrRead::new(text))
}

/// [`from_json_text`] from a reader (the seed file, which may hold a million users: its text
/// is never all in memory). A read that fails is "cannot read: …".
pub fn from_json_reader<T: serde::de::DeserializeOwned>(
    reader: impl std::io::Read,
) -> Result<T, String> {
    read_json(serde_json::de::IoRead::new(reader))
}

fn read_json<'de, R: serde_json::de::Read<'de>, T: serde::de::DeserializeOwned>(
    read: R,
) -> Result<T, String> {
    use serde_json::error::Category;
    let mut de = serde_json::Deserializer::new(read);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| match at_path(e) {
        (Category::Data, m) => format!("not valid: {m}"),
        (Category::Io, m) => format!("cannot read: {m}"),
        (_, m) => format!("not valid JSON: {m}"),
    })?;
    de.end().map_err(|e| format!("not valid JSON: {e}"))?;
    Ok(value)
}

/// What kind of error, and its message prefixed by the path it was found at (none at the top).
fn at_path(
    e: serde_path_to_error::Error<serde_json::Error>,
) -> (serde_json::error::Category, String) {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = if path == "." {
        inner.to_string()
    } else {
        format!("{path}: {inner}")
    };
    (inner.classify(), message)
}

/// A sequence of `render(item)`, written with no list built in between; made by [`each`].
pub struct Each<'a, T, F>(&'a [T], F);

/// `render` of each of `items`, as one sequence. `render`'s argument borrows from `items`, so
/// its answer may borrow from it too.
pub fn each<'a, T, V, F: Fn(&'a T) -> V>(items: &'a [T], render: F) -> Each<'a, T, F> {
    Each(items, render)
}

impl<'a, T, V: serde::Serialize, F: Fn(&'a T) -> V> serde::Serialize for Each<'a, T, F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(&self.1))
    }
}

fn text(v: Option<String>) -> String {
    v.unwrap_or_default()
}

/// A required field as the handlers see it: `None` when it was not sent (or sent empty).
fn given(v: String) -> Option<String> {
    Some(v).filter(|s| !s.is_empty())
}

/// An organization (owned by `admin`).
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
#[serde(rename_all = "camelCase", default)]
pub struct OrganizationWire {
    /// Always `admin`.
    pub owner: Option<String>,
    /// No `/`, no whitespace.
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*$"
    ))]
    pub display_name: Option<String>,
    /// An http(s) URL.
    #[oai(validator(
        max_length = 1024,
        pattern = r"^(|[hH][tT][tT][pP][sS]?://[^/?#\s]+\S*)$"
    ))]
    pub default_avatar: Option<String>,
    /// Casdoor's other fields: kept as they were sent and returned with the object.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: Extra,
}

impl OrganizationWire {
    pub fn into_input(self) -> OrganizationInput {
        OrganizationInput {
            name: self.name,
            display_name: text(self.display_name),
            default_avatar: text(self.default_avatar),
            extra: kept(self.other),
        }
    }
}

/// One entry of an application's ordered provider list.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct ProviderItemWire {
    /// The provider's owner: `admin` (also when empty) or the application's organization.
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]*$"))]
    pub owner: Option<String>,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    pub can_sign_up: Option<bool>,
    pub can_sign_in: Option<bool>,
}

/// An application (owned by `admin`).
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationWire {
    pub owner: Option<String>,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*$"
    ))]
    pub display_name: Option<String>,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub organization: String,
    /// Generated when empty on add. Printable ASCII.
    #[oai(validator(max_length = 100, pattern = r"^[!-~]*$"))]
    pub client_id: Option<String>,
    /// Generated when empty on add; returned as `***`; `***` written back keeps the stored one.
    pub client_secret: Option<String>,
    /// The signing cert's name; the built-in one when empty.
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]*$"))]
    pub cert: Option<String>,
    pub enable_sign_up: Option<bool>,
    /// Ordered: the first WeChat provider is the mini program's.
    pub providers: Option<Vec<ProviderItemWire>>,
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub grant_types: Option<Vec<String>>,
    pub token_format: Option<String>,
    /// Access-token lifetime; 0 or absent: 168.
    #[oai(validator(minimum(value = "0"), maximum(value = "87600")))]
    pub expire_in_hours: Option<f64>,
    /// Refresh-token lifetime; 0 or absent: 720.
    #[oai(validator(minimum(value = "0"), maximum(value = "87600")))]
    pub refresh_expire_in_hours: Option<f64>,
    /// Sessions one user may hold at once; a sign-in beyond it ends the oldest. 0 or absent:
    /// unlimited.
    #[oai(validator(minimum(value = "0"), maximum(value = "10000")))]
    pub max_sessions_per_user: Option<i64>,
    /// Casdoor's other fields: kept as they were sent and returned with the object.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: Extra,
}

impl ApplicationWire {
    pub fn into_input(self) -> ApplicationInput {
        ApplicationInput {
            name: self.name,
            display_name: text(self.display_name),
            organization: self.organization,
            client_id: text(self.client_id),
            client_secret: text(self.client_secret),
            cert: text(self.cert),
            enable_sign_up: self.enable_sign_up.unwrap_or(false),
            providers: self
                .providers
                .unwrap_or_default()
                .into_iter()
                .map(|p| ProviderItemInput {
                    owner: text(p.owner),
                    name: p.name,
                    can_sign_up: p.can_sign_up,
                    can_sign_in: p.can_sign_in,
                })
                .collect(),
            grant_types: self.grant_types.unwrap_or_default(),
            token_format: text(self.token_format),
            expire_in_hours: self.expire_in_hours,
            refresh_expire_in_hours: self.refresh_expire_in_hours,
            max_sessions_per_user: self.max_sessions_per_user,
            extra: kept(self.other),
        }
    }
}

/// An identity provider; a mini program is one of type `WeChat` or `WeChatMiniProgram`.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
#[serde(rename_all = "camelCase", default)]
pub struct ProviderWire {
    /// `admin` (shared) or an organization; empty is `admin`.
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub owner: Option<String>,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*$"
    ))]
    pub display_name: Option<String>,
    /// `OAuth` when empty.
    pub category: Option<String>,
    /// Required. `WeChat` or `WeChatMiniProgram` for a mini program.
    #[serde(rename = "type")]
    #[oai(
        rename = "type",
        validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub provider_type: String,
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub sub_type: Option<String>,
    /// The mini program's APPID.
    #[oai(validator(max_length = 200, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub client_id: Option<String>,
    /// The mini program's APPSECRET; returned as `***`.
    pub client_secret: Option<String>,
    /// Casdoor's other fields: kept as they were sent and returned with the object.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: Extra,
}

impl ProviderWire {
    pub fn into_input(self) -> ProviderInput {
        ProviderInput {
            owner: text(self.owner),
            name: self.name,
            display_name: text(self.display_name),
            category: text(self.category),
            provider_type: self.provider_type,
            sub_type: text(self.sub_type),
            client_id: text(self.client_id),
            client_secret: text(self.client_secret),
            extra: kept(self.other),
        }
    }
}

/// A signing cert (owned by `admin`; certs are found by name alone).
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
#[serde(rename_all = "camelCase", default)]
pub struct CertWire {
    pub owner: Option<String>,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*$"
    ))]
    pub display_name: Option<String>,
    /// `x509`.
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    #[oai(validator(pattern = "^(|x509)$"))]
    pub cert_type: Option<String>,
    /// `RS256` (default) or `ES256`.
    #[oai(validator(pattern = "^(|RS256|ES256)$"))]
    pub crypto_algorithm: Option<String>,
    /// 2048 for RS256, 256 for ES256 (the defaults).
    pub bit_size: Option<i64>,
    /// PEM; generated with the key when both are empty.
    pub certificate: Option<String>,
    /// PEM; returned as `***`.
    pub private_key: Option<String>,
    /// Casdoor's other fields: kept as they were sent and returned with the object.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: Extra,
}

impl CertWire {
    pub fn into_input(self) -> CertInput {
        CertInput {
            name: self.name,
            display_name: text(self.display_name),
            cert_type: text(self.cert_type),
            crypto_algorithm: text(self.crypto_algorithm),
            bit_size: self.bit_size,
            certificate: text(self.certificate),
            private_key: text(self.private_key),
            extra: kept(self.other),
        }
    }
}

/// A user (Casdoor's field names). Casdoor's other fields (`tag`, `score`, …) are kept as sent
/// and given back; `roles` and `permissions`, which Casdoor computes, are not kept.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct UserWire {
    /// The user's id (a UUID, the `sub` of their tokens): generated when absent.
    #[oai(validator(max_length = 36))]
    pub id: Option<String>,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub owner: String,
    #[oai(validator(max_length = 100, pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]+$"))]
    pub name: String,
    #[serde(rename = "type")]
    #[oai(
        rename = "type",
        validator(max_length = 100, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")
    )]
    pub user_type: Option<String>,
    /// Never returned (`***` when set); an empty password never changes one.
    pub password: Option<String>,
    /// `argon2id` when `password` is already an argon2 hash (as `iam export` writes it).
    pub password_type: Option<String>,
    /// The first OpenID the user signed in with.
    #[oai(validator(max_length = 128, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub wechat: Option<String>,
    /// Casdoor's properties: `wechatOpenId` and `wechatUnionId` are the user's WeChat ids; the
    /// others are kept as sent.
    pub properties: Option<std::collections::BTreeMap<String, String>>,
    /// The user's WeChat identities, as `iam export` writes them (seed files only).
    #[oai(skip)]
    pub wechat_identities: Vec<IdentityWire>,
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*$"
    ))]
    pub display_name: Option<String>,
    /// An http(s) URL.
    #[oai(validator(
        max_length = 1024,
        pattern = r"^(|[hH][tT][tT][pP][sS]?://[^/?#\s]+\S*)$"
    ))]
    pub avatar: Option<String>,
    #[oai(validator(max_length = 254, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub email: Option<String>,
    #[oai(validator(max_length = 32, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub phone: Option<String>,
    #[oai(validator(max_length = 8, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub country_code: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub first_name: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub last_name: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub bio: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub gender: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub language: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub location: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub region: Option<String>,
    /// An http(s) URL.
    #[oai(validator(
        max_length = 1024,
        pattern = r"^(|[hH][tT][tT][pP][sS]?://[^/?#\s]+\S*)$"
    ))]
    pub homepage: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub title: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub affiliation: Option<String>,
    #[oai(validator(max_length = 1000))]
    pub birthday: Option<String>,
    pub is_admin: Option<bool>,
    pub is_forbidden: Option<bool>,
    pub is_deleted: Option<bool>,
    #[oai(validator(max_length = 100, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"))]
    pub signup_application: Option<String>,
    /// Failed passwords in a row; an administrator writes 0 to unlock the account.
    #[oai(validator(minimum(value = "0")))]
    pub signin_wrong_times: Option<i64>,
    /// Casdoor's other fields: kept as they were sent and returned with the user.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: Extra,
}

impl UserWire {
    /// A new user (`add-user`, the seed file). The password is returned apart: hashing it is
    /// an adapter's work.
    pub fn into_input(self) -> (UserInput, Option<String>) {
        let (input, password, _, _) = self.into_seed();
        (input, password)
    }

    /// A user of a seed file: the input, a password to hash, an argon2 hash to keep
    /// (`passwordType: argon2id`), and the WeChat identities.
    #[allow(clippy::type_complexity)]
    pub fn into_seed(
        self,
    ) -> (
        UserInput,
        Option<String>,
        Option<String>,
        Vec<(String, String, String)>,
    ) {
        let hashed = self.password_type.as_deref() == Some("argon2id");
        let password = self.password.filter(|p| !p.is_empty());
        let (password, hash) = if hashed {
            (None, password)
        } else {
            (password, None)
        };
        let prop = |k: &str| {
            self.properties
                .as_ref()
                .and_then(|p| p.get(k).cloned())
                .unwrap_or_default()
        };
        let (wechat_open_id, wechat_union_id) = (prop("wechatOpenId"), prop("wechatUnionId"));
        let mut extra = kept_of_user(self.other);
        if let Some(props) = other_properties(self.properties) {
            extra.insert(PROPERTIES.into(), props);
        }
        let identities = self
            .wechat_identities
            .into_iter()
            .map(|i| (i.appid, i.openid, i.unionid))
            .collect();
        (
            UserInput {
                id: self.id,
                wechat: text(self.wechat),
                wechat_open_id,
                wechat_union_id,
                owner: self.owner,
                name: self.name,
                user_type: text(self.user_type),
                display_name: text(self.display_name),
                avatar: text(self.avatar),
                email: text(self.email),
                phone: text(self.phone),
                country_code: text(self.country_code),
                is_admin: self.is_admin.unwrap_or(false),
                is_forbidden: self.is_forbidden.unwrap_or(false),
                signup_application: text(self.signup_application),
                extra,
                profile: Profile {
                    first_name: text(self.first_name),
                    last_name: text(self.last_name),
                    bio: text(self.bio),
                    gender: text(self.gender),
                    language: text(self.language),
                    location: text(self.location),
                    region: text(self.region),
                    homepage: WebUrl::stored(text(self.homepage)),
                    title: text(self.title),
                    affiliation: text(self.affiliation),
                    birthday: text(self.birthday),
                },
            },
            password,
            hash,
            identities,
        )
    }

    /// The fields of an `update-user` (what was sent, and nothing else).
    pub fn into_patch(self) -> ((Option<String>, Option<String>), UserPatch) {
        (
            (given(self.owner), given(self.name)),
            UserPatch {
                display_name: self.display_name,
                avatar: self.avatar,
                first_name: self.first_name,
                last_name: self.last_name,
                bio: self.bio,
                gender: self.gender,
                language: self.language,
                location: self.location,
                region: self.region,
                homepage: self.homepage,
                title: self.title,
                affiliation: self.affiliation,
                birthday: self.birthday,
                email: self.email,
                phone: self.phone,
                country_code: self.country_code,
                is_admin: self.is_admin,
                is_forbidden: self.is_forbidden,
                is_deleted: self.is_deleted,
                password: self.password,
                user_type: self.user_type,
                signup_application: self.signup_application,
                signin_wrong_times: self.signin_wrong_times,
                extra: patch_extra(self.other, self.properties),
            },
        )
    }
}

/// One WeChat identity of a user in an export: (appid, openid) and the unionid, if any.
#[derive(Deserialize, Debug, Default, serde::Serialize)]
#[serde(default)]
pub struct IdentityWire {
    pub appid: String,
    pub openid: String,
    pub unionid: String,
}

/// `init_data.json`: Casdoor's seed file, of the same wire types.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct InitData {
    pub organizations: Vec<OrganizationWire>,
    pub applications: Vec<ApplicationWire>,
    pub providers: Vec<ProviderWire>,
    /// Each user is made a seed as soon as it is read: an export of a million users would
    /// otherwise hold all their wire objects (3.6 GB) at once beside the file's text.
    #[serde(deserialize_with = "user_seeds")]
    pub users: Vec<iam_domain::seed::UserSeed>,
    pub certs: Vec<CertWire>,
}

/// `users`, each made a [`UserSeed`](iam_domain::seed::UserSeed) as it is read.
fn user_seeds<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<iam_domain::seed::UserSeed>, D::Error> {
    struct Seeds;
    impl<'de> serde::de::Visitor<'de> for Seeds {
        type Value = Vec<iam_domain::seed::UserSeed>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of users")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut seeds = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(user) = seq.next_element::<UserWire>()? {
                let (input, password, password_hash, identities) = user.into_seed();
                seeds.push(iam_domain::seed::UserSeed {
                    input,
                    password,
                    password_hash,
                    identities,
                });
            }
            Ok(seeds)
        }
    }
    d.deserialize_seq(Seeds)
}

/// Keys we write ourselves: what a client sends back for them is not kept.
const OURS: &[&str] = &["createdTime", "updatedTime", "scope", "id"];

/// A user's keys that are ours too, or that Casdoor computes rather than stores.
const OURS_OF_USER: &[&str] = &["lastSigninTime", "roles", "permissions"];

fn not_ours_of_user(other: Extra) -> Extra {
    other
        .into_iter()
        .filter(|(k, _)| !OURS_OF_USER.contains(&k.as_str()))
        .collect()
}

fn kept_of_user(other: Extra) -> Extra {
    kept(not_ours_of_user(other))
}

/// An `update-user`'s other fields: each one sent is set, an empty one (a whole-object write
/// sends dozens) is `null`, which removes it; `properties`, when sent, replaces the kept ones.
fn patch_extra(
    other: Extra,
    properties: Option<std::collections::BTreeMap<String, String>>,
) -> Extra {
    let mut extra = not_ours_of_user(other);
    if properties.is_some() {
        let kept = other_properties(properties).unwrap_or(Value::Null);
        extra.insert(PROPERTIES.into(), kept);
    }
    extra
        .into_iter()
        .map(|(k, v)| {
            if is_empty(&v) {
                (k, Value::Null)
            } else {
                (k, v)
            }
        })
        .collect()
}

/// Where a user's Casdoor properties other than the WeChat ids are kept, among its extra fields.
const PROPERTIES: &str = "properties";
const WECHAT_PROPERTIES: [&str; 2] = ["wechatOpenId", "wechatUnionId"];

/// A user's properties other than the WeChat ids (which have columns), when there are any.
fn other_properties(props: Option<std::collections::BTreeMap<String, String>>) -> Option<Value> {
    let others: serde_json::Map<String, Value> = props?
        .into_iter()
        .filter(|(k, _)| !WECHAT_PROPERTIES.contains(&k.as_str()))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    (!others.is_empty()).then_some(Value::Object(others))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The Casdoor fields to keep: what was set (an empty value reads the same as none to
/// Casdoor's clients, and whole-object writes send dozens), minus the ones we write ourselves.
fn kept(other: Extra) -> Extra {
    other
        .into_iter()
        .filter(|(k, v)| !OURS.contains(&k.as_str()) && !is_empty(v))
        .collect()
}

/// An object as Casdoor shows it: its kept fields, then ours (which win).
fn with_extra(extra: &Extra, ours: Value) -> Value {
    let mut out = extra.clone();
    if let Value::Object(fields) = ours {
        out.extend(fields);
    }
    Value::Object(out)
}

fn masked(secret_set: bool) -> &'static str {
    if secret_set { MASK } else { "" }
}

/// A user as Casdoor shows it, as a JSON value (for answers that hold several objects).
pub fn user(u: &User) -> Value {
    // Cannot fail: every key the view writes is a string.
    serde_json::to_value(UserView(u)).unwrap_or(Value::Null)
}

/// A user's keys that are written from its columns; a kept Casdoor field of the same name
/// (none should be stored) is hidden by them.
const USER_COLUMNS: &[&str] = &[
    "owner",
    "name",
    "createdTime",
    "updatedTime",
    "id",
    "type",
    "password",
    "displayName",
    "firstName",
    "lastName",
    "avatar",
    "email",
    "phone",
    "countryCode",
    "region",
    "location",
    "affiliation",
    "title",
    "homepage",
    "bio",
    "language",
    "gender",
    "birthday",
    "isAdmin",
    "isForbidden",
    "isDeleted",
    "signupApplication",
    "lastSigninTime",
    "wechat",
    PROPERTIES,
    "roles",
    "permissions",
];

/// A user as Casdoor shows it, written straight into the answer: Casdoor's defaults for the
/// fields we keep no column for (until one is stored), the kept Casdoor fields, then ours. It
/// was a `serde_json::Value` built key by key and then written out, which made the tree of a
/// Bearer `get-account` a fifth of that call's CPU with the allocations it took.
pub struct UserView<'a>(pub &'a User);

impl serde::Serialize for UserView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        user_entries(&mut m, self.0, masked(self.0.password_hash.is_some()), &[])?;
        m.end()
    }
}

/// A user's keys, as `UserView` shows them, with `password` as given and the kept Casdoor
/// fields named in `also` left out (the caller writes those keys itself).
fn user_entries<M: serde::ser::SerializeMap>(
    m: &mut M,
    u: &User,
    password: &str,
    also: &[&str],
) -> Result<(), M::Error> {
    const NONE: [(); 0] = [];
    let p = &u.profile;
    let unset = |k: &str| !u.extra.contains_key(k);
    for k in ["passwordSalt", "tag"] {
        if unset(k) {
            m.serialize_entry(k, "")?;
        }
    }
    if unset("emailVerified") {
        m.serialize_entry("emailVerified", &false)?;
    }
    for k in ["address", "groups"] {
        if unset(k) {
            m.serialize_entry(k, &NONE)?;
        }
    }
    if unset("score") {
        m.serialize_entry("score", &0)?;
    }
    for (k, v) in &u.extra {
        if !USER_COLUMNS.contains(&k.as_str()) && !also.contains(&k.as_str()) {
            m.serialize_entry(k, v)?;
        }
    }
    m.serialize_entry("owner", &u.owner)?;
    m.serialize_entry("name", &u.name)?;
    m.serialize_entry("createdTime", &time(&u.created_time))?;
    m.serialize_entry("updatedTime", &time(&u.updated_time))?;
    m.serialize_entry("id", &u.id)?;
    m.serialize_entry("type", &u.user_type)?;
    m.serialize_entry("password", password)?;
    m.serialize_entry("displayName", &u.display_name)?;
    m.serialize_entry("firstName", &p.first_name)?;
    m.serialize_entry("lastName", &p.last_name)?;
    m.serialize_entry("avatar", &u.avatar)?;
    m.serialize_entry("email", &u.email)?;
    m.serialize_entry("phone", &u.phone)?;
    m.serialize_entry("countryCode", &u.country_code)?;
    m.serialize_entry("region", &p.region)?;
    m.serialize_entry("location", &p.location)?;
    m.serialize_entry("affiliation", &p.affiliation)?;
    m.serialize_entry("title", &p.title)?;
    m.serialize_entry("homepage", &p.homepage)?;
    m.serialize_entry("bio", &p.bio)?;
    m.serialize_entry("language", &p.language)?;
    m.serialize_entry("gender", &p.gender)?;
    m.serialize_entry("birthday", &p.birthday)?;
    m.serialize_entry("isAdmin", &u.is_admin)?;
    m.serialize_entry("isForbidden", &u.is_forbidden)?;
    m.serialize_entry("isDeleted", &u.is_deleted)?;
    m.serialize_entry("signupApplication", &u.signup_application)?;
    m.serialize_entry(
        "lastSigninTime",
        &u.last_signin_time.as_ref().map(time).unwrap_or_default(),
    )?;
    m.serialize_entry("wechat", u.wechat.as_deref().unwrap_or_default())?;
    m.serialize_entry(PROPERTIES, &Properties(u))?;
    m.serialize_entry("roles", &NONE)?;
    m.serialize_entry("permissions", &NONE)?;
    Ok(())
}

/// A user's `properties`: the kept ones, then the WeChat ids (which win).
struct Properties<'a>(&'a User);

impl serde::Serialize for Properties<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let u = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(Value::Object(kept)) = u.extra.get(PROPERTIES) {
            for (k, v) in kept {
                if !WECHAT_PROPERTIES.contains(&k.as_str()) {
                    m.serialize_entry(k, v)?;
                }
            }
        }
        for (key, id) in WECHAT_PROPERTIES
            .iter()
            .zip([&u.wechat_open_id, &u.wechat_union_id])
        {
            m.serialize_entry(key, id.as_deref().unwrap_or_default())?;
        }
        m.end()
    }
}

pub fn organization(o: &Organization) -> Value {
    with_extra(
        &o.extra,
        json!({
            "owner": ADMIN_OWNER,
            "name": o.name,
            "createdTime": time(&o.created_time),
            "displayName": o.display_name,
            "defaultAvatar": o.default_avatar,
        }),
    )
}

pub fn application(a: &Application) -> Value {
    with_extra(
        &a.extra,
        json!({
            "owner": ADMIN_OWNER,
            "name": a.name,
            "createdTime": time(&a.created_time),
            "displayName": a.display_name,
            "organization": a.organization,
            "clientId": a.client_id,
            "clientSecret": masked(!a.client_secret.is_empty()),
            "cert": a.cert.as_deref().unwrap_or_default(),
            "enableSignUp": a.enable_sign_up,
            "providers": a.providers,
            "grantTypes": a.grant_types,
            "tokenFormat": a.token_format,
            "expireInHours": a.expire_in_hours,
            "refreshExpireInHours": a.refresh_expire_in_hours,
            "maxSessionsPerUser": a.max_sessions_per_user,
        }),
    )
}

pub fn provider(p: &Provider) -> Value {
    with_extra(
        &p.extra,
        json!({
            "owner": p.owner,
            "name": p.name,
            "createdTime": time(&p.created_time),
            "displayName": p.display_name,
            "category": p.category,
            "type": p.provider_type,
            "subType": p.sub_type,
            "clientId": p.client_id,
            "clientSecret": masked(!p.client_secret.is_empty()),
        }),
    )
}

pub fn cert(c: &Cert) -> Value {
    with_extra(
        &c.extra,
        json!({
            "owner": ADMIN_OWNER,
            "name": c.name,
            "createdTime": time(&c.created_time),
            "displayName": c.display_name,
            "scope": "JWT",
            "type": c.cert_type,
            "cryptoAlgorithm": c.crypto_algorithm.as_str(),
            "bitSize": c.bit_size,
            "certificate": c.certificate,
            "privateKey": MASK,
        }),
    )
}

/// The keys an exported user adds to what `UserView` shows.
const EXPORT_KEYS: &[&str] = &["passwordType", "wechatIdentities"];

/// How many users and WeChat identities an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    pub users: usize,
    pub identities: usize,
}

/// Writes an `iam export`: Casdoor's `init_data.json` shape, loadable as `initDataFile`, with
/// the secrets as the domain left them (sealed or omitted), the users' password hashes
/// (`passwordType: argon2id`) and their WeChat identities. It writes each part as it arrives
/// from `parts`, so a million users are never held at once, and fails, with no closing
/// bracket written, when the parts stop before [`ExportPart::End`].
pub fn write_export(
    parts: impl IntoIterator<Item = ExportPart>,
    out: impl std::io::Write,
) -> serde_json::Result<Exported> {
    use serde::ser::{Error as _, SerializeMap, Serializer};
    let mut parts = parts.into_iter();
    let Some(ExportPart::Configuration(b)) = parts.next() else {
        return Err(serde_json::Error::custom(
            "the export did not begin with its configuration",
        ));
    };
    let with = |mut v: Value, key: &str, secret: &iam_domain::Secret| {
        v[key] = json!(secret.expose());
        v
    };
    let mut ser = serde_json::Serializer::pretty(out);
    let mut m = (&mut ser).serialize_map(Some(5))?;
    m.serialize_entry("organizations", &each(&b.organizations, organization))?;
    m.serialize_entry(
        "certs",
        &each(&b.certs, |c| with(cert(c), "privateKey", &c.private_key)),
    )?;
    m.serialize_entry(
        "providers",
        &each(&b.providers, |p| {
            with(provider(p), "clientSecret", &p.client_secret)
        }),
    )?;
    m.serialize_entry(
        "applications",
        &each(&b.applications, |a| {
            with(application(a), "clientSecret", &a.client_secret)
        }),
    )?;
    let users = UserPages {
        parts: std::cell::RefCell::new(parts),
        written: std::cell::Cell::new(Exported::default()),
    };
    m.serialize_entry("users", &users)?;
    m.end()?;
    std::io::Write::write_all(&mut ser.into_inner(), b"\n").map_err(serde_json::Error::io)?;
    Ok(users.written.get())
}

/// The export's users, written page by page as the parts arrive, each with its own
/// identities (found through one map per page).
struct UserPages<I> {
    parts: std::cell::RefCell<I>,
    written: std::cell::Cell<Exported>,
}

impl<I: Iterator<Item = ExportPart>> serde::Serialize for UserPages<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = s.serialize_seq(None)?;
        let mut parts = self.parts.borrow_mut();
        loop {
            match parts.next() {
                Some(ExportPart::Users { users, identities }) => {
                    let mut by_user: std::collections::HashMap<&str, Vec<&WechatIdentity>> =
                        std::collections::HashMap::new();
                    for i in &identities {
                        by_user.entry(i.user_id.as_str()).or_default().push(i);
                    }
                    for u in &users {
                        seq.serialize_element(&ExportedUser {
                            user: u,
                            identities: by_user.get(u.id.as_str()).map_or(&[], Vec::as_slice),
                        })?;
                    }
                    let w = self.written.get();
                    self.written.set(Exported {
                        users: w.users + users.len(),
                        identities: w.identities + identities.len(),
                    });
                }
                Some(ExportPart::End) => return seq.end(),
                Some(ExportPart::Configuration(_)) => {
                    return Err(S::Error::custom("the export's configuration came twice"));
                }
                None => {
                    return Err(S::Error::custom(
                        "the export was cut short: the database read stopped before the last user",
                    ));
                }
            }
        }
    }
}

/// A user in an export: as shown, with its password hash and its WeChat identities.
struct ExportedUser<'a> {
    user: &'a User,
    identities: &'a [&'a WechatIdentity],
}

impl serde::Serialize for ExportedUser<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let hash = self.user.password_hash.as_ref().map_or("", |h| h.expose());
        let mut m = s.serialize_map(None)?;
        user_entries(&mut m, self.user, hash, EXPORT_KEYS)?;
        m.serialize_entry(
            "passwordType",
            if hash.is_empty() { "" } else { "argon2id" },
        )?;
        m.serialize_entry(
            "wechatIdentities",
            &each(self.identities, |i| IdentityWire {
                appid: i.appid.to_string(),
                openid: i.openid.to_string(),
                unionid: i
                    .unionid
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }),
        )?;
        m.end()
    }
}

// The examples the spec shows (and the fuzzer's first valid body): an organization, an
// application, a WeChat provider and a signing cert. The application's organization is
// `built-in`, which every server has, so its example adds cleanly on its own.
fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

impl Example for OrganizationWire {
    fn example() -> Self {
        Self {
            owner: some(ADMIN_OWNER),
            name: "shop".into(),
            display_name: some("Shop"),
            default_avatar: some("https://cdn.example.com/avatar/default.png"),
            ..Self::default()
        }
    }
}

impl Example for ApplicationWire {
    fn example() -> Self {
        Self {
            owner: some(ADMIN_OWNER),
            name: "shop-miniprogram".into(),
            display_name: some("Shop Mini Program"),
            organization: "built-in".into(),
            enable_sign_up: Some(true),
            grant_types: Some(vec!["refresh_token".into()]),
            expire_in_hours: Some(168.0),
            refresh_expire_in_hours: Some(720.0),
            ..Self::default()
        }
    }
}

impl Example for ProviderWire {
    fn example() -> Self {
        Self {
            owner: some(ADMIN_OWNER),
            name: "shop-wechat".into(),
            display_name: some("Shop on WeChat"),
            category: some("OAuth"),
            provider_type: "WeChat".into(),
            sub_type: some("Mini Program"),
            client_id: some("wx0123456789abcdef"),
            client_secret: some("0123456789abcdef0123456789abcdef"),
            ..Self::default()
        }
    }
}

impl Example for CertWire {
    fn example() -> Self {
        Self {
            owner: some(ADMIN_OWNER),
            name: "shop-cert".into(),
            display_name: some("Shop signing key"),
            cert_type: some("x509"),
            crypto_algorithm: some("RS256"),
            bit_size: Some(2048),
            ..Self::default()
        }
    }
}

/// `update-application`'s body: an application, with its `clientId` required, since an update
/// keeps the client id it is given and never makes one up (add generates it when absent).
#[derive(Deserialize, Debug, Default)]
#[serde(transparent)]
pub struct ApplicationUpdate(pub ApplicationWire);

impl From<ApplicationUpdate> for ApplicationWire {
    fn from(u: ApplicationUpdate) -> Self {
        u.0
    }
}

impl Type for ApplicationUpdate {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "ApplicationUpdate".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        ApplicationWire::register(registry);
        registry.create_schema::<Self, _>(Self::name().into_owned(), |_| MetaSchema {
            description: Some("An application to update: `clientId` is required."),
            all_of: vec![
                ApplicationWire::schema_ref(),
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    required: vec!["clientId"],
                    ..MetaSchema::new("object")
                })),
            ],
            example: ApplicationUpdate(ApplicationWire {
                client_id: some("3f9c2b7e1a4d6c8e0b5a"),
                ..ApplicationWire::example()
            })
            .0
            .to_json(),
            ..MetaSchema::ANY
        });
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_user(json: Value) -> User {
        let w: UserWire = from_json(json).expect("a valid user");
        let (input, _password) = w.into_input();
        let mut u = User::from_input(input, Utc::now()).expect("a valid user");
        u.wechat_open_id = iam_domain::values::WechatId::parse("openid", "o-open").ok();
        u
    }

    /// The top-level keys of a JSON object in the order written, a key written twice kept twice
    /// (a `serde_json::Map` would keep only the last).
    fn keys_of(text: &str) -> Vec<String> {
        struct Keys(Vec<String>);
        impl<'de> Deserialize<'de> for Keys {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl<'de> serde::de::Visitor<'de> for Visit {
                    type Value = Keys;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Keys, A::Error> {
                        let mut keys = Vec::new();
                        while let Some((k, _)) =
                            map.next_entry::<String, serde::de::IgnoredAny>()?
                        {
                            keys.push(k);
                        }
                        Ok(Keys(keys))
                    }
                }
                d.deserialize_map(Visit)
            }
        }
        serde_json::from_str::<Keys>(text).expect("a JSON object").0
    }

    fn written(u: &User) -> (Vec<String>, serde_json::Map<String, Value>) {
        let text = serde_json::to_string(&UserView(u)).expect("serializable");
        (keys_of(&text), serde_json::from_str(&text).expect("JSON"))
    }

    /// Casdoor's fields we keep no column for, shown with Casdoor's default until one is stored.
    const DEFAULTED: [&str; 6] = [
        "passwordSalt",
        "tag",
        "emailVerified",
        "address",
        "groups",
        "score",
    ];

    #[test]
    fn a_user_shows_casdoors_defaults_kept_fields_and_ours() {
        let u = stored_user(json!({
            "owner": "shop", "name": "lee", "displayName": "Lee",
            "tag": "vip", "score": 7, "karma": 3,
            "properties": {"team": "blue", "wechatOpenId": "forged"},
        }));
        let (keys, v) = written(&u);
        assert_eq!(keys.len(), v.len(), "a key written twice: {keys:?}");
        // Casdoor's defaults where nothing is stored; what is stored instead of them.
        assert_eq!(v["passwordSalt"], json!(""));
        assert_eq!(v["emailVerified"], json!(false));
        assert_eq!(v["address"], json!([]));
        assert_eq!(v["groups"], json!([]));
        assert_eq!(v["tag"], json!("vip"));
        assert_eq!(v["score"], json!(7));
        assert_eq!(v["karma"], json!(3));
        // Ours as stored; the WeChat ids win over kept properties.
        assert_eq!(v["displayName"], json!("Lee"));
        assert_eq!(
            v[PROPERTIES],
            json!({"team": "blue", "wechatOpenId": "o-open", "wechatUnionId": ""})
        );
        assert_eq!(v["password"], json!(""));
        assert_eq!(v["roles"], json!([]));
        // The value form for lists is the same object.
        assert_eq!(user(&u), Value::Object(v));
    }

    /// Every key the view writes, stored as a kept field too (an older version's row), is
    /// still written once: a default gives way to it, a column hides it. A key added to the
    /// view but not to [`USER_COLUMNS`] fails here.
    #[test]
    fn no_kept_field_writes_a_key_twice() {
        let mut u = stored_user(json!({"owner": "shop", "name": "lee"}));
        let (plain, _) = written(&u);
        for k in &plain {
            u.extra.insert(k.clone(), json!("kept"));
        }
        let (keys, v) = written(&u);
        assert_eq!(keys.len(), v.len(), "a key written twice: {keys:?}");
        assert_eq!(keys.len(), plain.len());
        for k in &plain {
            let expected_kept = DEFAULTED.contains(&k.as_str());
            assert_eq!(v[k] == json!("kept"), expected_kept, "{k}: {}", v[k]);
        }
    }

    /// An export reads back as the seed file it is: each user with their own identities and
    /// password hash, kept fields once, and none of the export's own keys kept as fields.
    #[test]
    fn an_export_gives_each_user_their_identities() {
        let identity = |user: &User, openid: &str| WechatIdentity {
            appid: iam_domain::values::AppId::parse("wx0123456789abcdef").expect("appid"),
            openid: iam_domain::values::WechatId::parse("openid", openid).expect("openid"),
            unionid: None,
            organization: user.owner.to_string(),
            user_id: user.id.clone(),
            created_time: Utc::now(),
            last_signin_time: None,
        };
        let mut a = stored_user(json!({"owner": "shop", "name": "a", "passwordType": "x"}));
        a.password_hash = Some(iam_domain::Secret::new("$argon2id$hash".to_owned()));
        let b = stored_user(json!({"owner": "shop", "name": "b"}));
        let c = stored_user(json!({"owner": "shop", "name": "c"}));
        let identities = vec![
            identity(&b, "o-b1"),
            identity(&a, "o-a"),
            identity(&b, "o-b2"),
        ];
        let first = a.clone();
        let parts = vec![
            ExportPart::Configuration(iam_domain::model::SeedBundle::default()),
            ExportPart::Users {
                users: vec![a, b],
                identities,
            },
            ExportPart::Users {
                users: vec![c],
                identities: vec![],
            },
            ExportPart::End,
        ];
        let mut out = Vec::new();
        let written = write_export(parts.clone(), &mut out).expect("written");
        assert_eq!(
            written,
            Exported {
                users: 3,
                identities: 3
            }
        );
        let text = String::from_utf8(out).expect("UTF-8");
        let file: InitData = from_json_text(&text).expect("reads back");
        let seeds = file.users;
        let openids = |i: usize| -> Vec<&str> {
            seeds[i]
                .identities
                .iter()
                .map(|(_, o, _)| o.as_str())
                .collect()
        };
        assert_eq!(openids(0), ["o-a"]);
        assert_eq!(openids(1), ["o-b1", "o-b2"]);
        assert!(openids(2).is_empty());
        assert_eq!(seeds[0].password_hash.as_deref(), Some("$argon2id$hash"));
        assert_eq!(
            (
                seeds[0].password.as_deref(),
                seeds[1].password_hash.as_deref()
            ),
            (None, None)
        );
        assert!(!seeds[0].input.extra.contains_key("passwordType"));
        // Each key once, a kept `passwordType` giving way to the export's own.
        let one = serde_json::to_string(&ExportedUser {
            user: &first,
            identities: &[],
        })
        .expect("JSON");
        let v: serde_json::Map<String, Value> = serde_json::from_str(&one).expect("JSON");
        assert_eq!(keys_of(&one).len(), v.len(), "{one}");
        assert_eq!(v["passwordType"], json!("argon2id"));

        // Parts that stop before the end (the database read failed) are no export: the write
        // fails before the closing brackets, so the file is not valid JSON either way.
        let (cut, _) = parts.split_at(2);
        let mut out = Vec::new();
        let e = write_export(cut.to_vec(), &mut out).unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
        assert!(serde_json::from_slice::<Value>(&out).is_err());
        let e = write_export(parts[1..].to_vec(), Vec::new()).unwrap_err();
        assert!(e.to_string().contains("configuration"), "{e}");
    }

    #[test]
    fn seed_text_errors_say_what_kind() {
        let bad = from_json_text::<InitData>("{\"users\": [{\"name\": 3}]}").unwrap_err();
        assert!(bad.starts_with("not valid: users[0].name:"), "{bad}");
        for not_a_list in ["null", "{}", "\"alice\""] {
            let e =
                from_json_text::<InitData>(&format!("{{\"users\": {not_a_list}}}")).unwrap_err();
            assert!(e.starts_with("not valid: users: invalid type"), "{e}");
            assert!(e.contains("a list of users"), "{e}");
        }
        let broken = from_json_text::<InitData>("{\"users\": [").unwrap_err();
        assert!(broken.starts_with("not valid JSON:"), "{broken}");
        let trailing = from_json_text::<InitData>("{} x").unwrap_err();
        assert!(trailing.starts_with("not valid JSON:"), "{trailing}");
        // From a reader, the same words; and a read that fails says so.
        let bad = from_json_reader::<InitData>(&b"{\"users\": [{\"name\": 3}]}"[..]).unwrap_err();
        assert!(bad.starts_with("not valid: users[0].name:"), "{bad}");
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("the disk went away"))
            }
        }
        let failed = from_json_reader::<InitData>(Failing).unwrap_err();
        assert!(failed.starts_with("cannot read:"), "{failed}");
        assert!(failed.contains("the disk went away"), "{failed}");
    }
}
