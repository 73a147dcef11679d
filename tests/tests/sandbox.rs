//! End-to-end checks of `onboard-sandbox` as a real process: for each provider, a request
//! signed right is accepted and one signed with a wrong secret is refused with the provider's
//! real error code. Requests are signed by hand here, independently of onboard-shared's
//! signers, so a bug shared by client and sandbox cannot hide. Also runs Tencent's official
//! Python SDK against the sandbox (tests/python/run.sh).

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use onboard_shared::config::sandbox_defaults as d;
use onboard_tests::Sandbox;
use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------- IoT Explorer

fn iot_collect(name: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push((name.to_string(), s.clone())),
        Value::Number(n) => out.push((name.to_string(), n.to_string())),
        Value::Bool(b) => out.push((name.to_string(), b.to_string())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                iot_collect(&format!("{name}.{i}"), item, out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                iot_collect(&format!("{name}.{k}"), item, out);
            }
        }
    }
}

/// Adds the common parameters and the flattened-encoding signature.
fn iot_signed(action: &str, mut params: Map<String, Value>, secret: &str) -> Value {
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);
    params.insert("Action".into(), json!(action));
    params.insert("AppKey".into(), json!(d::IOT_APP_KEY));
    params.insert("RequestId".into(), json!(format!("req-{}", now_secs())));
    params.insert("Timestamp".into(), json!(now_secs()));
    params.insert(
        "Nonce".into(),
        json!(NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
    );
    let mut pairs = Vec::new();
    for (k, v) in &params {
        iot_collect(k, v, &mut pairs);
    }
    for (k, _) in pairs.iter_mut() {
        *k = k.replace('_', ".");
    }
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let s = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(s.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    params.insert("Signature".into(), json!(sig));
    Value::Object(params)
}

fn iot_call(sb: &Sandbox, body: &Value) -> Value {
    let url = format!("{}/api/exploreropen/serviceapi", sb.url());
    rt().block_on(async {
        let resp = reqwest::Client::new()
            .post(&url)
            .json(body)
            .send()
            .await
            .expect("iot request");
        assert_eq!(resp.status().as_u16(), 200);
        resp.json::<Value>().await.expect("iot JSON")
    })
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn iot_accepts_right_signature_and_refuses_wrong_one() {
    let sb = Sandbox::start(&[]);
    let params =
        obj(json!({"CustomerId": "cust_1", "CountryCode": "65", "PhoneNumber": "81234567"}));
    let ok = iot_call(
        &sb,
        &iot_signed("ServiceCreateCustomer", params.clone(), d::IOT_APP_SECRET),
    );
    assert_eq!(ok["Response"]["Status"], "OK", "{ok}");

    let bad = iot_call(
        &sb,
        &iot_signed("ServiceCreateCustomer", params.clone(), "wrong-secret"),
    );
    assert_eq!(
        bad["Response"]["Error"]["Code"], "InvalidParameterValue",
        "{bad}"
    );
    assert_eq!(
        bad["Response"]["Error"]["Message"], "Signature 无效",
        "{bad}"
    );

    // A second create of the same id is refused, not duplicated.
    let dup = iot_call(
        &sb,
        &iot_signed("ServiceCreateCustomer", params, d::IOT_APP_SECRET),
    );
    assert_eq!(
        dup["Response"]["Error"]["Code"], "InvalidParameterValue",
        "{dup}"
    );

    // Nested DeviceInfos, flattened encoding.
    let bind = obj(json!({"CustomerId": "cust_1", "DeviceInfos": [
        {"CustomerDeviceNo": "123", "DeviceId": "P1/d1", "ProductName": "lamp"}]}));
    let bound = iot_call(
        &sb,
        &iot_signed("ServiceBindDevice", bind, d::IOT_APP_SECRET),
    );
    assert_eq!(bound["Response"]["Status"], "OK", "{bound}");

    let list = iot_call(
        &sb,
        &iot_signed(
            "ServiceGetCustomerList",
            obj(json!({"CustomerId": "cust_1"})),
            d::IOT_APP_SECRET,
        ),
    );
    assert_eq!(list["Response"]["Total"], 1, "{list}");
    assert_eq!(list["Response"]["Customers"][0]["PhoneNumber"], "81234567");

    let stats = sb.stats();
    assert_eq!(stats["creates"]["customers"]["cust_1"], 1, "{stats}");
    assert_eq!(stats["duplicates"], 0);
    assert_eq!(
        stats["actions"]["ServiceCreateCustomer"]["signature_failures"],
        1
    );
    assert_eq!(stats["actions"]["ServiceCreateCustomer"]["requests"], 3);
}

// ---------------------------------------------------------------- Tencent Cloud

fn hmac256(key: &[u8], msg: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp (Howard Hinnant's civil-from-days).
fn utc_date(ts: i64) -> String {
    let z = ts.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn tc_call(sb: &Sandbox, action: &str, body: &Value, secret_key: &str) -> Value {
    let url = format!("{}/", sb.url());
    let host = sb.url().trim_start_matches("http://").to_string();
    let payload = body.to_string();
    let ts = now_secs();
    let date = utc_date(ts);
    let ct = "application/json";
    let canonical = format!(
        "POST\n/\n\ncontent-type:{ct}\nhost:{host}\n\ncontent-type;host\n{}",
        hex::encode(Sha256::digest(payload.as_bytes()))
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/intlpartnersmgt/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac256(format!("TC3{secret_key}").as_bytes(), &date);
    let k_service = hmac256(&k_date, "intlpartnersmgt");
    let k_signing = hmac256(&k_service, "tc3_request");
    let sig = hex::encode(hmac256(&k_signing, &to_sign));
    let auth = format!(
        "TC3-HMAC-SHA256 Credential={}/{date}/intlpartnersmgt/tc3_request, SignedHeaders=content-type;host, Signature={sig}",
        d::TC_SECRET_ID
    );
    rt().block_on(async {
        let resp = reqwest::Client::new()
            .post(&url)
            .header("Content-Type", ct)
            .header("X-TC-Action", action)
            .header("X-TC-Version", "2022-09-28")
            .header("X-TC-Timestamp", ts.to_string())
            .header("Authorization", auth)
            .body(payload)
            .send()
            .await
            .expect("tencentcloud request");
        assert_eq!(resp.status().as_u16(), 200);
        resp.json::<Value>().await.expect("tencentcloud JSON")
    })
}

#[test]
fn tencentcloud_accepts_right_signature_and_refuses_wrong_one() {
    let sb = Sandbox::start(&[]);
    let mut params = json!({
        "AccountType": "personal",
        "Mail": "alice@example.com",
        "Password": "Passw0rd!",
        "ConfirmPassword": "Passw0rd!",
        "PhoneNum": "91234567",
        "CountryCode": "852",
        "Area": "HK",
        "VerifyCode": "",
    });
    let phase1 = tc_call(&sb, "CreateAccount", &params, d::TC_SECRET_KEY);
    let r = &phase1["Response"];
    assert!(
        r.get("Error").is_none() && r.get("Uin").is_none(),
        "{phase1}"
    );
    let code = sb.latest_code("85291234567").expect("a code was texted");
    assert_eq!(code.len(), 6);

    params["VerifyCode"] = json!("000000x");
    let wrong_code = tc_call(&sb, "CreateAccount", &params, d::TC_SECRET_KEY);
    assert_eq!(
        wrong_code["Response"]["Error"]["Code"], "FailedOperation.VerificationCodeIllegal",
        "{wrong_code}"
    );

    params["VerifyCode"] = json!(code);
    let created = tc_call(&sb, "CreateAccount", &params, d::TC_SECRET_KEY);
    assert!(created["Response"]["Uin"].is_string(), "{created}");

    let again = tc_call(&sb, "CreateAccount", &params, d::TC_SECRET_KEY);
    assert_eq!(
        again["Response"]["Error"]["Code"], "FailedOperation.MailIsRegistered",
        "{again}"
    );

    let bad = tc_call(&sb, "GetCountryCodes", &json!({}), "wrong-secret-key");
    assert_eq!(
        bad["Response"]["Error"]["Code"], "AuthFailure.SignatureFailure",
        "{bad}"
    );
    let good = tc_call(&sb, "GetCountryCodes", &json!({}), d::TC_SECRET_KEY);
    assert!(
        good["Response"]["Data"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{good}"
    );

    let stats = sb.stats();
    assert_eq!(
        stats["creates"]["accounts"]["alice@example.com"], 1,
        "{stats}"
    );
    assert_eq!(stats["duplicates"], 0);
    assert_eq!(stats["actions"]["GetCountryCodes"]["signature_failures"], 1);
}

#[test]
fn tencentcloud_rate_limit_is_enforced_and_counted() {
    let sb = Sandbox::start(&["--get-country-codes-rate", "2"]);
    let answers: Vec<Value> = (0..8)
        .map(|_| tc_call(&sb, "GetCountryCodes", &json!({}), d::TC_SECRET_KEY))
        .collect();
    let limited = answers
        .iter()
        .filter(|a| a["Response"]["Error"]["Code"] == "RequestLimitExceeded")
        .count();
    assert!(limited > 0, "{answers:?}");
    let stats = sb.stats();
    let s = &stats["actions"]["GetCountryCodes"];
    assert_eq!(s["requests"], 8);
    assert_eq!(s["rate_limit_violations"], limited as u64);
    assert!(s["max_per_second"].as_u64().unwrap_or(0) >= 3, "{s}");
}

// ---------------------------------------------------------------- POLYV

fn polyv_call(
    sb: &Sandbox,
    path: &str,
    mut params: BTreeMap<String, String>,
    secret: &str,
) -> (u16, Value) {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    params.insert("appId".into(), d::POLYV_APP_ID.into());
    params.insert("timestamp".into(), ms.to_string());
    let concat: String = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}{v}"))
        .collect();
    let sign = hex::encode_upper(Md5::digest(format!("{secret}{concat}{secret}").as_bytes()));
    params.insert("sign".into(), sign);
    let url = format!("{}{path}", sb.url());
    rt().block_on(async {
        let client = reqwest::Client::new();
        let req = if path.ends_with("add-custom-user") {
            client.post(&url).query(&params)
        } else {
            client.get(&url).query(&params)
        };
        let resp = req.send().await.expect("polyv request");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.expect("polyv JSON"))
    })
}

#[test]
fn polyv_accepts_right_signature_and_refuses_wrong_one() {
    let sb = Sandbox::start(&[]);
    let params: BTreeMap<String, String> = [
        ("email", "bob@example.com"),
        ("mobile", "13800000000"),
        ("passwd", "secret1"),
        ("name", "Bob"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (status, ok) = polyv_call(
        &sb,
        "/live/v2/app/add-custom-user",
        params.clone(),
        d::POLYV_APP_SECRET,
    );
    assert_eq!((status, ok["code"].as_u64()), (200, Some(200)), "{ok}");
    assert_eq!(ok["data"]["name"], "Bob");
    assert_eq!(ok["data"]["appSecret"].as_str().map(str::len), Some(32));

    let (status, bad) = polyv_call(
        &sb,
        "/live/v2/app/add-custom-user",
        params.clone(),
        "wrong-secret",
    );
    assert_eq!((status, bad["code"].as_u64()), (403, Some(403)), "{bad}");
    assert_eq!(bad["message"], "invalid signature.");

    let (_, dup) = polyv_call(
        &sb,
        "/live/v2/app/add-custom-user",
        params,
        d::POLYV_APP_SECRET,
    );
    assert_eq!(dup["message"], "email already registered.", "{dup}");

    let lookup: BTreeMap<String, String> =
        [("email".to_string(), "bob@example.com".to_string())].into();
    let (status, found) = polyv_call(
        &sb,
        "/live/v2/app/get-custom-user",
        lookup,
        d::POLYV_APP_SECRET,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["data"]["appId"], ok["data"]["appId"]);

    let stats = sb.stats();
    assert_eq!(
        stats["creates"]["polyv_users"]["bob@example.com"], 1,
        "{stats}"
    );
    assert_eq!(stats["actions"]["add-custom-user"]["signature_failures"], 1);
}

// ---------------------------------------------------------------- faults

#[test]
fn faults_error_refuses_and_timeout_performs() {
    let sb = Sandbox::start(&[]);
    sb.set_faults(json!({"error_rate": 1.0, "actions": ["ServiceCreateCustomer"]}));
    let p = obj(json!({"CustomerId": "c_err", "CountryCode": "65", "PhoneNumber": "1"}));
    let e = iot_call(
        &sb,
        &iot_signed("ServiceCreateCustomer", p, d::IOT_APP_SECRET),
    );
    assert_eq!(e["Response"]["Error"]["Code"], "InternalError", "{e}");
    assert!(sb.stats()["creates"]["customers"].get("c_err").is_none());

    sb.set_faults(json!({"timeout_rate": 1.0, "hang_ms": 300}));
    let p = obj(json!({"CustomerId": "c_hang", "CountryCode": "65", "PhoneNumber": "1"}));
    let started = std::time::Instant::now();
    let h = iot_call(
        &sb,
        &iot_signed("ServiceCreateCustomer", p, d::IOT_APP_SECRET),
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(h["Response"]["Status"], "OK", "{h}");
    assert_eq!(sb.stats()["creates"]["customers"]["c_hang"], 1);
}

// ---------------------------------------------------------------- official Python SDK

#[test]
fn official_tencentcloud_python_sdk_is_accepted() {
    let sb = Sandbox::start(&[]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/run.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(sb.url())
        .output()
        .expect("run tests/python/run.sh");
    assert!(
        out.status.success(),
        "the Python SDK check failed (needs python3 and PyPI access on first run):\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
