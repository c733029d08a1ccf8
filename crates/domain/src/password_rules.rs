//! An organization's password rules (Casdoor's `passwordOptions`, SPEC §12): `AtLeast6` (the
//! default), `Aa123`, `SpecialChar`, `NoRepeat`. Enforced wherever a password is set through the
//! API or the console; a seeded or environment-given password that breaks them is accepted with
//! a warning (Casdoor itself seeds `123`).

use crate::Error;
use crate::model::Organization;

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
    fn none_listed_is_at_least_six() {
        let org = crate::seed::built_in_organization(chrono::Utc::now());
        assert_eq!(password_options(&org), ["AtLeast6"]);
    }
}
