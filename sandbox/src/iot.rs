//! Tencent IoT Explorer SaaS service API: `POST /api/exploreropen/serviceapi`.
//!
//! All parameters, the common ones included, are members of the JSON body. The signature is
//! HMAC-SHA1 (Base64) over the sorted `name=value` string; nested values are accepted in
//! either encoding the project may use (`flatten` with dotted indices, or compact `json`).

use crate::envelope::{err, ok, ApiError};
use crate::faults::{serve, Injected};
use crate::lock::lock;
use crate::state::{AppState, Binding, Customer};
use crate::stats::{CreateKind, ACTIONS};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha1::Sha1;
use std::sync::Arc;

/// The actions this provider serves.
const IOT_ACTIONS: &[&str] = &[
    "ServiceCreateCustomer",
    "ServiceGetCustomerList",
    "ServiceBindDevice",
];

/// How nested values (arrays, objects) enter the string to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nested {
    /// Dotted indices: `DeviceInfos.0.DeviceId=...`.
    Flatten,
    /// The value as compact JSON text.
    Json,
}

/// The string to sign: every parameter but `Signature`, empty strings and nulls left out,
/// `_` in names replaced by `.`, sorted by name bytes, joined as `name=value&...`.
pub fn string_to_sign(params: &Map<String, Value>, nested: Nested) -> String {
    let mut pairs = Vec::new();
    for (name, value) in params {
        if name != "Signature" {
            collect(name, value, nested, &mut pairs);
        }
    }
    for (name, _) in pairs.iter_mut() {
        *name = name.replace('_', ".");
    }
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn collect(name: &str, value: &Value, nested: Nested, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push((name.to_string(), s.clone())),
        Value::Number(n) => out.push((name.to_string(), n.to_string())),
        Value::Bool(b) => out.push((name.to_string(), b.to_string())),
        Value::Array(_) | Value::Object(_) if nested == Nested::Json => {
            out.push((name.to_string(), value.to_string()))
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(&format!("{name}.{i}"), item, nested, out);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                collect(&format!("{name}.{key}"), item, nested, out);
            }
        }
    }
}

/// `Base64(HMAC-SHA1(secret, message))`.
pub fn sign(secret: &str, message: &str) -> String {
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length, so this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `params["Signature"]` matches under either nested-value encoding.
pub fn verify(params: &Map<String, Value>, secret: &str) -> bool {
    let Some(given) = params.get("Signature").and_then(Value::as_str) else {
        return false;
    };
    [Nested::Flatten, Nested::Json].iter().any(|&mode| {
        constant_eq(
            sign(secret, &string_to_sign(params, mode)).as_bytes(),
            given.as_bytes(),
        )
    })
}

/// Byte comparison whose time does not depend on where the inputs differ.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A parameter as text: strings as they are, numbers in decimal; empty or absent is `None`.
fn text(params: &Map<String, Value>, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required(params: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    text(params, name).ok_or_else(|| {
        ApiError::new(
            "ErrorRequiredParamNotFound",
            format!("missing required param: {name}"),
        )
    })
}

/// The handler of `POST /api/exploreropen/serviceapi`.
pub async fn handle(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            let rid = uuid::Uuid::new_v4().to_string();
            tracing::info!(
                provider = "iot",
                code = "InvalidParameterValue.InvalidJSON",
                "refused"
            );
            return err(
                &rid,
                &ApiError::new(
                    "InvalidParameterValue.InvalidJSON",
                    "body is not a JSON object",
                ),
            );
        }
    };
    let request_id = text(&params, "RequestId").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let action = text(&params, "Action").unwrap_or_default();
    let answer = |result: Result<Map<String, Value>, ApiError>| {
        match &result {
            Ok(_) => tracing::info!(provider = "iot", action = %action, "served"),
            Err(e) => tracing::info!(provider = "iot", action = %action, code = %e.code, "refused"),
        }
        match result {
            Ok(fields) => ok(&request_id, fields),
            Err(e) => err(&request_id, &e),
        }
    };

    for name in ["Action", "AppKey", "Signature", "Timestamp", "Nonce"] {
        if let Err(e) = required(&params, name) {
            return answer(Err(e));
        }
    }
    let known = IOT_ACTIONS.contains(&action.as_str()) && ACTIONS.contains(&action.as_str());
    if known && !st.arrive(&action, "iot", st.limits.iot) {
        return answer(Err(ApiError::new(
            "RequestLimitExceeded",
            "request limit exceeded",
        )));
    }
    if text(&params, "AppKey").as_deref() != Some(st.creds.iot_app_key.as_str()) {
        return answer(Err(ApiError::new(
            "invalid CustomerId or invalid ServiceAppKey",
            "CustomerId 或 ServiceAppKey 不存在",
        )));
    }
    if !verify(&params, &st.creds.iot_app_secret) {
        if known {
            lock(&st.stats).signature_failure(&action);
        }
        return answer(Err(ApiError::new(
            "InvalidParameterValue",
            "Signature 无效",
        )));
    }
    if !known {
        return answer(Err(ApiError::new(
            "InvalidAction",
            format!("unknown action: {action}"),
        )));
    }

    let result = serve(
        &st,
        &action,
        || perform(&st, &action, &params),
        |fault| {
            Err(match fault {
                Injected::Error => ApiError::new("InternalError", "internal error"),
                Injected::Throttle => {
                    ApiError::new("RequestLimitExceeded", "request limit exceeded")
                }
            })
        },
    )
    .await;
    answer(result)
}

