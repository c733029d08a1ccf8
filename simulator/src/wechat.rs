//! The WeChat side: the APIs of api.weixin.qq.com that sign-in and its neighbours use, with
//! WeChat's parameter order, errcodes, message texts, rid suffix and content types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Response, handler};
use serde::Deserialize;

use crate::state::{CODE_LIFETIME_SECS, Sim, TOKEN_LIFETIME_SECS, TOKEN_OVERLAP_SECS, errmsg};

const JSON: &str = "application/json; charset=utf-8";

type Params = Query<HashMap<String, String>>;

fn respond(content_type: &str, text: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type(content_type)
        .body(text)
}

/// `{"errcode":N,"errmsg":"<msg>, rid: …"}` with HTTP 200, as WeChat answers business errors.
fn wx_error(sim: &Sim, api: &str, errcode: i64, content_type: &str) -> Response {
    sim.count_errcode(api, errcode);
    let text = serde_json::json!({
        "errcode": errcode,
        "errmsg": format!("{}, rid: {}", errmsg(errcode), sim.rid()),
    });
    respond(content_type, text.to_string())
}

/// Applies an armed fault: waits out its latency, then answers with its status, garbage or
/// errcode. `None` means "carry on normally" (possibly after the delay).
async fn fault(sim: &Sim, api: &str, content_type: &str) -> Option<Response> {
    let hit = sim.take_fault(api)?;
    if let Some(ms) = hit.latency_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = hit.http_status {
        sim.count_errcode(api, -(i64::from(status)));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return Some(
            Response::builder()
                .status(status)
                .content_type("text/html")
                .body(format!("<html><body><h1>{status}</h1></body></html>")),
        );
    }
    if hit.malformed {
        sim.count_errcode(api, -1000);
        return Some(respond(
            content_type,
            "{\"errcode\":0,\"session_key\":\"".into(),
        ));
    }
    hit.errcode.map(|e| wx_error(sim, api, e, content_type))
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// The checks every AppSecret API makes, in WeChat's order.
fn check_app(
    sim: &Sim,
    appid: Option<&str>,
    secret: Option<&str>,
    extra: Option<i64>,
) -> Result<String, i64> {
    let appid = appid.ok_or(41002)?;
    let secret = secret.ok_or(41004)?;
    if let Some(e) = extra {
        return Err(e);
    }
    let app = sim.apps.get(appid).ok_or(40013)?;
    if app.secret != secret {
        return Err(40125);
    }
    Ok(appid.to_owned())
}

/// `GET /sns/jscode2session`.
#[handler]
pub async fn jscode2session(sim: Data<&Arc<Sim>>, Query(q): Params) -> Response {
    const API: &str = "jscode2session";
    let ct = sim.jscode2session_content_type.clone();
    sim.count_call(API);
    if let Some(r) = fault(&sim, API, &ct).await {
        return r;
    }
    let code_missing = param(&q, "js_code").is_none();
    let grant_wrong = q
        .get("grant_type")
        .is_some_and(|g| g != "authorization_code");
    let extra = if code_missing {
        Some(41008)
    } else if grant_wrong {
        Some(40002)
    } else {
        None
    };
    let appid = match check_app(&sim, param(&q, "appid"), param(&q, "secret"), extra) {
        Ok(a) => a,
        Err(e) => return wx_error(&sim, API, e, &ct),
    };
    let js_code = param(&q, "js_code").unwrap_or_default();
    let now = sim.now();
    // Checked and marked used under the code's lock: of two concurrent exchanges, one wins.
    let user = {
        let Some(mut code) = sim.codes.get_mut(js_code) else {
            return wx_error(&sim, API, 40029, &ct);
        };
        if code.appid != appid || now - code.minted_at > CODE_LIFETIME_SECS {
            return wx_error(&sim, API, 40029, &ct);
        }
        if code.used {
            return wx_error(&sim, API, 40163, &ct);
        }
        code.used = true;
        code.user.clone()
    };
    if sim.risky.contains_key(&(appid.clone(), user.clone())) {
        return wx_error(&sim, API, 40226, &ct);
    }
    let Some(session_key) = sim.session_key(&appid, &user) else {
        return wx_error(&sim, API, -1, &ct);
    };
    let openid = sim.openid(&appid, &user);
    sim.count_errcode(API, 0);
    // Field order as WeChat sends it: session_key first; no errcode on success.
    let text = match sim.unionid(&appid, &user) {
        Some(u) => format!(
            "{{\"session_key\":\"{session_key}\",\"openid\":\"{openid}\",\"unionid\":\"{u}\"}}"
        ),
        None => format!("{{\"session_key\":\"{session_key}\",\"openid\":\"{openid}\"}}"),
    };
    respond(&ct, text)
}

/// `GET /cgi-bin/token`: a new token every call; the previous one stays valid for 5 minutes.
#[handler]
pub async fn token(sim: Data<&Arc<Sim>>, Query(q): Params) -> Response {
    const API: &str = "token";
    sim.count_call(API);
    if let Some(r) = fault(&sim, API, JSON).await {
        return r;
    }
    let grant_wrong = q.get("grant_type").map(String::as_str) != Some("client_credential");
    let appid = match check_app(
        &sim,
        param(&q, "appid"),
        param(&q, "secret"),
        grant_wrong.then_some(40002),
    ) {
        Ok(a) => a,
        Err(e) => return wx_error(&sim, API, e, JSON),
    };
    let new = sim.issue_token(&appid, TOKEN_LIFETIME_SECS);
    if let Some(old) = sim.latest_token.insert(appid, new.clone())
        && let Some(mut t) = sim.tokens.get_mut(&old)
    {
        t.expires_at = t.expires_at.min(sim.now() + TOKEN_OVERLAP_SECS);
        t.superseded = true;
    }
    sim.count_errcode(API, 0);
    respond(
        JSON,
        serde_json::json!({"access_token": new, "expires_in": TOKEN_LIFETIME_SECS}).to_string(),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StableTokenBody {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    force_refresh: Option<bool>,
}

/// `POST /cgi-bin/stable_token`: the same token until it nears expiry or `force_refresh`.
#[handler]
pub async fn stable_token(sim: Data<&Arc<Sim>>, raw: Body) -> Response {
    const API: &str = "stable_token";
    sim.count_call(API);
    if let Some(r) = fault(&sim, API, JSON).await {
        return r;
    }
    let Ok(bytes) = raw.into_bytes().await else {
        return wx_error(&sim, API, 47001, JSON);
    };
    let Ok(b) = serde_json::from_slice::<StableTokenBody>(&bytes) else {
        return wx_error(&sim, API, 47001, JSON);
    };
    let grant_wrong = b.grant_type.as_deref() != Some("client_credential");
    let appid = match check_app(
        &sim,
        b.appid.as_deref().filter(|s| !s.is_empty()),
        b.secret.as_deref().filter(|s| !s.is_empty()),
        grant_wrong.then_some(40002),
    ) {
        Ok(a) => a,
        Err(e) => return wx_error(&sim, API, e, JSON),
    };
    let now = sim.now();
    let current = sim
        .stable_token
        .get(&appid)
        .map(|t| t.clone())
        .and_then(|t| sim.tokens.get(&t).map(|info| (t, info.expires_at)));
    let (current_token, expires_at) = match current {
        Some((t, exp)) if !b.force_refresh.unwrap_or(false) && exp - now > TOKEN_OVERLAP_SECS => {
            (t, exp)
        }
        other => {
            if b.force_refresh.unwrap_or(false)
                && let Some((old, _)) = other
            {
                sim.tokens.remove(&old);
            }
            let t = sim.issue_token(&appid, TOKEN_LIFETIME_SECS);
            sim.stable_token.insert(appid, t.clone());
            (t, now + TOKEN_LIFETIME_SECS)
        }
    };
    sim.count_errcode(API, 0);
    respond(
        JSON,
        serde_json::json!({"access_token": current_token, "expires_in": expires_at - now})
            .to_string(),
    )
}

/// The access-token checks of business APIs: 41001 missing, 40001 unknown or not latest,
/// 42001 expired.
fn check_token(sim: &Sim, q: &HashMap<String, String>) -> Result<String, i64> {
    let access_token = param(q, "access_token").ok_or(41001)?;
    let t = sim.tokens.get(access_token).ok_or(40001)?;
    if sim.now() >= t.expires_at {
        return Err(if t.superseded { 40001 } else { 42001 });
    }
    Ok(t.appid.clone())
}

/// `POST /wxa/business/getuserphonenumber?access_token=…` with `{"code": …}`.
#[handler]
pub async fn getuserphonenumber(sim: Data<&Arc<Sim>>, Query(q): Params, raw: Body) -> Response {
    const API: &str = "getuserphonenumber";
    sim.count_call(API);
    if let Some(r) = fault(&sim, API, JSON).await {
        return r;
    }
    let appid = match check_token(&sim, &q) {
        Ok(a) => a,
        Err(e) => return wx_error(&sim, API, e, JSON),
    };
    let bytes = raw.into_bytes().await.unwrap_or_default();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return wx_error(&sim, API, 47001, JSON);
    };
    let Some(code) = v.get("code").and_then(|c| c.as_str()) else {
        return wx_error(&sim, API, 40029, JSON);
    };
    let openid = v.get("openid").and_then(|o| o.as_str()).unwrap_or_default();
    let now = sim.now();
    // A phone code belongs to the user who pressed the button: with anyone else's openid, or
    // none, it is refused (and spent, as WeChat spends a code on its first use).
    let (phone, country) = {
        let Some(mut c) = sim.phone_codes.get_mut(code) else {
            return wx_error(&sim, API, 40029, JSON);
        };
        if c.appid != appid || c.used || now - c.minted_at > CODE_LIFETIME_SECS {
            return wx_error(&sim, API, 40029, JSON);
        }
        c.used = true;
        if openid != sim.openid(&appid, &c.user) {
            return wx_error(&sim, API, 40029, JSON);
        }
        (c.phone.clone(), c.country_code.clone())
    };
    let full = if country == "86" {
        phone.clone()
    } else {
        format!("+{country}{phone}")
    };
    sim.count_errcode(API, 0);
    respond(
        JSON,
        serde_json::json!({
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": full,
                "purePhoneNumber": phone,
                "countryCode": country,
                "watermark": {"timestamp": now, "appid": appid}
            }
        })
        .to_string(),
    )
}

/// The checks `checksession` and `resetusersessionkey` share: the access token, `sig_method`,
/// and `signature` = hex(HMAC-SHA256(key = the user's current session key text, msg = "")).
/// Returns (appid, openid, user).
fn check_signature(
    sim: &Sim,
    q: &HashMap<String, String>,
) -> Result<(String, String, String), i64> {
    let appid = check_token(sim, q)?;
    if q.get("sig_method").map(String::as_str) != Some("hmac_sha256") {
        return Err(87008);
    }
    let openid = param(q, "openid").unwrap_or_default().to_owned();
    let signature = param(q, "signature").unwrap_or_default();
    let user = sim
        .openid_users
        .get(&(appid.clone(), openid.clone()))
        .map(|u| u.clone());
    let key = user.as_ref().and_then(|u| sim.session_key(&appid, u));
    match (user, key, hex::decode(signature)) {
        (Some(u), Some(k), Ok(sig))
            if hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, k.as_bytes()), b"", &sig)
                .is_ok() =>
        {
            Ok((appid, openid, u))
        }
        _ => Err(87009),
    }
}

