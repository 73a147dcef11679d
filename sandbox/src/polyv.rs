//! POLYV live API v2: `POST /live/v2/app/add-custom-user` and
//! `GET /live/v2/app/get-custom-user`.
//!
//! Parameters come from the query string and, for POST, also from a form body. The sign is
//! `UPPERCASE(hex(MD5(appSecret + k1v1k2v2... + appSecret)))` over the sorted non-empty
//! parameters other than `sign`.

use crate::faults::{self, Injected};
use crate::iot::constant_eq;
use crate::lock::lock;
use crate::state::{now_millis, AppState, PolyvUser, ALNUM, DIGITS, HEX};
use crate::stats::CreateKind;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How far `timestamp` may be from the server clock.
const MAX_SKEW_MS: i64 = 3 * 60 * 1000;

/// The string that is hashed: `secret + k1v1k2v2... + secret` over the non-empty
/// parameters other than `sign`, sorted by name bytes.
pub fn string_to_sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    // BTreeMap<String, _> iterates in byte order of the names already.
    let body: String = params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}{v}"))
        .collect();
    format!("{secret}{body}{secret}")
}

/// The uppercase hex MD5 sign of `params`.
pub fn sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    hex::encode_upper(Md5::digest(string_to_sign(params, secret).as_bytes()))
}

/// Whether `params["sign"]` is right (case-insensitive hex).
pub fn verify(params: &BTreeMap<String, String>, secret: &str) -> bool {
    params.get("sign").is_some_and(|given| {
        constant_eq(
            sign(params, secret).as_bytes(),
            given.to_ascii_uppercase().as_bytes(),
        )
    })
}

/// A POLYV answer: the HTTP status equals the body's `code`.
fn reply(code: u16, message: &str, data: Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "code": code,
        "status": if code == 200 { "success" } else { "error" },
        "message": message,
        "data": data,
    });
    (status, Json(body)).into_response()
}

fn error(code: u16, message: &str) -> Response {
    reply(code, message, Value::String(String::new()))
}

/// The sandbox's per-second limit clears within a second, and says so the HTTP way.
fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::RETRY_AFTER, "1")],
        Json(json!({"code": 429, "status": "error", "message": "too many requests."})),
    )
        .into_response()
}

/// Query-string parameters merged with form-body ones (the body wins on a clash).
fn collect_params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if is_form && !body.is_empty() {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    params
}

/// The handler of `POST /live/v2/app/add-custom-user`.
pub async fn add_custom_user(
    State(st): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = collect_params(&uri, &headers, &body);
    serve(&st, "add-custom-user", params).await
}

/// The handler of `GET /live/v2/app/get-custom-user`.
pub async fn get_custom_user(
    State(st): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = collect_params(&uri, &headers, &[]);
    serve(&st, "get-custom-user", params).await
}

type Outcome2 = Result<Value, (u16, &'static str)>;

async fn serve(st: &AppState, action: &str, params: BTreeMap<String, String>) -> Response {
    let log = |code: u16| tracing::info!(provider = "polyv", action, code, "answered");
    if !st.arrive(action, "polyv", st.limits.polyv) {
        log(429);
        return throttled();
    }
    if let Err((code, message)) = authenticate(st, &params) {
        if code == 403 {
            lock(&st.stats).signature_failure(action);
        }
        log(code);
        return error(code, message);
    }
    let result: Outcome2 = faults::serve(
        st,
        action,
        || {
            if action == "add-custom-user" {
                add_user(st, &params)
            } else {
                find_user(st, &params)
            }
        },
        |fault| {
            Err(match fault {
                Injected::Error => (500, "server error"),
                Injected::Throttle => (429, "too many requests."),
            })
        },
    )
    .await;
    if let Err((429, _)) = result {
        log(429);
        return throttled();
    }
    match result {
        Ok(data) => {
            log(200);
            reply(200, "", data)
        }
        Err((code, message)) => {
            log(code);
            error(code, message)
        }
    }
}

fn authenticate(
    st: &AppState,
    params: &BTreeMap<String, String>,
) -> Result<(), (u16, &'static str)> {
    let app_id = params
        .get("appId")
        .filter(|v| !v.is_empty())
        .ok_or((400, "appId is required."))?;
    if *app_id != st.creds.polyv_app_id {
        return Err((400, "application not found."));
    }
    let fresh = params
        .get("timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| (now_millis() - t).abs() <= MAX_SKEW_MS);
    if !fresh {
        return Err((400, "invalid timestamp."));
    }
    if !verify(params, &st.creds.polyv_app_secret) {
        return Err((403, "invalid signature."));
    }
    Ok(())
}

fn user_data(u: &PolyvUser) -> Value {
    json!({
        "appId": u.app_id,
        "name": u.name,
        "appSecret": u.app_secret,
        "userId": u.user_id,
    })
}

fn non_empty<'a>(params: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn valid_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.contains('@')
            && !email.contains(char::is_whitespace)
    })
}

fn add_user(st: &AppState, params: &BTreeMap<String, String>) -> Outcome2 {
    const INVALID: (u16, &str) = (400, "param validate error");
    let email = non_empty(params, "email")
        .filter(|e| valid_email(e))
        .ok_or(INVALID)?;
    let mobile = non_empty(params, "mobile")
        .filter(|m| (5..=20).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(INVALID)?;
    let passwd = non_empty(params, "passwd").ok_or(INVALID)?;
    if !(5..=16).contains(&passwd.chars().count()) {
        return Err(INVALID);
    }
    if let Some(sale_id) = non_empty(params, "saleId") {
        sale_id.parse::<i64>().map_err(|_| INVALID)?;
    }
    let name = non_empty(params, "name").unwrap_or(email).to_string();
    let user = PolyvUser {
        created: std::time::Instant::now(),
        app_id: st.random_string(ALNUM, 10),
        name,
        app_secret: st.random_string(HEX, 32),
        user_id: st.random_string(DIGITS, 8),
        email: email.to_string(),
        mobile: mobile.to_string(),
    };
    {
        let mut store = lock(&st.store);
        if store.polyv_users.contains_key(email) {
            return Err((400, "email already registered."));
        }
        store.polyv_users.insert(email.to_string(), user.clone());
    }
    lock(&st.stats).created(CreateKind::PolyvUser, email);
    Ok(user_data(&user))
}

fn find_user(st: &AppState, params: &BTreeMap<String, String>) -> Outcome2 {
    let email = non_empty(params, "email").ok_or((400, "param validate error"))?;
    let lag = lock(&st.faults).lookup_lag();
    lock(&st.store)
        .polyv_users
        .get(email)
        .filter(|u| u.created.elapsed() >= lag)
        .map(user_data)
        .ok_or((400, "user not found."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_vector() {
        let secret = "fsq2k5weced1h8vui657xtdva66whf0g";
        let mut params: BTreeMap<String, String> = [
            ("appId", "g4rqgmmjuo"),
            ("timestamp", "1660270926732"),
            ("channelIds", "2477096,2272655"),
            ("startDay", "2022-05-20"),
            ("endDay", "2022-06-18"),
            ("page", ""),
            ("size", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            string_to_sign(&params, secret),
            format!("{secret}appIdg4rqgmmjuochannelIds2477096,2272655endDay2022-06-18startDay2022-05-20timestamp1660270926732{secret}")
        );
        params.insert("sign".into(), "0D2BDA2FD04D93A2B8832B91FD973C4D".into());
        assert!(verify(&params, secret));
        assert!(!verify(&params, "wrong"));
    }
}
