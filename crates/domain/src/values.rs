//! Value types built only through `parse`: once you hold one, it is valid.
//!
//! Each parse error names the field and says what was wrong, so the API can hand it straight back
//! to the caller as a 400.

use std::fmt;

use thiserror::Error;

/// A value from outside did not meet the rules of its field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), InvalidValue> {
    if s.is_empty() {
        return Err(InvalidValue::new(field, "is required"));
    }
    if s.chars().count() > max {
        return Err(InvalidValue::new(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        /// As the string it is (`"demo"`), since messages quote names with `{:?}`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $name {
            /// One of the domain's own constants (`built-in`, `admin`): known good, so not parsed.
            #[allow(dead_code)]
            pub(crate) fn literal(s: &'static str) -> Self {
                Self(s.to_owned())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Read-only access as a string; building one still goes through `parse`.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_value!(
    /// The name of an organization, application, provider, cert or user: Casdoor's `name`.
    /// Non-empty, at most 100 characters, no `/` (it separates owner and name in ids), no
    /// whitespace or control characters.
    ObjectName
);

impl ObjectName {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidValue> {
        check_len(field, s, 100)?;
        if let Some(c) = s
            .chars()
            .find(|c| *c == '/' || c.is_whitespace() || c.is_control())
        {
            return Err(InvalidValue::new(field, format!("must not contain {c:?}")));
        }
        Ok(Self(s.to_owned()))
    }

    /// Whether this may name a new object. Besides [`ObjectName::parse`]'s rules, a new name
    /// holds none of the invisible characters that make two names look alike (`ad\u{200B}min`
    /// shown beside `admin`), joiners included: a name is an identifier, not prose. Names
    /// stored before this rule still parse, so their objects stay addressable.
    pub fn check_new(&self, field: &'static str) -> Result<(), InvalidValue> {
        match self.0.chars().find(|c| is_invisible_format(*c)) {
            Some(c) => Err(invisible(field, c)),
            None => Ok(()),
        }
    }
}

/// `owner/name`, as Casdoor's `id` query parameter carries it.
pub fn split_id(field: &'static str, id: &str) -> Result<(ObjectName, ObjectName), InvalidValue> {
    let (owner, name) = id
        .split_once('/')
        .ok_or_else(|| InvalidValue::new(field, "must be of the form owner/name"))?;
    for (part, text) in [("owner", owner), ("name", name)] {
        if text.trim().is_empty() {
            return Err(InvalidValue::new(
                field,
                format!("must be of the form owner/name (the {part} is empty)"),
            ));
        }
    }
    Ok((
        ObjectName::parse(field, owner)?,
        ObjectName::parse(field, name)?,
    ))
}

fn check_printable_ascii(field: &'static str, s: &str) -> Result<(), InvalidValue> {
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(InvalidValue::new(
            field,
            format!("must be printable ASCII without spaces (found {c:?})"),
        ));
    }
    Ok(())
}

string_value!(
    /// An application's OAuth client id.
    ClientId
);

impl ClientId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        check_len("client_id", s, 100)?;
        check_printable_ascii("client_id", s)?;
        Ok(Self(s.to_owned()))
    }
}

string_value!(
    /// The one-time code of `wx.login()`. WeChat's are 32 characters; we accept up to 128 printable
    /// ASCII characters so a future format still works, and refuse anything else before calling WeChat.
    WechatCode
);

impl WechatCode {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        check_len("code", s, 128)?;
        check_printable_ascii("code", s)?;
        Ok(Self(s.to_owned()))
    }
}

string_value!(
    /// The code of the `getPhoneNumber` button: WeChat's are 64 hex; like a login code, at most
    /// 128 printable ASCII characters, refused before anything is sent to WeChat.
    PhoneCode
);

impl PhoneCode {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidValue> {
        check_len(field, s, 128)?;
        check_printable_ascii(field, s)?;
        Ok(Self(s.to_owned()))
    }
}

string_value!(
    /// A mini program's APPID (`wx` + 16 hex in practice; treated as opaque printable ASCII).
    AppId
);

