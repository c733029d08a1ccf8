//! `openapi/openapi.json` is the contract clients generate code from: it must be exactly what the
//! server serves. Run with `UPDATE_OPENAPI=1` to rewrite it after changing the API.

#[test]
fn checked_in_openapi_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json");
    let generated = iam_api::openapi_json() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p iam-api --test openapi_fresh` and commit it"
    );
}

/// `update-user`'s `columns` pattern and the domain's field names agree: every field the domain
/// knows matches in both spellings, and nothing else does.
#[test]
fn the_columns_pattern_lists_the_domain_s_user_fields() {
    let spec: serde_json::Value =
        serde_json::from_str(&iam_api::openapi_json()).expect("the spec is JSON");
    let pattern = spec["paths"]["/api/update-user"]["post"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "columns"))
        .and_then(|p| p["schema"]["pattern"].as_str())
        .expect("update-user has a columns pattern");
    let re = regex::Regex::new(pattern).expect("the pattern compiles");
    for f in iam_domain::users::UserField::ALL {
        let camel = f.name();
        let snake: String = camel
            .chars()
            .flat_map(|c| {
                let under = c.is_ascii_uppercase().then_some('_');
                under.into_iter().chain([c.to_ascii_lowercase()])
            })
            .collect();
        for spelling in [camel, snake.as_str()] {
            assert!(re.is_match(spelling), "{spelling} is refused by {pattern}");
            assert_eq!(iam_domain::users::UserField::parse(spelling), Some(*f));
        }
    }
    assert!(re.is_match("displayName, phone,countryCode"));
    for refused in ["DisplayName", "nope", "displayNamephone", "phone,nope"] {
        assert!(!re.is_match(refused), "{refused} matches {pattern}");
        assert!(
            refused
                .split(',')
                .any(|c| iam_domain::users::UserField::parse(c.trim()).is_none())
        );
    }
}
