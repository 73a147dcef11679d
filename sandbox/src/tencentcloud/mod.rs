//! Tencent Cloud International partner API (`intlpartnersmgt`, version 2022-09-28): `POST /`
//! dispatched on `X-TC-Action`, authenticated with TC3-HMAC-SHA256.
//!
//! Serves `CreateAccount` (two-phase: an empty `VerifyCode` texts a code, the same call with
//! the code creates the account), `SendVerifyCode` and `GetCountryCodes`.

use crate::envelope::{err, ok, ApiError};
use crate::faults::{serve, Injected};
use crate::iot::constant_eq;
use crate::lock::lock;
use crate::state::{now_secs, Account, AppState, DIGITS};
use crate::stats::CreateKind;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
pub use tc3::*;

mod tc3;

/// The service name that enters the credential scope (fixed, not taken from the host).
pub const SERVICE: &str = "intlpartnersmgt";
/// The only API version served.
pub const VERSION: &str = "2022-09-28";
/// How far `X-TC-Timestamp` may be from the server clock.
const MAX_SKEW_SECS: i64 = 300;
/// How long a texted code stays valid.
const CODE_TTL_SECS: i64 = 600;
/// Minimum gap between two `SendVerifyCode` texts to one phone.
const RESEND_GAP_SECS: i64 = 60;
/// Accounts allowed per phone.
const MAX_ACCOUNTS_PER_PHONE: u32 = 5;

/// Checks the request's TC3 authentication against the accepted SecretId/SecretKey.
fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
    timestamp: i64,
) -> Result<(), ApiError> {
    let auth = header(headers, "authorization")
        .and_then(|v| parse_authorization(&v))
        .ok_or_else(|| {
            ApiError::new(
                "AuthFailure.InvalidAuthorization",
                "Authorization header is invalid",
            )
        })?;
    if auth.secret_id != st.creds.tc_secret_id {
        return Err(ApiError::new(
            "AuthFailure.SecretIdNotFound",
            "the SecretId is not found",
        ));
    }
    if (now_secs() - timestamp).abs() > MAX_SKEW_SECS {
        return Err(ApiError::new(
            "AuthFailure.SignatureExpire",
            "signature expired: X-TC-Timestamp is more than 5 minutes from the server time",
        ));
    }
    let failure = || {
        ApiError::new(
            "AuthFailure.SignatureFailure",
            "the provided credentials could not be validated",
        )
    };
    if Some(auth.date.as_str()) != utc_date(timestamp).as_deref() {
        return Err(failure());
    }
    let names: Vec<String> = auth
        .signed_headers
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    // content-type and host must always be signed, as the TC3 spec requires.
    if !names.iter().any(|n| n == "content-type") || !names.iter().any(|n| n == "host") {
        return Err(failure());
    }
    let mut values = Vec::with_capacity(names.len());
    for n in &names {
        values.push((
            n.clone(),
            header(headers, n).ok_or_else(failure)?.trim().to_string(),
        ));
    }
    let hashed_payload = match header(headers, "x-tc-content-sha256") {
        Some(v) if v.trim() == "UNSIGNED-PAYLOAD" => "UNSIGNED-PAYLOAD".to_string(),
        _ => sha256_hex(body),
    };
    let mut req = SignedRequest {
        method: "POST",
        uri: "/",
        query: uri.query().unwrap_or(""),
        headers: values,
        signed_headers: &auth.signed_headers,
        hashed_payload,
        timestamp,
    };
    let matches = |req: &SignedRequest<'_>| {
        signature(req, SERVICE, &st.creds.tc_secret_key).is_some_and(|s| {
            constant_eq(s.as_bytes(), auth.signature.to_ascii_lowercase().as_bytes())
        })
    };
    if matches(&req) {
        return Ok(());
    }
    // Some SDK versions lowercase header values (e.g. x-tc-action) before signing.
    for (_, v) in req.headers.iter_mut() {
        *v = v.to_ascii_lowercase();
    }
    if matches(&req) {
        return Ok(());
    }
    Err(failure())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The handler of `POST /`.
