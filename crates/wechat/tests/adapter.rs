//! The WeChat adapter against wiremock: every errcode group, content types, statuses, malformed
//! bodies, timeouts, retry counts, the secret kept out of errors, and single-flight token refresh.

use std::sync::Arc;
use std::time::Duration;

use iam_domain::Secret;
use iam_domain::ports::WechatError;
use iam_wechat::{WechatClient, WechatConfig};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APPID: &str = "wx5f3c1b2a9d8e7f60";
const SECRET: &str = "0c6d2a1b9e8f7d6c5b4a39281706f5e4";

fn client(server: &MockServer) -> WechatClient {
    let mut config = WechatConfig::new(server.uri(), Duration::from_millis(500));
    config.backoff = Duration::from_millis(5);
    WechatClient::new(config).unwrap()
}

fn secret() -> Secret {
    Secret::new(SECRET)
}

fn wx_error(errcode: i64, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        json!({"errcode": errcode, "errmsg": format!("{msg}, rid: 66c69111-4157f271-729ca238")})
            .to_string(),
        "text/plain",
    )
}

async fn exchange(
    server: &MockServer,
    code: &str,
) -> Result<iam_domain::ports::WechatSession, WechatError> {
    client(server).jscode2session(APPID, &secret(), code).await
}

fn assert_no_secret(e: &WechatError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(SECRET), "secret leaked into {text}");
}

#[tokio::test]
async fn success_as_text_plain_with_urlencoded_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .and(query_param("appid", APPID))
        .and(query_param("secret", SECRET))
        .and(query_param("js_code", "0a+b&c=d/e"))
        .and(query_param("grant_type", "authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"session_key":"qsXl7QTYr7VG+mq8ewB1xw==","openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","unionid":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA"}"#,
            "text/plain",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = exchange(&server, "0a+b&c=d/e").await.unwrap();
    assert_eq!(s.openid.as_str(), "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(s.unionid.as_deref(), Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA"));
    assert_eq!(s.session_key.expose(), "qsXl7QTYr7VG+mq8ewB1xw==");
}

#[tokio::test]
async fn success_as_json_with_errcode_zero_and_no_unionid() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"errcode": 0, "errmsg": "ok", "session_key": "k", "openid": "o1", "unionid": ""}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = exchange(&server, "c").await.unwrap();
    assert_eq!((s.openid.as_str(), s.unionid), ("o1", None));
}

#[tokio::test]
async fn success_without_openid_or_session_key_is_malformed() {
    for body in [
        json!({"openid": "o"}),
        json!({"session_key": "k"}),
        json!({"openid": "", "session_key": "k"}),
        // Ids no user could be stored under: control characters, or longer than 128.
        json!({"openid": "o\n1", "session_key": "k"}),
        json!({"openid": "o".repeat(129), "session_key": "k"}),
        json!({"openid": "o1", "unionid": "u\u{1}", "session_key": "k"}),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/sns/jscode2session"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        assert!(matches!(
            exchange(&server, "c").await,
            Err(WechatError::Malformed(_))
        ));
    }
}

