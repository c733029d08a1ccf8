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
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

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
}

/// `owner/name`, as Casdoor's `id` query parameter carries it.
pub fn split_id(field: &'static str, id: &str) -> Result<(ObjectName, ObjectName), InvalidValue> {
    let (owner, name) = id
        .split_once('/')
        .ok_or_else(|| InvalidValue::new(field, "must be of the form owner/name"))?;
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
        if let Some(c) = s.chars().find(|c| is_invisible_format(*c)) {
            return Err(InvalidValue::new(
                field,
                format!(
                    "must not contain bidirectional-override or zero-width characters (U+{:04X})",
                    u32::from(c)
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Characters that make a name read differently from what it is: bidirectional overrides and
/// isolates (the "Trojan Source" set) and zero-width characters.
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

/// A URL field that may be empty; when set it must be an http(s) URL ([`AvatarUrl`]'s rules), so
/// no `javascript:` link ever reaches a page that shows it.
pub fn optional_url(field: &'static str, s: String) -> Result<String, InvalidValue> {
    if s.is_empty() {
        return Ok(s);
    }
    AvatarUrl::parse(field, &s).map(AvatarUrl::into_string)
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
    fn names() {
        assert!(ObjectName::parse("name", "wechat-oGZUI0egBJY1zhBYw2KhdUfwVJJE").is_ok());
        assert_eq!(
            ObjectName::parse("name", "").unwrap_err().to_string(),
            "name: is required"
        );
        assert!(ObjectName::parse("name", "a/b").is_err());
        assert!(ObjectName::parse("name", "a b").is_err());
        assert!(ObjectName::parse("name", &"x".repeat(101)).is_err());
        let (o, n) = split_id("id", "demo/alice").unwrap();
        assert_eq!((o.as_str(), n.as_str()), ("demo", "alice"));
        assert!(split_id("id", "alice").is_err());
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
        assert!(optional_url("homepage", "javascript:alert(1)".into()).is_err());
        assert_eq!(optional_url("homepage", String::new()).unwrap(), "");
        assert!(AvatarUrl::parse("avatar", "https://thirdwx.qlogo.cn/mmopen/x/132").is_ok());
        assert!(AvatarUrl::parse("avatar", "HTTP://example.com").is_ok());
        assert!(AvatarUrl::parse("avatar", "javascript:alert(1)").is_err());
        assert!(AvatarUrl::parse("avatar", "https://").is_err());
        assert!(AvatarUrl::parse("avatar", "https://a b").is_err());
        assert!(AvatarUrl::parse("avatar", &format!("https://a/{}", "x".repeat(1020))).is_err());
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
