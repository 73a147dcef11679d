//! IoT Explorer request signing: HMAC-SHA1 over the sorted `name=value` string, Base64.
//!
//! Nested values (ServiceBindDevice's `DeviceInfos`) are not covered by any public source;
//! how they enter the string is chosen here, in one place, by [`NestedEncoding`].

use crate::config::NestedEncoding;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha1::Sha1;

/// The string that is signed: every parameter but `Signature`, empty and null values left
/// out, `_` in names replaced by `.`, sorted by name (bytes), joined as `name=value&...`.
pub fn string_to_sign(params: &Map<String, Value>, nested: NestedEncoding) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
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

/// `Base64(HMAC-SHA1(app_secret, string_to_sign))`.
pub fn sign(app_secret: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac =
        Hmac::<Sha1>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn collect(name: &str, value: &Value, nested: NestedEncoding, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push((name.to_string(), s.clone())),
        Value::Number(n) => out.push((name.to_string(), n.to_string())),
        Value::Bool(b) => out.push((name.to_string(), b.to_string())),
        Value::Array(_) | Value::Object(_) if nested == NestedEncoding::Json => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn official_vector() {
        let params = map(json!({
            "Action": "ServiceDescribeDeviceData",
            "AppKey": "ServiceAppKey",
            "DeviceName": "Device001",
            "Nonce": 71087795,
            "ProductId": "ProductA",
            "RequestId": "476c990a-f5b7-1575-987c-4ef70e474932",
            "Timestamp": 1546315200,
            "Signature": "ignored",
            "Empty": "",
            "Missing": null,
        }));
        let s = string_to_sign(&params, NestedEncoding::Flatten);
        assert_eq!(
            s,
            "Action=ServiceDescribeDeviceData&AppKey=ServiceAppKey&DeviceName=Device001&Nonce=71087795&ProductId=ProductA&RequestId=476c990a-f5b7-1575-987c-4ef70e474932&Timestamp=1546315200"
        );
        assert_eq!(sign("ServiceAppSecret", &s), "P206d+JzP37FLKBDkD689wqnl4k=");
    }

    #[test]
    fn nested_values_flatten_or_json() {
        let params = map(json!({
            "CustomerId": "c1",
            "DeviceInfos": [{"CustomerDeviceNo": "123", "DeviceId": "P1/d1", "ProductName": "lamp"}],
        }));
        assert_eq!(
            string_to_sign(&params, NestedEncoding::Flatten),
            "CustomerId=c1&DeviceInfos.0.CustomerDeviceNo=123&DeviceInfos.0.DeviceId=P1/d1&DeviceInfos.0.ProductName=lamp"
        );
        assert_eq!(
            string_to_sign(&params, NestedEncoding::Json),
            r#"CustomerId=c1&DeviceInfos=[{"CustomerDeviceNo":"123","DeviceId":"P1/d1","ProductName":"lamp"}]"#
        );
    }

    #[test]
    fn underscores_in_names_become_dots_before_sorting() {
        let params = map(json!({"b": "2", "a_z": "1", "a.b": "0"}));
        assert_eq!(
            string_to_sign(&params, NestedEncoding::Flatten),
            "a.b=0&a.z=1&b=2"
        );
    }
}