/// `GET /wxa/checksession`: is the signed key the user's current one?
#[handler]
pub async fn checksession(sim: Data<&Arc<Sim>>, Query(q): Params) -> Response {
    const API: &str = "checksession";
    sim.count_call(API);
    if let Some(r) = fault(&sim, API, JSON).await {
        return r;
    }
    if let Err(e) = check_signature(&sim, &q) {
        return wx_error(&sim, API, e, JSON);
    }
    sim.count_errcode(API, 0);
    respond(JSON, r#"{"errcode":0,"errmsg":"ok"}"#.into())
}

/// `GET /wxa/resetusersessionkey`: signed with the current key, answers a new one; the old
/// key stops working at once.
#[handler]
pub async fn resetusersessionkey(sim: Data<&Arc<Sim>>, Query(q): Params) -> Response {
    const API: &str = "resetusersessionkey";
    sim.count_call(API);
    if let Some(r) = fault(&sim, API, JSON).await {
        return r;
    }
    let (appid, openid, user) = match check_signature(&sim, &q) {
        Ok(v) => v,
        Err(e) => return wx_error(&sim, API, e, JSON),
    };
    let key = sim.reset_session_key(&appid, &user);
    sim.count_errcode(API, 0);
    respond(
        JSON,
        serde_json::json!({"errcode": 0, "errmsg": "ok", "openid": openid, "session_key": key})
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::hmac;

    /// The documented vector (reference §4.1): the key is the session key's base64 text.
    #[test]
    fn hmac_vector() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"o0q0otL8aEzpcZL/FT9WsQ==");
        let tag = hmac::sign(&key, br#"{"foo":"bar"}"#);
        assert_eq!(
            hex::encode(tag.as_ref()),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
    }
}
