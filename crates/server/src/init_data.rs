//! `init_data.json` in Casdoor's format, read with the API's wire types (`iam_wire`) and built with the
//! domain's constructors (`Iam::build_seed`): a malformed file stops start-up with a message
//! naming the object, and nothing is half-loaded.

use iam_domain::seed::SeedInputs;
use iam_wire::InitData;

/// Reads the file's JSON straight into the wire types; a value of the wrong type is named by
/// its path.
#[cfg(test)]
pub fn parse(text: &str) -> Result<SeedInputs, String> {
    iam_wire::from_json_text(text).map(inputs)
}

/// [`parse`], from a reader: an export of a million users is 1.4 GB of text, never all held.
pub fn read(reader: impl std::io::Read) -> Result<SeedInputs, String> {
    iam_wire::from_json_reader(reader).map(inputs)
}

fn inputs(file: InitData) -> SeedInputs {
    SeedInputs {
        organizations: file
            .organizations
            .into_iter()
            .map(|o| o.into_input())
            .collect(),
        providers: file.providers.into_iter().map(|p| p.into_input()).collect(),
        applications: file
            .applications
            .into_iter()
            .map(|a| a.into_input())
            .collect(),
        users: file.users,
        certs: file.certs.into_iter().map(|c| c.into_input()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_demo_file_parses() {
        let text = include_str!("../../../conf/init_data.json");
        let s = parse(text).unwrap();
        assert_eq!(s.applications[0].client_id, "6825f4f0af45554c8952");
        assert!(s.applications[0].enable_sign_up);
        assert_eq!(s.providers[0].provider_type, "WeChat");
        assert_eq!(s.providers[0].client_id, "wx5f3c1b2a9d8e7f60");
    }

    #[test]
    fn wrong_types_are_named_by_path() {
        let e = parse(r#"{"applications":[{"name":"a","expireInHours":"soon"}]}"#).unwrap_err();
        assert!(e.contains("applications[0].expireInHours"), "{e}");
        assert!(parse("{").unwrap_err().starts_with("not valid"));
    }
}