fn perform(
    st: &AppState,
    action: &str,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    match action {
        "ServiceCreateCustomer" => create_customer(st, params),
        "ServiceGetCustomerList" => get_customer_list(st, params),
        "ServiceBindDevice" => bind_device(st, params),
        _ => Err(ApiError::new(
            "InvalidAction",
            format!("unknown action: {action}"),
        )),
    }
}

fn valid_customer_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn create_customer(
    st: &AppState,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let customer_id = required(params, "CustomerId")?;
    let country_code = required(params, "CountryCode")?;
    let phone_number = required(params, "PhoneNumber")?;
    if !valid_customer_id(&customer_id) {
        return Err(ApiError::new("invalid CustomerId", "CustomerId 格式错误"));
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&phone_number) || !digits(country_code.trim_start_matches('+')) {
        return Err(ApiError::new(
            "invalid Phone",
            "Phone 或者 CountryCode 格式错误",
        ));
    }
    {
        let mut store = lock(&st.store);
        if store.customers.contains_key(&customer_id) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                "customer already exists",
            ));
        }
        store.customers.insert(
            customer_id.clone(),
            Customer {
                created: std::time::Instant::now(),
                customer_id: customer_id.clone(),
                country_code,
                phone_number,
            },
        );
    }
    lock(&st.stats).created(CreateKind::Customer, &customer_id);
    Ok(status_ok())
}

fn status_ok() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Status".into(), Value::String("OK".into()));
    m
}

/// An optional integer parameter, given as a number or a decimal string.
fn int_param(params: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            ApiError::new(
                "InvalidParameterValue",
                format!("{name} must be a non-negative integer"),
            )
        }),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            ApiError::new(
                "InvalidParameterValue",
                format!("{name} must be a non-negative integer"),
            )
        }),
        Some(_) => Err(ApiError::new(
            "InvalidParameterValue",
            format!("{name} must be an integer"),
        )),
    }
}

