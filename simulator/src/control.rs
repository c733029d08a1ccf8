//! The control side (not WeChat's): what the phone does (`wx.login()`, the phone-number button),
//! and what tests need (apps, faults, risky users, the clock, stats). JSON in and out.

// Early returns carry the finished HTTP answer; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json, Query};
use poem::{Body, IntoResponse, Response, handler};
use serde::Deserialize;
use serde_json::json;

use crate::state::{Fault, Sim, random_phone_code};

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

/// Parses a JSON body, answering 400 with the reason when it does not fit.
async fn parse<T: for<'de> Deserialize<'de>>(body: Body) -> Result<T, Response> {
    let bytes = body
        .into_bytes()
        .await
        .map_err(|e| bad_request(format!("cannot read body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("bad JSON body: {e}")))
}

#[derive(Deserialize)]
struct AppUser {
    appid: String,
    user: String,
}

fn known_app(sim: &Sim, appid: &str) -> Result<(), Response> {
    if sim.apps.contains_key(appid) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "unknown appid {appid:?}: register it with --app or POST /sim/apps"
        )))
    }
}

/// `POST /sim/login {"appid","user"}` → `{"code","openid","unionid"?}`.
#[handler]
pub async fn login(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: AppUser = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = known_app(&sim, &b.appid) {
        return r;
    }
    if b.user.is_empty() {
        return bad_request("user is required");
    }
    let code = sim.login(&b.appid, &b.user);
    let mut out = json!({"code": code, "openid": sim.openid(&b.appid, &b.user)});
    if let Some(u) = sim.unionid(&b.appid, &b.user) {
        out["unionid"] = json!(u);
    }
    Json(out).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneCodeBody {
    appid: String,
    user: String,
    phone: String,
    country_code: Option<String>,
}

/// `POST /sim/phone-code {"appid","user","phone","countryCode"?}` → `{"code"}`.
#[handler]
pub async fn phone_code(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: PhoneCodeBody = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = known_app(&sim, &b.appid) {
        return r;
    }
    if b.phone.is_empty() || !b.phone.bytes().all(|c| c.is_ascii_digit()) {
        return bad_request("phone must be digits");
    }
    if b.user.is_empty() {
        return bad_request("user is required");
    }
    let code = random_phone_code();
    sim.phone_codes.insert(
        code.clone(),
        crate::state::PhoneCode {
            user: b.user,
            appid: b.appid,
            phone: b.phone,
            country_code: b.country_code.unwrap_or_else(|| "86".into()),
            minted_at: sim.now(),
            used: false,
        },
    );
    Json(json!({"code": code})).into_response()
}

#[derive(Deserialize)]
struct EncryptBody {
    appid: String,
    user: String,
    /// Any JSON object: WeChat's watermark is added to it.
    data: serde_json::Value,
}

/// `POST /sim/encrypted-data {"appid","user","data"}` → `{"encryptedData","iv"}`: what the
/// phone hands the mini program (the phone button's legacy fields, WeRun, share info): `data`
/// with WeChat's watermark, AES-128-CBC under the user's current session key, random iv.
#[handler]
pub async fn encrypted_data(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: EncryptBody = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = known_app(&sim, &b.appid) {
        return r;
    }
    let serde_json::Value::Object(mut data) = b.data else {
        return bad_request("data must be a JSON object");
    };
    let Some(key) = sim.session_key(&b.appid, &b.user) else {
        return bad_request("the user has no session key yet: POST /sim/login first");
    };
    data.insert(
        "watermark".into(),
        json!({"timestamp": sim.now(), "appid": b.appid}),
    );
    match crate::state::encrypt(&key, serde_json::Value::Object(data).to_string().as_bytes()) {
        Ok((encrypted, iv)) => Json(json!({"encryptedData": encrypted, "iv": iv})).into_response(),
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionKeyBody {
    appid: String,
    user: String,
    session_key: String,
}

/// `POST /sim/session-key {"appid","user","sessionKey"}`: sets the user's current session key
/// (base64 of 16 bytes), so a test can replay WeChat's published vectors end to end. It counts
/// as a fresh rotation: the next `/sim/login` keeps it for `--session-key-min-age-secs`.
#[handler]
pub async fn set_session_key(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: SessionKeyBody = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = known_app(&sim, &b.appid) {
        return r;
    }
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(&b.session_key);
    if decoded.map(|k| k.len()) != Ok(16) {
        return bad_request("sessionKey must be base64 of 16 bytes");
    }
    sim.set_session_key(&b.appid, &b.user, &b.session_key);
    Json(json!({"openid": sim.openid(&b.appid, &b.user)})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppBody {
    appid: String,
    secret: String,
    open_platform_id: Option<String>,
}

/// `POST /sim/apps {"appid","secret","openPlatformId"?}`.
#[handler]
pub async fn add_app(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: AppBody = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.appid.is_empty() || b.secret.is_empty() {
        return bad_request("appid and secret are required");
    }
    sim.add_app(
        &b.appid,
        &b.secret,
        b.open_platform_id.filter(|p| !p.is_empty()),
    );
    Json(json!({"appid": b.appid})).into_response()
}

/// `POST /sim/faults {...}` arms a fault; `DELETE /sim/faults` clears them all.
#[handler]
pub async fn add_fault(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let mut f: Fault = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Accept the path as well as the short name: "/sns/jscode2session" → "jscode2session".
    f.api = f
        .api
        .map(|a| a.rsplit('/').next().unwrap_or_default().to_owned())
        .filter(|a| !a.is_empty());
    if f.errcode.is_none()
        && f.latency_ms.is_none()
        && f.http_status.is_none()
        && f.malformed != Some(true)
    {
        return bad_request("a fault needs errcode, latencyMs, httpStatus or malformed");
    }
    if let Some(s) = f.http_status
        && StatusCode::from_u16(s).is_err()
    {
        return bad_request(format!("httpStatus {s} is not an HTTP status"));
    }
    let out = json!(f);
    match sim.faults.lock() {
        Ok(mut faults) => faults.push(f),
        Err(_) => return bad_request("fault list unavailable"),
    }
    Json(out).into_response()
}

#[handler]
pub async fn clear_faults(sim: Data<&Arc<Sim>>) -> Response {
    if let Ok(mut faults) = sim.faults.lock() {
        faults.clear();
    }
    Json(json!({"cleared": true})).into_response()
}

/// `POST /sim/risky {"appid","user"}`: WeChat's risk control blocks this user (40226).
#[handler]
pub async fn risky(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: AppUser = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    sim.risky.insert((b.appid, b.user), ());
    Json(json!({"risky": true})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockBody {
    advance_secs: i64,
}

/// `POST /sim/clock {"advanceSecs"}` moves the simulator's clock forward.
#[handler]
pub async fn clock(sim: Data<&Arc<Sim>>, body: Body) -> Response {
    let b: ClockBody = match parse(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.advance_secs < 0 {
        return bad_request("advanceSecs must not be negative");
    }
    sim.advance(b.advance_secs);
    Json(json!({"now": sim.now()})).into_response()
}

/// `GET /sim/stats` → calls per API and per errcode (0 = success).
#[handler]
pub async fn stats(sim: Data<&Arc<Sim>>) -> Response {
    Json(sim.stats()).into_response()
}

#[derive(Deserialize)]
struct UserQuery {
    appid: String,
    user: String,
}

/// `GET /sim/user?appid=&user=` → what WeChat knows of a user, session key included, so tests
/// can check that the server never lets it out.
#[handler]
pub async fn user(sim: Data<&Arc<Sim>>, Query(q): Query<UserQuery>) -> Response {
    Json(json!({
        "openid": sim.openid(&q.appid, &q.user),
        "unionid": sim.unionid(&q.appid, &q.user),
        "sessionKey": sim.session_key(&q.appid, &q.user),
    }))
    .into_response()
}
