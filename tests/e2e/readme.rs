//! The README is a test: its `sh` blocks run in order, as a newcomer would paste them, in a fresh
//! copy of `conf/`, with the binaries this test suite built standing in for `cargo run` (a small
//! `cargo` shim on the PATH, and `target/release/` links). A block preceded by
//! `<!-- readme-test: skip — reason -->` is not run, and the test says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use iam_e2e::{binary, workspace_root};

struct Block {
    line: usize,
    code: String,
    skip: Option<String>,
}

/// The `sh` fences of a Markdown text, with the skip reason written above them.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate().peekable();
    let mut skip: Option<String> = None;
    while let Some((n, line)) = lines.next() {
        if let Some(reason) = line
            .trim()
            .strip_prefix("<!-- readme-test: skip")
            .and_then(|r| r.strip_suffix("-->"))
        {
            skip = Some(reason.trim_start_matches([' ', '—', '-']).trim().to_owned());
            continue;
        }
        if line.trim_start().starts_with("```") {
            let lang = line.trim_start().trim_start_matches('`').trim().to_owned();
            let mut code = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                code.push_str(l);
                code.push('\n');
            }
            if lang == "sh" {
                out.push(Block {
                    line: n + 1,
                    code,
                    skip: skip.take(),
                });
            }
            skip = None;
        } else if !line.trim().is_empty() {
            skip = None;
        }
    }
    out
}

const CARGO_SHIM: &str = r#"#!/usr/bin/env bash
# The README's cargo commands, against the binaries the test suite built.
set -euo pipefail
sub=${1:-}; shift || true
case "$sub" in
  run) ;;
  build) exit 0 ;;
  *) echo "readme shim: the README test does not run 'cargo $sub'" >&2; exit 2 ;;
esac
pkg=""; bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    -p|--package) pkg=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --release|--quiet|-q) shift ;;
    --) shift; break ;;
    *) echo "readme shim: unexpected cargo argument $1" >&2; exit 2 ;;
  esac
done
case "$pkg/$bin" in
  iam-server/*) exec "$README_IAM" "$@" ;;
  wechat-sim/*) exec "$README_SIM" "$@" ;;
  iam-e2e/iam-load) exec "$README_LOAD" "$@" ;;
  *) echo "readme shim: no binary for -p $pkg --bin $bin" >&2; exit 2 ;;
esac
"#;

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

#[test]
fn the_readme_works_when_followed_literally() -> anyhow::Result<()> {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let blocks = blocks(&readme);
    assert!(blocks.len() >= 8, "only {} sh blocks found", blocks.len());
    for port in [8000, 8100, 9000] {
        anyhow::ensure!(
            port_is_free(port),
            "port {port} is taken: the README's commands use it (stop what holds it)"
        );
    }

    let dir = tempfile::tempdir()?;
    copy_dir(&root.join("conf"), &dir.path().join("conf"))?;
    let (iam, sim) = (binary("iam")?, binary("wechat-sim")?);
    let load = PathBuf::from(env!("CARGO_BIN_EXE_iam-load"));
    let release = dir.path().join("target/release");
    std::fs::create_dir_all(&release)?;
    for (name, path) in [("iam", &iam), ("wechat-sim", &sim), ("iam-load", &load)] {
        std::os::unix::fs::symlink(path, release.join(name))?;
    }
    let shim_dir = dir.path().join("shim");
    std::fs::create_dir_all(&shim_dir)?;
    let shim = shim_dir.join("cargo");
    std::fs::write(&shim, CARGO_SHIM)?;
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    // Whatever the README leaves running stops with the shell, also when it is timed out.
    let mut script = String::from(
        "set -euo pipefail\ntrap 'exit 143' TERM\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n",
    );
    let mut skipped = Vec::new();
    for b in &blocks {
        match &b.skip {
            Some(reason) => skipped.push(format!("README.md:{} — {reason}", b.line)),
            None => {
                script.push_str(&format!("echo '== README.md:{}' >&2\n", b.line));
                script.push_str(&b.code);
            }
        }
    }
    for s in &skipped {
        eprintln!("SKIPPED {s}");
    }

    let path = format!(
        "{}:{}",
        shim_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", "600", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("README_IAM", &iam)
        .env("README_SIM", &sim)
        .env("README_LOAD", &load)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A newcomer's shell has none of the test environment's settings.
    for (k, _) in std::env::vars() {
        if k.starts_with("IAM_") || k == "RUST_LOG" {
            cmd.env_remove(&k);
        }
    }
    let started = Instant::now();
    let out = cmd.output()?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(124),
        "the README's commands did not finish in 600 s ({:?}):\n{text}",
        started.elapsed()
    );
    assert!(out.status.success(), "a README block failed:\n{text}");
    Ok(())
}

#[test]
fn blocks_and_their_skip_reasons_are_read() {
    let md = "text\n<!-- readme-test: skip — slow -->\n```sh\nsleep 100\n```\n\n```sh\necho hi\n```\n```js\nx\n```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].skip.as_deref(), Some("slow"));
    assert_eq!(
        (b[1].line, b[1].code.as_str(), b[1].skip.is_none()),
        (7, "echo hi\n", true)
    );
}