pub async fn handle(
    State(st): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let action = header(&headers, "x-tc-action").unwrap_or_default();
    let answer = |result: Result<Map<String, Value>, ApiError>| {
        match &result {
            Ok(_) => tracing::info!(provider = "tencentcloud", action = %action, "served"),
            Err(e) => {
                tracing::info!(provider = "tencentcloud", action = %action, code = %e.code, "refused")
            }
        }
        match result {
            Ok(fields) => ok(&request_id, fields),
            Err(e) => err(&request_id, &e),
        }
    };
    if action.is_empty() {
        return answer(Err(ApiError::new(
            "MissingParameter",
            "the X-TC-Action header is missing",
        )));
    }
    let limit = match action.as_str() {
        "CreateAccount" => Some(st.limits.create_account),
        "SendVerifyCode" => Some(st.limits.send_verify_code),
        "GetCountryCodes" => Some(st.limits.get_country_codes),
        _ => None,
    };
    if let Some(limit) = limit {
        if !st.arrive(&action, &action, limit) {
            return answer(Err(ApiError::new(
                "RequestLimitExceeded",
                "request limit exceeded",
            )));
        }
    }
    match header(&headers, "x-tc-version") {
        Some(v) if v.trim() == VERSION => {}
        Some(v) => {
            return answer(Err(ApiError::new(
                "NoSuchVersion",
                format!("version {v} is not supported"),
            )))
        }
        None => {
            return answer(Err(ApiError::new(
                "MissingParameter",
                "the X-TC-Version header is missing",
            )))
        }
    }
    let Some(timestamp) =
        header(&headers, "x-tc-timestamp").and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return answer(Err(ApiError::new(
            "MissingParameter",
            "X-TC-Timestamp is missing or not an integer",
        )));
    };
    if let Err(e) = authenticate(&st, &headers, &uri, &body, timestamp) {
        if limit.is_some() && e.code == "AuthFailure.SignatureFailure" {
            lock(&st.stats).signature_failure(&action);
        }
        return answer(Err(e));
    }
    if limit.is_none() {
        return answer(Err(ApiError::new(
            "InvalidAction",
            format!("unknown action: {action}"),
        )));
    }
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => {
                return answer(Err(ApiError::new(
                    "InvalidParameter",
                    "the body is not a JSON object",
                )))
            }
        }
    };

    let result = serve(
        &st,
        &action,
        || match action.as_str() {
            "CreateAccount" => create_account(&st, &params),
            "SendVerifyCode" => send_verify_code(&st, &params),
            _ => Ok(country_codes()),
        },
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

/// A string parameter; empty or absent is `None`, a non-string is an error.
fn text(params: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(
            "InvalidParameter",
            format!("{name} must be a string"),
        )),
    }
}

fn required(params: &Map<String, Value>, name: &str, empty_code: &str) -> Result<String, ApiError> {
    text(params, name)?.ok_or_else(|| ApiError::code(empty_code))
}

fn valid_mail(mail: &str) -> bool {
    let Some((local, domain)) = mail.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !mail.chars().any(char::is_whitespace)
}

/// 8-20 characters, digits, letters and at least one of `!@#$%^&*()`, no space.
pub fn valid_password(p: &str) -> bool {
    const SYMBOLS: &str = "!@#$%^&*()";
    let len = p.chars().count();
    (8..=20).contains(&len)
        && !p.chars().any(char::is_whitespace)
        && p.chars().any(|c| c.is_ascii_digit())
        && p.chars().any(|c| c.is_ascii_alphabetic())
        && p.chars().any(|c| SYMBOLS.contains(c))
}

fn valid_phone_parts(country_code: &str, phone: &str) -> Result<(), ApiError> {
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(country_code, 4) {
        return Err(ApiError::code(
            "InvalidParameter.CountryCodeFormatIncorrect",
        ));
    }
    if !digits(phone, 32) {
        return Err(ApiError::code("InvalidParameter.PhoneNumFormatIncorrect"));
    }
    if ["7", "380", "86"].contains(&country_code) {
        return Err(ApiError::new(
            "InvalidParameterValue.UnSupportArea",
            "The current region does not support creating a Tencent Cloud International account.",
        ));
    }
    Ok(())
}

