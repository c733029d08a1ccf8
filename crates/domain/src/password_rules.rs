//! An organization's password rules (Casdoor's `passwordOptions`, SPEC §12): `AtLeast6` (the
//! default), `AtLeast8`, `Aa123`, `SpecialChar`, `NoRepeat`. Enforced wherever a password is set through the
//! API or the console; a seeded or environment-given password that breaks them is accepted with
//! a warning (Casdoor itself seeds `123`).

use crate::Error;
use crate::model::Organization;

/// Casdoor's rule names; an organization listing any other is refused (a misspelt rule would
/// otherwise quietly enforce nothing).
pub const RULES: [&str; 5] = ["AtLeast6", "AtLeast8", "Aa123", "SpecialChar", "NoRepeat"];

/// `passwordOptions` as an organization may hold it: absent, or a list of [`RULES`].
pub fn validate_options(value: Option<&serde_json::Value>) -> Result<(), String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let list = value
        .as_array()
        .ok_or_else(|| "must be a list of rule names".to_owned())?;
    for item in list {
        match item.as_str() {
            Some(rule) if RULES.contains(&rule) => {}
            _ => {
                return Err(format!("{item} is not one of {}", RULES.join(", ")));
            }
        }
    }
    Ok(())
}

/// The rules an organization asks for; none listed means `AtLeast6`.
pub fn password_options(org: &Organization) -> Vec<String> {
    let listed: Vec<String> = org
        .extra
        .get("passwordOptions")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        vec!["AtLeast6".into()]
    } else {
        listed
    }
}

/// The first rule `password` breaks, in Casdoor's words, as an error about `password`.
pub fn check_password(options: &[String], password: &str) -> Result<(), Error> {
    let broken = |m: &str| Err(Error::Invalid(format!("password: {m}")));
    for option in options {
        match option.as_str() {
            "AtLeast6" if password.chars().count() < 6 => {
                return broken("The password must have at least 6 characters");
            }
            "AtLeast8" if password.chars().count() < 8 => {
                return broken("The password must have at least 8 characters");
            }
            "Aa123"
                if !(password.chars().any(|c| c.is_uppercase())
                    && password.chars().any(|c| c.is_lowercase())
                    && password.chars().any(|c| c.is_ascii_digit())) =>
            {
                return broken(
                    "The password must contain at least one uppercase letter, one lowercase letter and one digit",
                );
            }
            "SpecialChar" if !password.chars().any(|c| !c.is_alphanumeric()) => {
                return broken("The password must contain at least one special character");
            }
            "NoRepeat" => {
                let chars: Vec<char> = password.chars().collect();
                if chars.windows(2).any(|w| w[0] == w[1]) {
                    return broken("The password must not contain any repeated characters");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn casdoors_rules() {
        let six = opts(&["AtLeast6"]);
        assert!(check_password(&six, "12345").is_err());
        assert!(check_password(&six, "123456").is_ok());
        let mixed = opts(&["Aa123"]);
        assert!(check_password(&mixed, "abcdef1").is_err());
        assert!(check_password(&mixed, "Abcdef1").is_ok());
        let special = opts(&["SpecialChar"]);
        assert!(check_password(&special, "Abcdef1").is_err());
        assert!(check_password(&special, "Abc-def1").is_ok());
        let no_repeat = opts(&["NoRepeat"]);
        assert!(check_password(&no_repeat, "abccd").is_err());
        assert!(check_password(&no_repeat, "abcdc").is_ok());
        let e = check_password(&six, "1").expect_err("short");
        assert!(e.to_string().starts_with("password: "), "{e}");
    }

    #[test]
    fn only_casdoors_rule_names_are_accepted() {
        use serde_json::json;
        assert!(validate_options(None).is_ok());
        assert!(validate_options(Some(&json!(["AtLeast8", "NoRepeat"]))).is_ok());
        let e = validate_options(Some(&json!(["AtLeast7"]))).expect_err("unknown");
        assert!(e.contains("\"AtLeast7\" is not one of AtLeast6"), "{e}");
        assert!(validate_options(Some(&json!("AtLeast6"))).is_err());
        assert!(check_password(&opts(&["AtLeast8"]), "1234567").is_err());
        assert!(check_password(&opts(&["AtLeast8"]), "12345678").is_ok());
    }

    #[test]
    fn none_listed_is_at_least_six() {
        let org = crate::seed::built_in_organization(chrono::Utc::now());
        assert_eq!(password_options(&org), ["AtLeast6"]);
    }
}
