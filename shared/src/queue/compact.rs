//! A job's payload as it is sealed: its JSON with the fixed parts spelled as one byte each.
//!
//! Field names and kind tags are most of a small payload's JSON (`{"kind":"create-customer",
//! "customer_id":"` is 41 bytes before the first value). A waiting backlog holds one sealed
//! payload per job, so each fixed run of JSON that serde writes between values is stored as
//! one byte from 0x01 to 0x1F: JSON never holds such a byte raw (serde escapes control
//! characters inside strings, and writes no whitespace), so the expansion is unambiguous.
//! What is replaced is the same for every payload of a kind, so the sealed length still
//! depends only on the values' lengths, as it did before.
//!
//! A packed payload starts with one of these bytes; JSON starts with `{`. A payload packed
//! by nothing (written before packing, or whose JSON did not start with a known run) is
//! opened as it is.

use std::borrow::Cow;

/// The fixed runs, longest first where one starts another; token `i` is byte `i + 1`,
/// skipping tab, newline and carriage return. Appending keeps old payloads readable;
/// reordering or removing would not.
const RUNS: [&str; 28] = [
    r#"{"kind":"create-customer","customer_id":""#,
    r#"{"kind":"bind-devices","customer_id":""#,
    r#"{"kind":"create-account","account_type":"personal","mail":""#,
    r#"{"kind":"create-account","account_type":"company","mail":""#,
    r#"{"kind":"register-user","email":""#,
    r#"","country_code":""#,
    r#"","phone_number":""#,
    r#"","devices":[{"customer_device_no":""#,
    r#""},{"customer_device_no":""#,
    r#"","device_id":""#,
    r#"","product_name":""#,
    r#""}]}"#,
    r#"","password":""#,
    r#"","confirm_password":""#,
    r#"","phone_num":""#,
    r#"","area":""#,
    r#"","extended":""#,
    r#"","trade_one":""#,
    r#"","trade_two":""#,
    r#"","mobile":""#,
    r#"","passwd":""#,
    r#"","name":""#,
    r#"","industry":""#,
    r#"","sale_id":"#,
    r#""}"#,
    r#"{"kind":"#,
    r#"",""#,
    r#"":""#,
];

/// The byte standing for run `i`.
fn token(i: usize) -> u8 {
    // 0x01..=0x08, then 0x0B, 0x0C, then 0x0E..: no tab, newline or carriage return.
    let b = i as u8 + 1;
    match b {
        1..=8 => b,
        9..=10 => b + 2,
        _ => b + 3,
    }
}

/// The run byte `b` stands for, if any.
fn run_of(b: u8) -> Option<&'static str> {
    let i = match b {
        1..=8 => b - 1,
        11..=12 => b - 3,
        14..=31 => b - 4,
        _ => return None,
    };
    RUNS.get(i as usize).copied()
}

/// `json` with its fixed runs packed; `json` itself when it holds a byte below 0x20 (it is
/// then not serde's compact JSON) or does not start with a known run.
pub(crate) fn pack(json: &[u8]) -> Vec<u8> {
    if json.iter().any(|b| *b < 0x20) {
        return json.to_vec();
    }
    let mut out = Vec::with_capacity(json.len());
    let mut at = 0;
    while at < json.len() {
        let rest = &json[at..];
        let hit = if matches!(rest[0], b'{' | b'"') {
            RUNS.iter().position(|run| rest.starts_with(run.as_bytes()))
        } else {
            None
        };
        match hit {
            Some(i) => {
                out.push(token(i));
                at += RUNS[i].len();
            }
            None => {
                out.push(rest[0]);
                at += 1;
            }
        }
    }
    if out.first().is_some_and(|b| *b < 0x20) {
        out
    } else {
        json.to_vec()
    }
}

/// The JSON of a stored payload, packed or not.
pub(crate) fn unpack(stored: &[u8]) -> Cow<'_, [u8]> {
    if stored.first().is_none_or(|b| *b >= 0x20) {
        return Cow::Borrowed(stored);
    }
    let mut out = Vec::with_capacity(stored.len() * 2);
    for &b in stored {
        match run_of(b) {
            Some(run) => out.extend_from_slice(run.as_bytes()),
            None => out.push(b),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{
        AccountType, BindDevicesJob, CreateAccountJob, CreateCustomerJob, DeviceInfo, Job,
        RegisterUserJob,
    };
    use crate::secret::Secret;

    fn jobs() -> Vec<Job> {
        vec![
            Job::CreateCustomer(CreateCustomerJob {
                customer_id: "c123456".into(),
                country_code: "86".into(),
                phone_number: "13800001234".into(),
            }),
            Job::BindDevices(BindDevicesJob {
                customer_id: "c1".into(),
                devices: vec![
                    DeviceInfo {
                        customer_device_no: "d1".into(),
                        device_id: "P1/lamp".into(),
                        product_name: "lamp".into(),
                    },
                    DeviceInfo {
                        customer_device_no: "d2".into(),
                        device_id: "P1/lamp2".into(),
                        product_name: "\u{1}\"}".into(),
                    },
                ],
            }),
            Job::CreateAccount(CreateAccountJob {
                account_type: AccountType::Company,
                mail: "a@example.com".into(),
                password: Secret::new("Passw0rd!x"),
                confirm_password: Secret::new("Passw0rd!x"),
                phone_num: "55501234".into(),
                country_code: "852".into(),
                area: "HK".into(),
                extended: Some("\",\"area\":\"".into()),
                trade_one: None,
                trade_two: Some("t2".into()),
            }),
            Job::RegisterUser(RegisterUserJob {
                email: "u@example.com".into(),
                mobile: "13800000001".into(),
                passwd: Secret::new("pass-12345"),
                name: Some("U".into()),
                industry: None,
                sale_id: Some(7),
            }),
        ]
    }

    #[test]
    fn every_kind_packs_smaller_and_unpacks_to_its_json() {
        for job in jobs() {
            let json = serde_json::to_vec(&job).unwrap();
            let packed = pack(&json);
            assert!(packed[0] < 0x20, "{}", String::from_utf8_lossy(&json));
            assert!(packed.len() < json.len());
            assert_eq!(unpack(&packed), json.as_slice());
            let back: Job = serde_json::from_slice(&unpack(&packed)).unwrap();
            assert_eq!(back, job);
        }
        let json = serde_json::to_vec(&jobs()[0]).unwrap();
        assert_eq!(
            pack(&json).len(),
            24,
            "the bench's customer: 99 bytes of JSON"
        );
    }

    #[test]
    fn unpacked_json_and_odd_input_stay_as_they_are() {
        let json = br#"{"kind":"create-customer","customer_id":"c1"}"#;
        assert_eq!(unpack(json), &json[..], "written before packing");
        for odd in [&b"[1,2]"[..], b"", b"{\"a\":\x01}", b"x\"}"] {
            assert_eq!(pack(odd), odd);
            assert_eq!(unpack(&pack(odd)), odd);
        }
    }

    #[test]
    fn tokens_are_distinct_control_bytes() {
        let mut seen = std::collections::HashSet::new();
        for (i, run) in RUNS.iter().enumerate() {
            let t = token(i);
            assert!(t < 0x20 && ![b'\t', b'\n', b'\r'].contains(&t), "{t}");
            assert!(seen.insert(t));
            assert_eq!(run_of(t), Some(*run));
        }
        assert_eq!(run_of(b'\n'), None);
        assert_eq!(run_of(b'{'), None);
    }
}