/// Texts a fresh 6-digit code to `phone`: it becomes the phone's only valid code.
fn text_code(st: &AppState, phone: &str) {
    let code = st.random_string(DIGITS, 6);
    let now = now_secs();
    let mut store = lock(&st.store);
    let p = store.phones.entry(phone.to_string()).or_default();
    p.inbox.push(code.clone());
    p.current = Some((code, now + CODE_TTL_SECS));
    p.last_sent = Some(now);
}

fn create_account(
    st: &AppState,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let account_type = required(
        params,
        "AccountType",
        "InvalidParameterValue.AccountTypeEmpty",
    )?;
    let mail = required(params, "Mail", "InvalidParameterValue.MailEmpty")?;
    let password = required(params, "Password", "InvalidParameterValue.PasswordEmpty")?;
    let confirm = required(
        params,
        "ConfirmPassword",
        "InvalidParameterValue.PasswordEmpty",
    )?;
    let phone_num = required(params, "PhoneNum", "InvalidParameterValue.PhoneNumEmpty")?;
    let country_code = required(
        params,
        "CountryCode",
        "InvalidParameterValue.CountryCodeEmpty",
    )?;
    let area = required(params, "Area", "InvalidParameterValue.AreaEmpty")?;
    // Optional pass-through fields, still type-checked.
    text(params, "Extended")?;
    let verify_code = text(params, "VerifyCode")?;
    for name in ["TradeOne", "TradeTwo"] {
        if let Some(v) = params.get(name) {
            if !(v.is_string() || v.is_null()) {
                return Err(ApiError::new(
                    "InvalidParameter",
                    format!("{name} must be a string"),
                ));
            }
        }
    }

    if account_type != "personal" && account_type != "company" {
        return Err(ApiError::code(
            "InvalidParameter.AccountTypeContentIncorrect",
        ));
    }
    if !valid_mail(&mail) {
        return Err(ApiError::code("InvalidParameter.MailFormatIncorrect"));
    }
    if !valid_password(&password) {
        return Err(ApiError::code("InvalidParameter.PasswordFormatIncorrect"));
    }
    if confirm != password {
        return Err(ApiError::code(
            "InvalidParameter.ConfirmPasswordContentIncorrect",
        ));
    }
    valid_phone_parts(&country_code, &phone_num)?;
    if area.len() != 2 || !area.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::code("InvalidParameter.AreaFormatIncorrect"));
    }
    let phone = format!("{country_code}{phone_num}");
    {
        let store = lock(&st.store);
        if store.accounts.contains_key(&mail) {
            return Err(ApiError::new(
                "FailedOperation.MailIsRegistered",
                "FailedOperation.MailIsRegistered",
            ));
        }
        if store
            .phones
            .get(&phone)
            .is_some_and(|p| p.accounts >= MAX_ACCOUNTS_PER_PHONE)
        {
            return Err(ApiError::new(
                "FailedOperation.PhoneBindUpper",
                "The number of registered accounts for the current mobile number has reached the maximum limit.",
            ));
        }
    }
    let Some(code) = verify_code else {
        // Phase 1: text a code; the answer has neither Uin nor Error.
        text_code(st, &phone);
        return Ok(Map::new());
    };
    let uin = format!("200{}", st.random_string(DIGITS, 9));
    {
        let mut store = lock(&st.store);
        // Re-checked under the same lock as the insert, so two racing calls cannot both win.
        if store.accounts.contains_key(&mail) {
            return Err(ApiError::new(
                "FailedOperation.MailIsRegistered",
                "FailedOperation.MailIsRegistered",
            ));
        }
        let now = now_secs();
        let p = store.phones.entry(phone.clone()).or_default();
        if p.accounts >= MAX_ACCOUNTS_PER_PHONE {
            return Err(ApiError::new(
                "FailedOperation.PhoneBindUpper",
                "The number of registered accounts for the current mobile number has reached the maximum limit.",
            ));
        }
        let valid = p
            .current
            .as_ref()
            .is_some_and(|(c, expiry)| *c == code && now <= *expiry);
        if !valid {
            return Err(ApiError::new(
                "FailedOperation.VerificationCodeIllegal",
                "Incorrect verification code.",
            ));
        }
        p.current = None;
        p.accounts += 1;
        store.accounts.insert(
            mail.clone(),
            Account {
                uin: uin.clone(),
                mail: mail.clone(),
                phone,
            },
        );
    }
    lock(&st.stats).created(CreateKind::Account, &mail);
    let mut m = Map::new();
    m.insert("Uin".into(), Value::String(uin));
    Ok(m)
}