impl AppId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        check_len("appid", s, 64)?;
        check_printable_ascii("appid", s)?;
        Ok(Self(s.to_owned()))
    }
}

string_value!(
    /// A WeChat OpenID or UnionID. Formats are undocumented, so they are opaque strings.
    WechatId
);

impl WechatId {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidValue> {
        check_len(field, s, 128)?;
        check_printable_ascii(field, s)?;
        Ok(Self(s.to_owned()))
    }

    /// A unionid as WeChat, Casdoor and our rows write one: empty when there is none.
    pub fn parse_optional(field: &'static str, s: &str) -> Result<Option<Self>, InvalidValue> {
        (!s.is_empty()).then(|| Self::parse(field, s)).transpose()
    }

    /// An id as a row holds it (empty is none), read as written: an administrator could once
    /// store any text of 128 characters here, and what was stored is never refused on reading.
    pub fn stored(s: String) -> Option<Self> {
        (!s.is_empty()).then_some(Self(s))
    }
}

string_value!(
    /// A user's display name: user input (WeChat no longer signs nicknames), at most 100
    /// characters, no control characters. May be empty.
    DisplayName
);

/// No display name: the empty one is valid.
impl Default for DisplayName {
    fn default() -> Self {
        Self(String::new())
    }
}

impl DisplayName {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidValue> {
        if s.chars().count() > 100 {
            return Err(InvalidValue::new(field, "is longer than 100 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                field,
                "must not contain control characters",
            ));
        }
        if let Some(c) = first_invisible_format(s) {
            return Err(invisible(field, c));
        }
        Ok(Self(s.to_owned()))
    }

    /// An object shown by its name, when it has no display name of its own (a generated cert).
    pub fn of_name(name: &ObjectName) -> Self {
        Self(name.to_string())
    }

    /// A name read back from storage, whatever rule it was written under: a row stored before
    /// a rule was added is kept and answered as it was, never made unreadable.
    pub fn stored(s: String) -> Self {
        Self(s)
    }
}

/// The first character that makes a name read differently from what it is: bidirectional
/// overrides, isolates and marks (the "Trojan Source" set) and zero-width characters. The two
/// joiners (U+200C, U+200D) are part of how emoji sequences (👩‍💻), Persian and Indic scripts are
/// written, so they pass between two visible non-ASCII characters; beside ASCII, a space, an
/// edge or another invisible one they only hide something (`ad\u{200D}min`).
fn first_invisible_format(s: &str) -> Option<char> {
    let chars: Vec<char> = s.chars().collect();
    let shows = |c: Option<&char>| {
        c.is_some_and(|c| !c.is_ascii() && !c.is_whitespace() && !is_invisible_format(*c))
    };
    chars.iter().enumerate().find_map(|(i, &c)| {
        let joiner = matches!(c, '\u{200C}' | '\u{200D}');
        let allowed = joiner && i > 0 && shows(chars.get(i - 1)) && shows(chars.get(i + 1));
        (is_invisible_format(c) && !allowed).then_some(c)
    })
}

fn invisible(field: &'static str, c: char) -> InvalidValue {
    InvalidValue::new(
        field,
        format!(
            "must not contain bidirectional-override or zero-width characters (U+{:04X})",
            u32::from(c)
        ),
    )
}

fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// Free text of a profile field: at most `max` characters, no control characters.
pub fn short_text(field: &'static str, s: &str, max: usize) -> Result<String, InvalidValue> {
    if s.chars().count() > max {
        return Err(InvalidValue::new(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(InvalidValue::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

/// A URL field of a stored object: a user's avatar and homepage, an organization's default
/// avatar. Every write makes it empty or an http(s) URL ([`AvatarUrl`]'s rules), so no
/// `javascript:` link is ever written. A row stored before that rule may hold other text: it is
/// kept and answered as it was (nothing stored is lost), but it is never an [`AvatarUrl`] — what
/// shows the field as a link or a picture asks [`WebUrl::url`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WebUrl {
    #[default]
    Empty,
    Url(AvatarUrl),
    /// Stored before the rule, and not an http(s) URL.
    Unchecked(String),
}

impl WebUrl {
    /// A value being written: empty, or an http(s) URL.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() {
            return Ok(Self::Empty);
        }
        AvatarUrl::parse(field, s).map(Self::Url)
    }

    /// A value read back from storage, whatever rule it was written under.
    pub fn stored(s: String) -> Self {
        if s.is_empty() {
            return Self::Empty;
        }
        match AvatarUrl::parse("url", &s) {
            Ok(u) => Self::Url(u),
            Err(_) => Self::Unchecked(s),
        }
    }

    /// The text as stored (what Casdoor's JSON and the store carry).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Empty => "",
            Self::Url(u) => u.as_str(),
            Self::Unchecked(s) => s,
        }
    }

    /// The http(s) URL, if it is one: what a link, a picture or a token's `picture` may use.
    pub fn url(&self) -> Option<&AvatarUrl> {
        match self {
            Self::Url(u) => Some(u),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }
}

impl From<AvatarUrl> for WebUrl {
    fn from(u: AvatarUrl) -> Self {
        Self::Url(u)
    }
}

/// The text as stored, as [`WebUrl::as_str`].
impl AsRef<str> for WebUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for WebUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for WebUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

string_value!(
    /// An avatar URL: `http` or `https`, a host, at most 1024 characters, no whitespace.
    AvatarUrl
);

impl AvatarUrl {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidValue> {
        check_len(field, s, 1024)?;
        let lower = s.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(|| InvalidValue::new(field, "must be an http or https URL"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            return Err(InvalidValue::new(field, "must name a host"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidValue::new(field, "must not contain whitespace"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Casdoor's link fields an organization keeps without a column of its own.
pub const ORGANIZATION_LINKS: &[&str] = &["websiteUrl", "favicon", "logo", "logoDark"];
/// Casdoor's link fields an application keeps without a column of its own.
pub const APPLICATION_LINKS: &[&str] = &[
    "homepageUrl",
    "logo",
    "logoDark",
    "favicon",
    "signupUrl",
    "signinUrl",
    "forgetUrl",
    "affiliationUrl",
    "termsOfUse",
    "formBackgroundUrl",
    "formBackgroundUrlMobile",
];
/// Casdoor's link fields a user keeps without a column of its own (`avatar` and `homepage`
/// have columns, and are [`WebUrl`]s).
pub const USER_LINKS: &[&str] = &["permanentAvatar"];

/// The link fields among an object's other fields, as they are written: each is absent, empty
/// or an http(s) URL, as the URLs with a column are ([`AvatarUrl`]'s rules) — a console or a
/// client that shows `websiteUrl` as a link never gets `javascript:`.
pub fn check_links(
    extra: &crate::model::Extra,
    links: &[&'static str],
) -> Result<(), InvalidValue> {
    use serde_json::Value;
    for &field in links {
        match extra.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => {
                AvatarUrl::parse(field, s)?;
            }
            Some(_) => return Err(InvalidValue::new(field, "must be a string")),
        }
    }
    Ok(())
}

/// An application's `redirectUris`: Casdoor's patterns, which may name an app's own scheme,
/// but never one that runs or embeds code (`javascript:`, `data:`, `vbscript:`).
pub fn check_redirect_uris(extra: &crate::model::Extra) -> Result<(), InvalidValue> {
    use serde_json::Value;
    match extra.get("redirectUris") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(uris)) => {
            for (n, uri) in uris.iter().enumerate() {
                let Value::String(uri) = uri else {
                    return Err(InvalidValue::new(
                        "redirectUris",
                        format!("[{n}] must be a string"),
                    ));
                };
                // A browser skips whitespace and control characters in a scheme.
                let Some((scheme, _)) = uri.split_once(':') else {
                    continue;
                };
                let scheme: String = scheme
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_ascii_lowercase();
                if ["javascript", "data", "vbscript"].contains(&scheme.as_str()) {
                    return Err(InvalidValue::new(
                        "redirectUris",
                        format!("[{n}] must not be a {scheme}: URI"),
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err(InvalidValue::new("redirectUris", "must be a list of URIs")),
    }
}

/// The signing algorithm of a cert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoAlgorithm {
    Rs256,
    Es256,
}

impl CryptoAlgorithm {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "" | "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            other => Err(InvalidValue::new(
                "cryptoAlgorithm",
                format!("{other:?} is not supported (RS256 or ES256)"),
            )),
        }
    }

    /// The key size a cert of this algorithm gets when none is asked for.
    pub fn default_bit_size(self) -> i32 {
        match self {
            Self::Rs256 => 2048,
            Self::Es256 => 256,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// Provider types that identify a WeChat mini program. The product page says `WeChat`; Casdoor
/// stores `WeChatMiniProgram`. Both are accepted.
pub fn is_mini_program_type(provider_type: &str) -> bool {
    matches!(provider_type, "WeChat" | "WeChatMiniProgram")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_unionid_is_none_and_a_bad_one_an_error() {
        assert_eq!(WechatId::parse_optional("unionid", ""), Ok(None));
        assert_eq!(
            WechatId::parse_optional("unionid", "u1").map(|u| u.map(WechatId::into_string)),
            Ok(Some("u1".to_owned()))
        );
        assert!(WechatId::parse_optional("unionid", "u\n1").is_err());
    }

    #[test]
    fn a_name_in_a_message_reads_as_the_name() {
        let name = ObjectName::parse("name", "demo").expect("a valid name");
        assert_eq!(
            format!("application {name:?} already exists"),
            r#"application "demo" already exists"#
        );
    }

    #[test]
    fn names() {
        assert!(ObjectName::parse("name", "wechat-oGZUI0egBJY1zhBYw2KhdUfwVJJE").is_ok());
        assert_eq!(
            ObjectName::parse("name", "").unwrap_err().to_string(),
            "name: is required"
        );
        assert!(ObjectName::parse("name", "a/b").is_err());
        assert!(ObjectName::parse("name", "a b").is_err());
        assert!(ObjectName::parse("name", &"x".repeat(101)).is_err());
        // A name that only looks like another one stays addressable but cannot be created.
        for spoof in [
            "ad\u{200B}min",
            "ad\u{200D}min",
            "\u{202E}nimda",
            "admin\u{FEFF}",
        ] {
            let name = ObjectName::parse("name", spoof).expect("a stored name is addressable");
            let e = name.check_new("name").expect_err(spoof).to_string();
            assert!(e.starts_with("name: ") && e.contains("zero-width"), "{e}");
        }
        assert!(
            ObjectName::parse("name", "管理员")
                .expect("cjk")
                .check_new("name")
                .is_ok()
        );
        let (o, n) = split_id("id", "demo/alice").unwrap();
        assert_eq!((o.as_str(), n.as_str()), ("demo", "alice"));
        assert!(split_id("id", "alice").is_err());
        let reason = |id| split_id("id", id).map(|_| ()).unwrap_err().reason;
        assert_eq!(
            reason("demo/"),
            "must be of the form owner/name (the name is empty)"
        );
        assert_eq!(
            reason("/alice"),
            "must be of the form owner/name (the owner is empty)"
        );
    }

    #[test]
    fn codes() {
        assert!(WechatCode::parse("0712cDoV0cfty22AeloV0daMoV02cDog").is_ok());
        assert!(WechatCode::parse("").is_err());
        assert!(WechatCode::parse(&"a".repeat(129)).is_err());
        assert!(WechatCode::parse("the code is a mock one").is_err());
        assert!(WechatCode::parse("abc\u{7f}").is_err());
        assert!(WechatCode::parse("代码").is_err());
    }

    #[test]
    fn display_names_and_avatars() {
        assert!(DisplayName::parse("username", "微信用户").is_ok());
        assert!(DisplayName::parse("username", "").is_ok());
        assert!(DisplayName::parse("username", &"é".repeat(100)).is_ok());
        assert!(DisplayName::parse("username", &"é".repeat(101)).is_err());
        assert!(DisplayName::parse("username", "a\nb").is_err());
        assert!(DisplayName::parse("username", "evil\u{202E}gpj.exe").is_err());
        assert!(DisplayName::parse("username", "a\u{200B}b").is_err());
        // Joiners: part of emoji sequences and of Persian and Indic writing, not of ASCII names.
        assert!(DisplayName::parse("username", "小明👨\u{200D}💻").is_ok());
        assert!(DisplayName::parse("username", "می\u{200C}خواهم").is_ok());
        assert!(DisplayName::parse("username", "क्\u{200D}ष").is_ok());
        assert!(DisplayName::parse("username", "ad\u{200D}min").is_err());
        assert!(DisplayName::parse("username", "微信\u{200D}").is_err());
        assert!(DisplayName::parse("username", "\u{200C}微信").is_err());
        assert!(DisplayName::parse("username", "微\u{200D}\u{200D}信").is_err());
        assert_eq!(
            DisplayName::stored("a\u{200B}b".into()).as_str(),
            "a\u{200B}b"
        );
        assert!(WebUrl::parse("homepage", "javascript:alert(1)").is_err());
        assert_eq!(WebUrl::parse("homepage", ""), Ok(WebUrl::Empty));
        assert!(AvatarUrl::parse("avatar", "https://thirdwx.qlogo.cn/mmopen/x/132").is_ok());
        assert!(AvatarUrl::parse("avatar", "HTTP://example.com").is_ok());
        assert!(AvatarUrl::parse("avatar", "javascript:alert(1)").is_err());
        assert!(AvatarUrl::parse("avatar", "https://").is_err());
        assert!(AvatarUrl::parse("avatar", "https://a b").is_err());
        assert!(AvatarUrl::parse("avatar", &format!("https://a/{}", "x".repeat(1020))).is_err());
    }

    #[test]
    fn link_fields_kept_without_a_column_are_http_urls() {
        let extra = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        let ok = extra(serde_json::json!({
            "websiteUrl": "https://shop.example.com", "logo": "", "favicon": null, "tag": "x"
        }));
        assert_eq!(check_links(&ok, ORGANIZATION_LINKS), Ok(()));
        let bad = extra(serde_json::json!({"websiteUrl": "javascript:alert(1)"}));
        let e = check_links(&bad, ORGANIZATION_LINKS).unwrap_err();
        assert_eq!(e.to_string(), "websiteUrl: must be an http or https URL");
        let e = check_links(
            &extra(serde_json::json!({"homepageUrl": 5})),
            APPLICATION_LINKS,
        );
        assert_eq!(e.unwrap_err().to_string(), "homepageUrl: must be a string");
        // Another object's link field is not this one's.
        assert_eq!(check_links(&bad, USER_LINKS), Ok(()));

        let uris = |v: serde_json::Value| {
            check_redirect_uris(&extra(serde_json::json!({"redirectUris": v})))
        };
        assert_eq!(
            uris(serde_json::json!([
                "https://a.example/cb",
                "myapp://cb",
                "http://localhost:.*"
            ])),
            Ok(())
        );
        for bad in [
            "javascript:alert(1)",
            " JavaScript:x",
            "java\tscript:x",
            "data:text/html,x",
            "VBScript:x",
        ] {
            let e = uris(serde_json::json!(["https://ok.example", bad])).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("redirectUris: [1] must not be a "),
                "{bad}: {e}"
            );
        }
        assert!(uris(serde_json::json!("https://a.example")).is_err());
        assert!(uris(serde_json::json!([1])).is_err());
        // Read back, an old row's text is kept as it was but is no URL.
        let old = WebUrl::stored("javascript:alert(1)".into());
        assert_eq!(old.as_str(), "javascript:alert(1)");
        assert_eq!(old.url(), None);
        let good = WebUrl::stored("https://example.com/a.png".into());
        assert_eq!(
            good.url().map(|u| u.as_str()),
            Some("https://example.com/a.png")
        );
        assert!(WebUrl::stored(String::new()).is_empty());
    }

    #[test]
    fn algorithms() {
        assert_eq!(CryptoAlgorithm::parse("").unwrap(), CryptoAlgorithm::Rs256);
        assert_eq!(CryptoAlgorithm::parse("ES256").unwrap().as_str(), "ES256");
        assert!(CryptoAlgorithm::parse("HS256").is_err());
        assert!(is_mini_program_type("WeChat") && is_mini_program_type("WeChatMiniProgram"));
        assert!(!is_mini_program_type("wechat"));
    }
}

/// A phone number checked by libphonenumber's rules (the `phonenumber` crate), in the three forms
/// the server keeps: Casdoor's `phone` (the national number) and `countryCode` (the ISO region,
/// `CN`), and E.164 (`+8618017448610`), which is unique among the users of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    national: String,
    region: String,
    e164: String,
}

impl Phone {
    /// The region assumed for a national number sent without one: mini programs are Chinese.
    pub const DEFAULT_REGION: &'static str = "CN";

    /// `number` is a national number or an international one (`+…`); `region` is an ISO region
    /// (`CN`), a calling code (`86`, `+86`, as WeChat sends it) or empty (`CN`).
    pub fn parse(field: &'static str, number: &str, region: &str) -> Result<Self, InvalidValue> {
        use phonenumber::country;
        let number = number.trim();
        let region = region.trim();
        if number.is_empty() {
            return Err(InvalidValue::new(field, "is required"));
        }
        if number.chars().count() > 32 || region.chars().count() > 8 {
            return Err(InvalidValue::new(field, "is too long for a phone number"));
        }
        let bad = |why: String| InvalidValue::new(field, why);
        let code = region.trim_start_matches('+');
        let parsed = if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) {
            let digits = number.trim_start_matches('+');
            let full = if number.starts_with('+') {
                format!("+{digits}")
            } else {
                format!("+{code}{digits}")
            };
            phonenumber::parse(None, full)
        } else if number.starts_with('+') {
            phonenumber::parse(None, number)
        } else {
            let r = if region.is_empty() {
                Self::DEFAULT_REGION
            } else {
                region
            };
            let id: country::Id = r
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| bad(format!("{r:?} is not a country code")))?;
            phonenumber::parse(Some(id), number)
        }
        .map_err(|e| bad(format!("{number:?} is not a phone number: {e}")))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(bad(format!("{number:?} is not a valid phone number")));
        }
        let region = parsed
            .country()
            .id()
            .map(|id| id.as_ref().to_owned())
            .unwrap_or_default();
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Self {
            national: parsed.national().to_string(),
            region,
            e164,
        })
    }

    /// Casdoor's `phone`: the national number, digits only.
    pub fn national(&self) -> &str {
        &self.national
    }

    /// Casdoor's `countryCode`: the ISO region.
    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The last four digits, for messages and records that must not hold the whole number.
    pub fn masked(&self) -> String {
        let tail: String = self
            .e164
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("***{tail}")
    }
}

#[cfg(test)]
mod phone_tests {
    use super::Phone;

    #[test]
    fn wechat_forms_become_casdoor_and_e164() {
        // What getuserphonenumber gives: purePhoneNumber and a calling code.
        let p = Phone::parse("phone", "18017448610", "86").unwrap();
        assert_eq!(
            (p.national(), p.region(), p.e164()),
            ("18017448610", "CN", "+8618017448610")
        );
        // What Casdoor stores: a national number and an ISO region; and the default region.
        assert_eq!(Phone::parse("phone", "18017448610", "CN").unwrap(), p);
        assert_eq!(Phone::parse("phone", "18017448610", "").unwrap(), p);
        assert_eq!(Phone::parse("phone", "+86 180-1744-8610", "").unwrap(), p);
        let us = Phone::parse("phone", "2015550123", "1").unwrap();
        assert_eq!((us.region(), us.e164()), ("US", "+12015550123"));
        let gb = Phone::parse("phone", "07400 123456", "GB").unwrap();
        assert_eq!((gb.national(), gb.e164()), ("7400123456", "+447400123456"));
        assert_eq!(p.masked(), "***8610");
    }

    #[test]
    fn what_is_not_a_phone_number_is_refused_by_name() {
        for (n, r) in [
            ("", "CN"),
            ("12345", "CN"),
            ("not a number", "CN"),
            ("18017448610", "ZZ"),
            ("1801744861099999999999", "86"),
        ] {
            let e = Phone::parse("phone", n, r).unwrap_err();
            assert_eq!(e.field, "phone", "{n:?} {r:?}");
        }
    }
}
