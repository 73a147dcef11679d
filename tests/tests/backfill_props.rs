//! A property of `onboard-producer backfill` over generated CSV and JSON Lines files, valid
//! and hostile alike (random bytes, quotes, byte order marks, blank and whitespace lines,
//! keys given twice, values of the wrong type, rows that share a key): it never panics,
//! exits 0 or 1, enqueues nothing when it exits 1, and no password it was given shows up in
//! its output or in a rejects `.errors` file. One real redis-server for every case; cases
//! share it, so later cases are also reruns of earlier keys.

use onboard_tests::fixtures::{cli, text};
use onboard_tests::RedisServer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redis::Commands;

/// Passwords the generator hands out: none may ever be printed.
const SECRETS: [&str; 4] = ["Zq1!secretA", "Zq2!secretB", "Zq3@secretC", "pw-secret-d"];
/// A password given as a JSON number (of the wrong type): not to be printed either.
const NUMERIC_SECRET: &str = "73419082657";

#[derive(Debug, Clone)]
struct Row {
    kind: usize,
    id: usize,
    phone: usize,
    code: usize,
    secret: usize,
    /// 0 as is; 1 password as a number; 2 password given twice; 3 an unknown field.
    twist: u8,
    /// Bytes inserted at `at` (a fraction of the line) when not empty.
    noise: Vec<u8>,
    at: f64,
    /// Cells quoted (CSV).
    quoted: bool,
}

#[derive(Debug, Clone)]
struct Case {
    jsonl: bool,
    fixed_kind: bool,
    skip_invalid: bool,
    bom: bool,
    rows: Vec<Row>,
    /// Blank or whitespace-only lines, after the row of that index.
    blanks: Vec<(usize, u8)>,
}

const KINDS: [&str; 4] = [
    "create-customer",
    "onboard-customer",
    "create-account",
    "register-user",
];
const IDS: [&str; 3] = ["c1", "c2", "bad id"];
const PHONES: [&str; 3] = ["13900000001", "13900000002", "139-x"];
const CODES: [&str; 6] = ["86", "086", "+852", "7", "0", "852"];

fn row() -> impl Strategy<Value = Row> {
    (
        0..KINDS.len(),
        0..IDS.len(),
        0..PHONES.len(),
        0..CODES.len(),
        0..SECRETS.len(),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop_oneof![4 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..4)],
        0.0..1.0f64,
        any::<bool>(),
    )
        .prop_map(
            |(kind, id, phone, code, secret, twist, noise, at, quoted)| Row {
                kind,
                id,
                phone,
                code,
                secret,
                twist,
                noise,
                at,
                quoted,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(row(), 0..8),
        proptest::collection::vec((0..8usize, 0..3u8), 0..3),
    )
        .prop_map(
            |(jsonl, fixed_kind, skip_invalid, bom, rows, blanks)| Case {
                jsonl,
                // A fixed kind needs rows of one kind.
                fixed_kind: fixed_kind
                    && !rows.is_empty()
                    && rows.iter().all(|r| r.kind == rows[0].kind),
                skip_invalid,
                bom,
                rows,
                blanks,
            },
        )
}

/// The row's fields, in column order: (name, value, is it the password).
fn fields(r: &Row) -> Vec<(&'static str, String)> {
    let secret = SECRETS[r.secret].to_string();
    let mut f = match KINDS[r.kind] {
        "create-customer" => vec![
            ("customer_id", IDS[r.id].to_string()),
            ("country_code", CODES[r.code].to_string()),
            ("phone_number", PHONES[r.phone].to_string()),
        ],
        "onboard-customer" => vec![
            ("customer_id", IDS[r.id].to_string()),
            ("country_code", CODES[r.code].to_string()),
            ("phone_number", PHONES[r.phone].to_string()),
            ("devices", format!("{}|P/d{}|lamp", r.phone, r.phone)),
        ],
        "create-account" => vec![
            ("account_type", "personal".into()),
            (
                "mail",
                format!("{}@example.com", IDS[r.id].replace(' ', "")),
            ),
            ("password", secret),
            ("phone_num", PHONES[r.phone].to_string()),
            ("country_code", CODES[r.code].to_string()),
            ("area", "HK".into()),
        ],
        _ => vec![
            (
                "email",
                format!("{}@example.com", IDS[r.id].replace(' ', "")),
            ),
            ("mobile", PHONES[r.phone].to_string()),
            ("passwd", secret),
        ],
    };
    if r.twist == 3 {
        f.push(("colour", "red".into()));
    }
    f
}