fn send_verify_code(
    st: &AppState,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let country_code = required(
        params,
        "CountryCode",
        "InvalidParameterValue.CountryCodeEmpty",
    )?;
    let phone_num = required(params, "PhoneNum", "InvalidParameterValue.PhoneNumEmpty")?;
    valid_phone_parts(&country_code, &phone_num)?;
    let phone = format!("{country_code}{phone_num}");
    let recent = lock(&st.store)
        .phones
        .get(&phone)
        .and_then(|p| p.last_sent)
        .is_some_and(|t| now_secs() - t < RESEND_GAP_SECS);
    if recent {
        return Err(ApiError::new(
            "FailedOperation.SendVerifyCodeLimit60",
            "a verification code was sent to this phone less than 60 seconds ago",
        ));
    }
    text_code(st, &phone);
    Ok(Map::new())
}

/// The `GetCountryCodes` answer.
fn country_codes() -> Map<String, Value> {
    const COUNTRIES: &[(&str, &str, &str, &str, &str)] = &[
        ("Hong Kong", "中国香港", "HK", "HKG", "852"),
        ("Macao", "中国澳门", "MO", "MAC", "853"),
        ("Taiwan", "中国台湾", "TW", "TWN", "886"),
        ("Singapore", "新加坡", "SG", "SGP", "65"),
        ("United States", "美国", "US", "USA", "1"),
        ("Canada", "加拿大", "CA", "CAN", "1"),
        ("United Kingdom", "英国", "GB", "GBR", "44"),
        ("Japan", "日本", "JP", "JPN", "81"),
        ("Korea", "韩国", "KR", "KOR", "82"),
        ("Germany", "德国", "DE", "DEU", "49"),
        ("France", "法国", "FR", "FRA", "33"),
        ("Australia", "澳大利亚", "AU", "AUS", "61"),
        ("Thailand", "泰国", "TH", "THA", "66"),
        ("Malaysia", "马来西亚", "MY", "MYS", "60"),
        ("Indonesia", "印度尼西亚", "ID", "IDN", "62"),
    ];
    let data: Vec<Value> = COUNTRIES
        .iter()
        .map(|(en, name, ios2, ios3, code)| {
            json!({"EnName": en, "Name": name, "IOS2": ios2, "IOS3": ios3, "Code": code})
        })
        .collect();
    let mut m = Map::new();
    m.insert("Data".into(), Value::Array(data));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_request() -> SignedRequest<'static> {
        let body = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        SignedRequest {
            method: "POST",
            uri: "/",
            query: "",
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("host".into(), "cvm.tencentcloudapi.com".into()),
            ],
            signed_headers: "content-type;host",
            hashed_payload: sha256_hex(body.as_bytes()),
            timestamp: 1551113065,
        }
    }

    #[test]
    fn official_vectors() {
        let req = vector_request();
        assert_eq!(
            req.hashed_payload,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            signature(&req, "cvm", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE").as_deref(),
            Some("72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
        );
        assert_eq!(
            signature(&req, "cvm", "Gu5t9xGARNpq86cd98joQYCN3*******").as_deref(),
            Some("2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c")
        );
    }

    #[test]
    fn parses_authorization() {
        let a = parse_authorization(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=abc",
        );
        assert_eq!(
            a,
            Some(Authorization {
                secret_id: "AKID".into(),
                date: "2019-02-25".into(),
                service: "cvm".into(),
                signed_headers: "content-type;host".into(),
                signature: "abc".into(),
            })
        );
        assert_eq!(parse_authorization("Basic abc"), None);
    }

    #[test]
    fn password_rules() {
        assert!(valid_password("Passw0rd!"));
        assert!(!valid_password("Password1"));
        assert!(!valid_password("Pass w0rd!"));
        assert!(!valid_password("P0!a"));
    }
}