fn get_customer_list(
    st: &AppState,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let offset = int_param(params, "Offset")?.unwrap_or(0) as usize;
    let limit = int_param(params, "Limit")?.unwrap_or(20).min(100) as usize;
    let id = text(params, "CustomerId");
    let cc = text(params, "CountryCode");
    let phone = text(params, "PhoneNumber");
    let lag = lock(&st.faults).lookup_lag();
    let store = lock(&st.store);
    let matching: Vec<&Customer> = store
        .customers
        .values()
        .filter(|c| c.created.elapsed() >= lag)
        .filter(|c| id.as_ref().is_none_or(|v| *v == c.customer_id))
        .filter(|c| cc.as_ref().is_none_or(|v| *v == c.country_code))
        .filter(|c| phone.as_ref().is_none_or(|v| *v == c.phone_number))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            json!({
                "CustomerId": c.customer_id,
                "CountryCode": c.country_code,
                "PhoneNumber": c.phone_number,
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("Customers".into(), Value::Array(page));
    m.insert("Total".into(), json!(matching.len()));
    Ok(m)
}

fn bind_device(st: &AppState, params: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let customer_id = required(params, "CustomerId")?;
    let infos = match params.get("DeviceInfos") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(ApiError::new(
                "ErrorRequiredParamNotFound",
                "missing required param: DeviceInfos",
            ))
        }
        Some(_) => {
            return Err(ApiError::new(
                "InvalidParameterValue",
                "DeviceInfos must be an array",
            ))
        }
    };
    let mut bindings = Vec::with_capacity(infos.len());
    for (i, info) in infos.iter().enumerate() {
        let Value::Object(obj) = info else {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("DeviceInfos.{i} must be an object"),
            ));
        };
        let field = |name: &str| {
            text(obj, name).ok_or_else(|| {
                ApiError::new(
                    "ErrorRequiredParamNotFound",
                    format!("missing required param: DeviceInfos.{i}.{name}"),
                )
            })
        };
        let binding = Binding {
            customer_device_no: field("CustomerDeviceNo")?,
            device_id: field("DeviceId")?,
            product_name: field("ProductName")?,
        };
        let valid_id = binding
            .device_id
            .split_once('/')
            .is_some_and(|(p, d)| !p.is_empty() && !d.is_empty() && !d.contains('/'));
        if !valid_id {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("DeviceInfos.{i}.DeviceId must be ProductId/DeviceName"),
            ));
        }
        bindings.push(binding);
    }
    let mut store = lock(&st.store);
    if !store.customers.contains_key(&customer_id) {
        return Err(ApiError::new(
            "invalid CustomerId or invalid ServiceAppKey",
            "CustomerId 或 ServiceAppKey 不存在",
        ));
    }
    let bound = store.bindings.entry(customer_id).or_default();
    for b in bindings {
        // Pushing the same relation again just overwrites it: harmless, as documented.
        bound.insert(b.device_id.clone(), b);
    }
    Ok(status_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn official_vector() {
        let mut params = map(json!({
            "Action": "ServiceDescribeDeviceData",
            "AppKey": "ServiceAppKey",
            "DeviceName": "Device001",
            "Nonce": 71087795,
            "ProductId": "ProductA",
            "RequestId": "476c990a-f5b7-1575-987c-4ef70e474932",
            "Timestamp": 1546315200,
            "Empty": "",
            "Nothing": null,
        }));
        assert_eq!(
            string_to_sign(&params, Nested::Flatten),
            "Action=ServiceDescribeDeviceData&AppKey=ServiceAppKey&DeviceName=Device001&Nonce=71087795&ProductId=ProductA&RequestId=476c990a-f5b7-1575-987c-4ef70e474932&Timestamp=1546315200"
        );
        params.insert("Signature".into(), json!("P206d+JzP37FLKBDkD689wqnl4k="));
        assert!(verify(&params, "ServiceAppSecret"));
        assert!(!verify(&params, "WrongSecret"));
    }

    #[test]
    fn nested_values_both_encodings() {
        let mut params = map(json!({
            "Action": "ServiceBindDevice",
            "Customer_Id": "c1",
            "DeviceInfos": [{"CustomerDeviceNo": "123", "DeviceId": "P1/d1", "ProductName": "lamp"}],
        }));
        assert_eq!(
            string_to_sign(&params, Nested::Flatten),
            "Action=ServiceBindDevice&Customer.Id=c1&DeviceInfos.0.CustomerDeviceNo=123&DeviceInfos.0.DeviceId=P1/d1&DeviceInfos.0.ProductName=lamp"
        );
        let json_sig = sign("s", &string_to_sign(&params, Nested::Json));
        params.insert("Signature".into(), json!(json_sig));
        assert!(verify(&params, "s"));
    }
}
