//! The query parameters many operations share, each shape stated once: the schema the spec
//! shows (length, pattern) and the check that holds it on the way in, by the domain's own rules
//! where it has them. An operation names the type (`id: Query<Option<ObjectId>>`) instead of
//! repeating a validator.

use std::borrow::Cow;

use iam_domain::sessions::is_session_id;
use iam_domain::values::{ObjectName, split_id};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromParameter, ParseResult, ToJSON, Type};
use serde_json::Value;

/// A string parameter type: its schema, and `parse` turning the raw text into it or into the
/// reason it is refused.
macro_rules! text_param {
    ($name:ident, $type_name:literal, max_length = $max:expr, pattern = $pattern:expr) => {
        /// Reads as the text that was sent.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.text
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $type_name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    max_length: Some($max),
                    pattern: Some($pattern.into()),
                    ..MetaSchema::new("string")
                }))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                if value.chars().count() > $max {
                    return Err(ParseError::custom(format!(
                        "is longer than {} characters",
                        $max
                    )));
                }
                Self::parse(value).map_err(ParseError::custom)
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.text.clone()))
            }
        }
    };
}

/// Casdoor's `id=owner/name`: two object names. Reads as the text that was sent.
#[derive(Debug, Clone)]
pub struct ObjectId {
    pub owner: ObjectName,
    pub name: ObjectName,
    text: String,
}

impl ObjectId {
    fn parse(s: &str) -> Result<Self, String> {
        let (owner, name) = split_id("id", s).map_err(|e| e.reason)?;
        Ok(Self {
            owner,
            name,
            text: s.to_owned(),
        })
    }
}

text_param!(
    ObjectId,
    "ObjectId",
    max_length = 201,
    pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]{1,100}/[^/\s\x00-\x1f\x7f-\x9f]{1,100}$"
);

/// `owner/<session id>`, as Casdoor names a token: a session id is a UUID. The owner is checked
/// as a name; a session is found by its id alone, within what the caller may see.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub sid: String,
    text: String,
}

impl SessionRef {
    fn parse(s: &str) -> Result<Self, String> {
        let (owner, sid) = s
            .split_once('/')
            .ok_or("must be of the form owner/<session id>")?;
        ObjectName::parse("id", owner).map_err(|e| e.reason)?;
        Ok(Self {
            sid: SessionId::parse(sid)?.text,
            text: s.to_owned(),
        })
    }
}

text_param!(
    SessionRef,
    "SessionRef",
    max_length = 137,
    pattern = r"^[^/\s\x00-\x1f\x7f-\x9f]{1,100}/[0-9a-fA-F-]{36}$"
);

/// A session id (the `sid` claim of its tokens): a UUID.
#[derive(Debug, Clone)]
pub struct SessionId {
    text: String,
}

impl SessionId {
    fn parse(s: &str) -> Result<Self, String> {
        if !is_session_id(s) {
            return Err(format!("{s:?} is not a session id (a UUID)"));
        }
        Ok(Self { text: s.to_owned() })
    }
}

text_param!(
    SessionId,
    "SessionId",
    max_length = 36,
    pattern = r"^[0-9a-fA-F-]{36}$"
);

/// A whole number from 1, as Casdoor sends `p`, `pageSize` and limits: surrounding spaces and
/// leading zeros are fine, and empty is the same as absent. Kept as sent; the domain reads it.
#[derive(Debug, Clone)]
pub struct Count {
    text: String,
}

impl Count {
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits = t.trim_start_matches('0');
        let whole = t.bytes().all(|b| b.is_ascii_digit()) && (t.is_empty() || !digits.is_empty());
        if !whole || digits.len() > 18 {
            return Err(format!("must be a whole number from 1, got {s:?}"));
        }
        Ok(Self { text: s.to_owned() })
    }

    /// What was sent, for the domain's readers of Casdoor's text parameters.
    pub fn text(count: Option<Self>) -> Option<String> {
        count.map(|c| c.text)
    }
}

text_param!(
    Count,
    "Count",
    max_length = 20,
    pattern = r"^\s*(0*[1-9][0-9]{0,17})?\s*$"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each check agrees with the pattern the spec states, on both sides of it.
    #[test]
    fn checks_match_their_patterns() {
        fn agree<T: Type + ParseFromParameter>(samples: &[&str]) {
            let MetaSchemaRef::Inline(schema) = T::schema_ref() else {
                panic!("inline schema");
            };
            let pattern = regex::Regex::new(schema.pattern.as_deref().expect("a pattern"))
                .expect("the pattern compiles");
            let max = schema.max_length.expect("a max length");
            for s in samples {
                let by_schema = pattern.is_match(s) && s.chars().count() <= max;
                let by_check = T::parse_from_parameter(s).is_ok();
                assert_eq!(by_schema, by_check, "{} {s:?}", T::name());
            }
        }
        let long = "x".repeat(100);
        let too_long = "x".repeat(101);
        let ids = [
            "demo/alice".to_owned(),
            "built-in/admin".into(),
            "demo/".into(),
            "/alice".into(),
            "demo".into(),
            "demo/al ice".into(),
            "demo/a/b".into(),
            "demo/a\u{7}".into(),
            "demo/a\u{85}".into(),
            "demo/a\u{3000}".into(),
            "组织/用户".into(),
            format!("{long}/{long}"),
            format!("{too_long}/x"),
            String::new(),
        ];
        agree::<ObjectId>(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        agree::<SessionRef>(&[
            "admin/0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6f",
            "admin/0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6",
            "admin/0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6g",
            "0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6f",
            "a b/0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6f",
        ]);
        agree::<SessionId>(&[
            "0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6f",
            "0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6",
            "0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6g",
            "0b7f6a8e-3c1d-4b2a-9e8f-1a2b3c4d5e6f0",
            "no-such-session",
            "",
        ]);
        agree::<Count>(&[
            "1",
            "10",
            " 7 ",
            "007",
            "",
            "  ",
            "0",
            "000",
            "-1",
            "+1",
            "1.5",
            "abc",
            "999999999999999999",
            "1000000000000000000",
            "0000000000000000001",
        ]);
    }
}