#[tokio::test]
async fn every_errcode_maps_to_its_group_without_retry() {
    type Check = fn(&WechatError) -> bool;
    let cases: &[(i64, &str, Check)] = &[
        (40029, "invalid code", |e| {
            matches!(e, WechatError::InvalidCode(_))
        }),
        (40163, "code been used", |e| {
            matches!(e, WechatError::CodeUsed(_))
        }),
        (40226, "code blocked", |e| {
            matches!(e, WechatError::Blocked(_))
        }),
        (41008, "missing code", |e| {
            matches!(e, WechatError::MissingCode(_))
        }),
        (
            45011,
            "api minute-quota reach limit, must slower, retry next minute",
            |e| matches!(e, WechatError::RateLimited(_)),
        ),
        (45009, "reach max api daily quota limit", |e| {
            matches!(e, WechatError::RateLimited(_))
        }),
        (40013, "invalid appid", |e| {
            matches!(e, WechatError::Misconfigured(_))
        }),
        (40125, "invalid appsecret", |e| {
            matches!(e, WechatError::Misconfigured(_))
        }),
        (
            40164,
            "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist",
            |e| matches!(e, WechatError::Misconfigured(_)),
        ),
        (41002, "appid missing", |e| {
            matches!(e, WechatError::Misconfigured(_))
        }),
        (41004, "appsecret missing", |e| {
            matches!(e, WechatError::Misconfigured(_))
        }),
        (40002, "invalid grant_type", |e| {
            matches!(e, WechatError::Misconfigured(_))
        }),
        (99999, "something new", |e| {
            matches!(e, WechatError::Other(_))
        }),
    ];
    for (errcode, msg, check) in cases {
        let server = MockServer::start().await;
        Mock::given(path("/sns/jscode2session"))
            .respond_with(wx_error(*errcode, msg))
            .expect(1)
            .mount(&server)
            .await;
        let e = exchange(&server, "c").await.unwrap_err();
        assert!(check(&e), "{errcode} → {e:?}");
        let fault = e.fault().unwrap();
        assert_eq!(fault.errcode, *errcode);
        assert_eq!(fault.rid.as_deref(), Some("66c69111-4157f271-729ca238"));
        assert_no_secret(&e);
        assert_eq!(
            e.is_unavailable(),
            matches!(errcode, 45009 | 45011),
            "{errcode}"
        );
    }
}

#[tokio::test]
async fn busy_is_retried_twice_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(wx_error(-1, "system error"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"openid": "o", "session_key": "k"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(exchange(&server, "c").await.is_ok());
}

#[tokio::test]
async fn busy_three_times_is_busy() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(wx_error(-1, "system error"))
        .expect(3)
        .mount(&server)
        .await;
    let e = exchange(&server, "c").await.unwrap_err();
    assert!(
        matches!(e, WechatError::Busy(_)) && e.is_unavailable(),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_non_200_status_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let e = exchange(&server, "c").await.unwrap_err();
    assert_eq!(e, WechatError::HttpStatus(502));
    assert!(e.is_unavailable());
}

#[tokio::test]
async fn a_malformed_body_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("{\"errcode\":0,\"session_key\":\"", "text/plain"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = exchange(&server, "c").await.unwrap_err();
    assert!(matches!(e, WechatError::Malformed(_)), "{e:?}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn a_timeout_is_not_retried_because_the_code_may_be_spent() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"openid": "o", "session_key": "k"}))
                .set_delay(Duration::from_secs(2)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let e = exchange(&server, "c").await.unwrap_err();
    assert_eq!(e, WechatError::Timeout);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "bounded by the configured timeout"
    );
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported_without_the_secret() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = WechatConfig::new(
        format!("http://127.0.0.1:{port}"),
        Duration::from_millis(500),
    );
    config.backoff = Duration::from_millis(20);
    let c = WechatClient::new(config).unwrap();
    let started = std::time::Instant::now();
    let e = c.jscode2session(APPID, &secret(), "c").await.unwrap_err();
    assert!(matches!(e, WechatError::Transport(_)), "{e:?}");
    assert!(e.is_unavailable());
    assert!(
        started.elapsed() >= Duration::from_millis(20),
        "backed off between tries"
    );
    assert_no_secret(&e);
}

async fn mount_stable_token(server: &MockServer, expect: u64) {
    Mock::given(method("POST"))
        .and(path("/cgi-bin/stable_token"))
        .and(body_partial_json(
            json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "TOKEN-1", "expires_in": 7200}))
                .set_delay(Duration::from_millis(50)),
        )
        .expect(expect)
        .mount(server)
        .await;
}

#[tokio::test]
async fn fifty_concurrent_callers_share_one_token_refresh() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 1).await;
    let c = Arc::new(client(&server));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.access_token(APPID, &secret()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "TOKEN-1");
    }
}

