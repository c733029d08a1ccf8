//! The hexagon, checked: the domain depends on no IO crate, even transitively, and adapters do
//! not depend on each other. Only the server crate knows them all.

use std::process::Command;

fn normal_deps(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_domain_has_no_io_dependencies() {
    let deps = normal_deps("iam-domain");
    let forbidden = [
        "poem",
        "poem-openapi",
        "diesel",
        "diesel_migrations",
        "reqwest",
        "jsonwebtoken",
        "hyper",
        "tokio",
        "sqlx",
        "rustls",
        "aws-lc-rs",
    ];
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "iam-domain depends on {f}: {deps:?}"
        );
    }
}

#[test]
fn adapters_do_not_depend_on_each_other() {
    let adapters = ["iam-store", "iam-wechat", "iam-jwt", "iam-api"];
    for a in adapters {
        let deps = normal_deps(a);
        for other in adapters.iter().filter(|o| **o != a) {
            assert!(!deps.iter().any(|d| d == other), "{a} depends on {other}");
        }
    }
}

/// Casdoor's wire shapes are shared by the API and the seed file: they know the domain and
/// nothing of storage, WeChat, signing or HTTP routing.
#[test]
fn the_wire_shapes_depend_on_no_adapter() {
    let deps = normal_deps("iam-wire");
    for a in [
        "iam-store",
        "iam-wechat",
        "iam-jwt",
        "iam-api",
        "iam-console",
    ] {
        assert!(!deps.iter().any(|d| d == a), "iam-wire depends on {a}");
    }
}