fn jsonl_line(r: &Row, with_kind: bool) -> String {
    let mut members: Vec<String> = Vec::new();
    if with_kind {
        members.push(format!("\"kind\":\"{}\"", KINDS[r.kind]));
    }
    for (name, value) in fields(r) {
        let is_secret = name == "password" || name == "passwd";
        if name == "devices" {
            let v: Vec<&str> = value.split('|').collect();
            members.push(format!(
                "\"devices\":[{{\"customer_device_no\":\"{}\",\"device_id\":\"{}\",\"product_name\":\"{}\"}}]",
                v[0], v[1], v[2]
            ));
        } else if is_secret && r.twist == 1 {
            members.push(format!("\"{name}\":{NUMERIC_SECRET}"));
        } else {
            members.push(format!("\"{name}\":{}", serde_json::json!(value)));
            if is_secret && r.twist == 2 {
                let other = SECRETS[(r.secret + 1) % SECRETS.len()];
                members.push(format!("\"{name}\":\"{other}\""));
            }
        }
    }
    format!("{{{}}}", members.join(","))
}

fn render(case: &Case) -> Vec<u8> {
    let with_kind = !case.fixed_kind;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut columns: Vec<&str> = Vec::new();
    if !case.jsonl {
        if with_kind {
            columns.push("kind");
        }
        for r in &case.rows {
            for (name, _) in fields(r) {
                if !columns.contains(&name) {
                    columns.push(name);
                }
            }
        }
        lines.push(columns.join(",").into_bytes());
    }
    for (i, r) in case.rows.iter().enumerate() {
        let mut line = if case.jsonl {
            jsonl_line(r, with_kind)
        } else {
            let f = fields(r);
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    let v = match *c {
                        "kind" => KINDS[r.kind].to_string(),
                        c => f
                            .iter()
                            .find(|(n, _)| *n == c)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    };
                    if r.quoted {
                        format!("\"{}\"", v.replace('"', "\"\""))
                    } else {
                        v
                    }
                })
                .collect();
            cells.join(",")
        }
        .into_bytes();
        if !r.noise.is_empty() {
            let at = ((line.len() as f64) * r.at) as usize;
            line.splice(at..at, r.noise.iter().copied());
        }
        lines.push(line);
        for (after, blank) in &case.blanks {
            if *after == i {
                lines.push([&b""[..], b"   ", b"\t\r"][*blank as usize].to_vec());
            }
        }
    }
    let mut out = if case.bom {
        b"\xef\xbb\xbf".to_vec()
    } else {
        Vec::new()
    };
    out.extend(lines.join(&b"\n"[..]));
    out.push(b'\n');
    out
}

fn enqueued_total(redis: &RedisServer) -> u64 {
    let mut conn = redis.connection();
    KINDS
        .iter()
        .filter(|k| **k != "onboard-customer")
        .chain(["bind-devices"].iter())
        .map(|k| {
            let n: Option<u64> = conn
                .hget(
                    onboard_shared::queue::keys::QueueKeys::new(k.parse().expect("a kind"))
                        .counts(),
                    "enqueued",
                )
                .unwrap();
            n.unwrap_or(0)
        })
        .sum()
}

#[test]
fn generated_files_never_panic_exit_0_or_1_and_never_show_a_password() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        let ext = if case.jsonl { "jsonl" } else { "csv" };
        let input = dir.path().join(format!("in.{ext}"));
        let rejects = dir.path().join(format!("rejects.{ext}"));
        let errors = dir.path().join(format!("rejects.{ext}.errors"));
        let _ = std::fs::remove_file(&errors);
        std::fs::write(&input, render(&case)).unwrap();
        let mut args = vec!["backfill", input.to_str().unwrap()];
        if case.fixed_kind {
            args.extend(["--kind", KINDS[case.rows[0].kind]]);
        }
        if case.skip_invalid {
            args.extend(["--skip-invalid", "--rejects", rejects.to_str().unwrap()]);
        }
        let before = enqueued_total(&redis);
        let out = cli(&redis.url(), &args);
        let (o, e) = text(&out);
        let code = out.status.code();
        prop_assert!(!e.contains("panicked"), "{e}");
        prop_assert!(code == Some(0) || code == Some(1), "exit {code:?}: {o}{e}");
        if code == Some(1) {
            prop_assert_eq!(
                enqueued_total(&redis),
                before,
                "exit 1 enqueued something: {}",
                e
            );
        }
        let errors = std::fs::read_to_string(&errors).unwrap_or_default();
        for secret in SECRETS.iter().chain([&NUMERIC_SECRET]) {
            for (what, shown) in [("stdout", &o), ("stderr", &e), ("errors file", &errors)] {
                if shown.contains(secret) {
                    return Err(TestCaseError::fail(format!(
                        "{what} shows {secret}: {shown}"
                    )));
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