#[tokio::test]
async fn a_refused_token_is_refreshed_and_the_call_retried_once() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 2).await;
    Mock::given(path("/wxa/business/getuserphonenumber"))
        .and(query_param("access_token", "TOKEN-1"))
        .respond_with(wx_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/wxa/business/getuserphonenumber"))
        .and(body_partial_json(json!({"code": "phone-code", "openid": "o-user"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errcode": 0, "errmsg": "ok",
            "phone_info": {"phoneNumber": "+1 5550100", "purePhoneNumber": "5550100", "countryCode": 1,
                           "watermark": {"timestamp": 1637744274, "appid": APPID}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = client(&server)
        .phone_number(APPID, &secret(), "phone-code", "o-user")
        .await
        .unwrap();
    assert_eq!(
        p.country_code, "1",
        "a numeric countryCode becomes a string"
    );
    assert_eq!(p.pure_phone_number, "5550100");
}

#[tokio::test]
async fn a_token_refused_twice_is_an_access_token_error() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 2).await;
    Mock::given(path("/wxa/business/getuserphonenumber"))
        .respond_with(wx_error(42001, "access_token expired"))
        .expect(2)
        .mount(&server)
        .await;
    let e = client(&server)
        .phone_number(APPID, &secret(), "c", "o-user")
        .await
        .unwrap_err();
    assert!(matches!(e, WechatError::AccessToken(_)), "{e:?}");
}

#[tokio::test]
async fn phone_numbers_check_the_watermark() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 1).await;
    Mock::given(path("/wxa/business/getuserphonenumber"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errcode": 0, "errmsg": "ok",
            "phone_info": {"phoneNumber": "138", "purePhoneNumber": "138", "countryCode": "86",
                           "watermark": {"timestamp": 1, "appid": "wxsomeoneelse"}}
        })))
        .mount(&server)
        .await;
    let e = client(&server)
        .phone_number(APPID, &secret(), "c", "o-user")
        .await
        .unwrap_err();
    assert!(matches!(e, WechatError::Malformed(_)), "{e:?}");
}

#[tokio::test]
async fn checksession_signs_with_the_session_key_text() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 1).await;
    // hex(HMAC-SHA256(key = "o0q0otL8aEzpcZL/FT9WsQ==", msg = "")), computed independently.
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"o0q0otL8aEzpcZL/FT9WsQ==");
    let sig = hex::encode(aws_lc_rs::hmac::sign(&key, b"").as_ref());
    Mock::given(path("/wxa/checksession"))
        .and(query_param("signature", sig.as_str()))
        .and(query_param("sig_method", "hmac_sha256"))
        .and(query_param("openid", "o1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"errcode": 0, "errmsg": "ok"})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/wxa/checksession"))
        .respond_with(wx_error(87009, "invalid signature"))
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(
        c.check_session(
            APPID,
            &secret(),
            "o1",
            &Secret::new("o0q0otL8aEzpcZL/FT9WsQ==")
        )
        .await
        .unwrap()
    );
    assert!(
        !c.check_session(APPID, &secret(), "o1", &Secret::new("stale"))
            .await
            .unwrap()
    );
}

/// The cluster's token table in memory, with the lease and version rules of the database's
/// conditional updates; `down` makes every call fail as a database that went away.
#[derive(Default)]
struct MemoryTokens {
    row: std::sync::Mutex<Option<Row>>,
    down: bool,
}

/// (token, version, refresh_at, expires_at, lease holder, lease until), as the table's columns.
type Row = (String, i64, i64, i64, usize, i64);

/// One node's view of [`MemoryTokens`] (each node leases under its own name).
struct Node(Arc<MemoryTokens>, usize);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[async_trait::async_trait]
impl iam_domain::ports::SharedAccessTokens for Node {
    async fn load(&self, _: &str) -> Result<Option<iam_domain::ports::SharedToken>, String> {
        if self.0.down {
            return Err("database down".into());
        }
        let row = self.0.row.lock().map_err(|e| e.to_string())?;
        Ok(row
            .as_ref()
            .filter(|r| !r.0.is_empty())
            .map(|r| iam_domain::ports::SharedToken {
                token: Secret::new(r.0.clone()),
                version: r.1,
                refresh_at: r.2,
                expires_at: r.3,
            }))
    }

