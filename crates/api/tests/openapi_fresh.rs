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
