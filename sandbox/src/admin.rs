//! The sandbox's own control endpoints under `/_sandbox/` (no authentication: loopback test
//! tool): the SMS inbox, counters, fault settings and a full reset.

use crate::faults::{FaultSettings, Faults};
use crate::lock::lock;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Query of `GET /_sandbox/sms`.
#[derive(Debug, Deserialize)]
pub struct SmsQuery {
    /// `<CountryCode><PhoneNum>`.
    #[serde(default)]
    pub phone: String,
}

/// `GET /_sandbox/sms?phone=...`: every code texted to the phone and the latest one.
pub async fn sms(State(st): State<Arc<AppState>>, Query(q): Query<SmsQuery>) -> Json<Value> {
    // A "+" in a query string arrives as a space; phones are digits, so drop both.
    let phone = q.phone.trim().trim_start_matches('+').to_string();
    let codes = lock(&st.store)
        .phones
        .get(&phone)
        .map(|p| p.inbox.clone())
        .unwrap_or_default();
    Json(json!({ "phone": phone, "latest": codes.last(), "codes": codes }))
}

/// `GET /_sandbox/created`: when each key was first created (Unix ms), per kind of thing.
pub async fn created(State(st): State<Arc<AppState>>) -> Json<Value> {
    let snapshot = lock(&st.stats).first_created_ms.clone();
    Json(serde_json::to_value(snapshot).unwrap_or(Value::Null))
}

/// `GET /_sandbox/stats`.
pub async fn stats(State(st): State<Arc<AppState>>) -> Json<Value> {
    let snapshot = lock(&st.stats).clone();
    Json(serde_json::to_value(snapshot).unwrap_or(Value::Null))
}

/// `POST /_sandbox/faults`: replaces the fault settings, answers the new ones.
pub async fn faults(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let settings = if body.iter().all(u8::is_ascii_whitespace) {
        FaultSettings::default()
    } else {
        match serde_json::from_slice::<FaultSettings>(&body) {
            Ok(s) => s,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": e.to_string() })),
                )
                    .into_response()
            }
        }
    };
    for (name, rate) in [
        ("error_rate", settings.error_rate),
        ("timeout_rate", settings.timeout_rate),
        ("throttle_rate", settings.throttle_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("{name} must be between 0 and 1") })),
            )
                .into_response();
        }
    }
    tracing::info!(?settings, "fault settings replaced");
    *lock(&st.faults) = Faults::new(settings.clone());
    Json(settings).into_response()
}

/// `POST /_sandbox/reset`: clears all state, counters and faults.
pub async fn reset(State(st): State<Arc<AppState>>) -> Json<Value> {
    st.reset();
    tracing::info!("state reset");
    Json(json!({ "reset": true }))
}

/// `GET /_sandbox/faults`: the current settings.
pub async fn current_faults(State(st): State<Arc<AppState>>) -> Json<FaultSettings> {
    Json(lock(&st.faults).settings().clone())
}

/// `GET /_sandbox/data`: what was created (customers with their bindings, accounts, POLYV
/// users), for assertions. Passwords are never stored; POLYV users' own secrets are left out.
pub async fn data(State(st): State<Arc<AppState>>) -> Json<Value> {
    let store = lock(&st.store);
    let customers: Vec<Value> = store
        .customers
        .values()
        .map(|c| {
            let devices: Vec<Value> = store
                .bindings
                .get(&c.customer_id)
                .map(|b| {
                    b.values()
                        .map(|d| {
                            json!({
                                "CustomerDeviceNo": d.customer_device_no,
                                "DeviceId": d.device_id,
                                "ProductName": d.product_name,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "CustomerId": c.customer_id,
                "CountryCode": c.country_code,
                "PhoneNumber": c.phone_number,
                "Devices": devices,
            })
        })
        .collect();
    let mut accounts: Vec<Value> = store
        .accounts
        .values()
        .map(|a| json!({ "Mail": a.mail, "Uin": a.uin, "Phone": a.phone }))
        .collect();
    accounts.sort_by(|a, b| a["Mail"].as_str().cmp(&b["Mail"].as_str()));
    let mut users: Vec<Value> = store
        .polyv_users
        .values()
        .map(|u| json!({ "email": u.email, "mobile": u.mobile, "appId": u.app_id, "userId": u.user_id, "name": u.name }))
        .collect();
    users.sort_by(|a, b| a["email"].as_str().cmp(&b["email"].as_str()));
    Json(json!({ "customers": customers, "accounts": accounts, "polyv_users": users }))
}