    async fn lease(&self, _: &str, seen: i64, lease_ms: i64) -> Result<bool, String> {
        if self.0.down {
            return Err("database down".into());
        }
        let mut row = self.0.row.lock().map_err(|e| e.to_string())?;
        let r = row.get_or_insert((String::new(), 0, 0, 0, usize::MAX, 0));
        if r.1 == seen && r.5 < now_ms() {
            (r.4, r.5) = (self.1, now_ms() + lease_ms);
            return Ok(true);
        }
        Ok(false)
    }

    async fn store(
        &self,
        _: &str,
        token: &Secret,
        refresh_at: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, String> {
        let mut row = self.0.row.lock().map_err(|e| e.to_string())?;
        match row.as_mut().filter(|r| r.4 == self.1) {
            Some(r) => {
                *r = (
                    token.expose().to_owned(),
                    r.1 + 1,
                    refresh_at,
                    expires_at,
                    usize::MAX,
                    0,
                );
                Ok(Some(r.1))
            }
            None => Ok(None),
        }
    }

    async fn release(&self, _: &str) -> Result<(), String> {
        let mut row = self.0.row.lock().map_err(|e| e.to_string())?;
        if let Some(r) = row.as_mut().filter(|r| r.4 == self.1) {
            (r.4, r.5) = (usize::MAX, 0);
        }
        Ok(())
    }

    async fn expire(&self, _: &str, version: i64) -> Result<bool, String> {
        let mut row = self.0.row.lock().map_err(|e| e.to_string())?;
        match row.as_mut().filter(|r| r.1 == version && r.3 != 0) {
            Some(r) => {
                (r.2, r.3) = (0, 0);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[tokio::test]
async fn nodes_sharing_tokens_make_one_stable_token_call() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 1).await;
    let shared = Arc::new(MemoryTokens::default());
    let nodes: Vec<_> = (0..3)
        .map(|n| Arc::new(client(&server).with_shared_tokens(Arc::new(Node(shared.clone(), n)))))
        .collect();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let c = nodes[i % 3].clone();
            tokio::spawn(async move { c.access_token(APPID, &secret()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "TOKEN-1");
    }
}

#[tokio::test]
async fn a_database_that_is_down_never_stops_a_wechat_call() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 1).await;
    let down = Arc::new(MemoryTokens {
        down: true,
        ..Default::default()
    });
    let c = client(&server).with_shared_tokens(Arc::new(Node(down, 0)));
    assert_eq!(c.access_token(APPID, &secret()).await.unwrap(), "TOKEN-1");
}

/// A stored token this node cannot open (another sealing key): it comes back as due, at its
/// real version, so this node can take the lease at once.
struct Foreign;

#[async_trait::async_trait]
impl iam_domain::ports::SharedAccessTokens for Foreign {
    async fn load(&self, _: &str) -> Result<Option<iam_domain::ports::SharedToken>, String> {
        Ok(Some(iam_domain::ports::SharedToken {
            token: Secret::new(String::new()),
            version: 3,
            refresh_at: 0,
            expires_at: 0,
        }))
    }

    async fn lease(&self, _: &str, seen: i64, _: i64) -> Result<bool, String> {
        Ok(seen == 3)
    }

    async fn store(&self, _: &str, _: &Secret, _: i64, _: i64) -> Result<Option<i64>, String> {
        Ok(Some(4))
    }

    async fn release(&self, _: &str) -> Result<(), String> {
        Ok(())
    }

    async fn expire(&self, _: &str, _: i64) -> Result<bool, String> {
        Ok(false)
    }
}

#[tokio::test]
async fn a_stored_token_that_does_not_open_is_replaced_at_once() {
    let server = MockServer::start().await;
    mount_stable_token(&server, 1).await;
    let c = client(&server).with_shared_tokens(Arc::new(Foreign));
    let started = std::time::Instant::now();
    assert_eq!(c.access_token(APPID, &secret()).await.unwrap(), "TOKEN-1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for a lease"
    );
}
