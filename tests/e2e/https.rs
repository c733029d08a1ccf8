//! Behind HTTPS, for real: Debian's nginx terminates TLS with a throwaway certificate in front
//! of `iam`, exactly as the README's server block says, and a mini program user signs in
//! through it.

use std::process::Command;

use std::time::Duration;

use iam_e2e::{Db, Iam, IamOptions, Proc, WechatSim};

use crate::signin::{APPID, CLIENT_ID};

fn nginx() -> anyhow::Result<Option<std::path::PathBuf>> {
    let path = std::path::PathBuf::from("/usr/sbin/nginx");
    if path.exists() {
        return Ok(Some(path));
    }
    anyhow::ensure!(
        std::env::var_os("CI").is_none(),
        "CI is set but nginx is not installed (.ci/run installs it)"
    );
    eprintln!("SKIPPED: nginx is not installed (apt-get install nginx), so HTTPS is not tested");
    Ok(None)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mini_program_signs_in_through_nginx_with_tls() -> anyhow::Result<()> {
    let Some(nginx) = nginx()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    // A throwaway server certificate for localhost (not a CA: TLS clients refuse those).
    let tls = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    std::fs::write(&cert, tls.cert.pem())?;
    std::fs::write(&key, tls.signing_key.serialize_pem())?;

    let https_port = free_port()?;
    let origin = format!("https://localhost:{https_port}");
    let db = Db::sqlite()?;
    let sim = WechatSim::start()?;
    let mut opts = IamOptions::new(&db);
    opts.wechat_api_base = sim.base.clone();
    opts.init_data = Some(iam_e2e::workspace_root().join("tests/e2e/fixtures/init_data.json"));
    opts.extra_env.push(("origin".into(), origin.clone()));
    let iam = Iam::start(&opts)?;
    let upstream = iam.base.trim_start_matches("http://").to_owned();

    // The README's server block, with this test's paths and ports.
    let d = dir.path().display();
    let conf = format!(
        r#"daemon off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{https_port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    }}
}}
"#,
        cert = cert.display(),
        key = key.display(),
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(nginx);
    cmd.arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.path().join("error.log"));
    let nginx = Proc::spawn_for_test("nginx", cmd)?;

    let pem = std::fs::read(&cert)?;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
        .build()?;
    // nginx needs a moment to listen.
    let mut last = String::new();
    for _ in 0..100 {
        match http.get(format!("{origin}/readyz")).send().await {
            Ok(r) if r.status() == 200 => {
                last.clear();
                break;
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        last.is_empty(),
        "nginx did not answer ({last}): {} {}",
        nginx.lines().join("\n"),
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );

    let code = iam_e2e::wx_login(&http, &sim.base, APPID, "over-tls").await?;
    let resp = http
        .post(format!("{origin}/oauth/token"))
        .form(&[
            ("tag", "wechat_miniprogram"),
            ("client_id", CLIENT_ID),
            ("code", code.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await?;
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    let account: serde_json::Value = http
        .get(format!("{origin}/api/get-account"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(account["status"], "ok", "{account}");
    let discovery: serde_json::Value = http
        .get(format!("{origin}/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(discovery["issuer"], origin);
    assert_eq!(discovery["jwks_uri"], format!("{origin}/.well-known/jwks"));
    Ok(())
}
