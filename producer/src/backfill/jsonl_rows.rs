//! JSON Lines rows: one JSON object per line.

use super::{finish_row, unknown_kind_rule, BackfillRow, RowError, RowKind, Work, MISSING_KIND};
use onboard_shared::jobs::{BindDevicesJob, CreateCustomerJob, DeviceInfo, Job};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};

/// An `onboard-customer` line (without its `kind`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnboardCustomerLine {
    customer_id: String,
    country_code: String,
    phone_number: String,
    devices: Vec<DeviceInfo>,
}

/// The JSON Lines row iterator.
pub(super) struct JsonlRows<R: Read> {
    rdr: BufReader<R>,
    kind: Option<RowKind>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> JsonlRows<R> {
    pub(super) fn new(reader: R, kind: Option<RowKind>) -> Self {
        JsonlRows {
            rdr: BufReader::new(reader),
            kind,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn row(&self, line: u64, text: &str) -> Result<BackfillRow, RowError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| RowError::whole(line, format!("invalid JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(RowError::whole(line, "must be a JSON object"));
        };
        let own_kind = map.remove("kind");
        let kind = match self.kind {
            Some(k) => k,
            None => match own_kind {
                None | Some(Value::Null) => return Err(RowError::new(line, "kind", MISSING_KIND)),
                Some(Value::String(s)) => s
                    .parse::<RowKind>()
                    .map_err(|_| RowError::new(line, "kind", unknown_kind_rule(&s)))?,
                Some(_) => {
                    return Err(RowError::new(
                        line,
                        "kind",
                        unknown_kind_rule("(not a string)"),
                    ))
                }
            },
        };
        match kind {
            RowKind::Job(k) => {
                let probe = map.clone();
                map.insert("kind".to_string(), Value::String(k.as_str().to_string()));
                match serde_json::from_value::<Job>(Value::Object(map)) {
                    Ok(job) => finish_row(line, Work::Job(job), Vec::new()),
                    Err(e) => Err(serde_error(line, &e, &probe)),
                }
            }
            RowKind::OnboardCustomer => {
                let probe = map.clone();
                match serde_json::from_value::<OnboardCustomerLine>(Value::Object(map)) {
                    Ok(o) => {
                        let item = Work::OnboardCustomer {
                            devices: BindDevicesJob {
                                customer_id: o.customer_id.clone(),
                                devices: o.devices,
                            },
                            customer: CreateCustomerJob {
                                customer_id: o.customer_id,
                                country_code: o.country_code,
                                phone_number: o.phone_number,
                            },
                        };
                        finish_row(line, item, Vec::new())
                    }
                    Err(e) => Err(serde_error(line, &e, &probe)),
                }
            }
        }
    }
}

impl<R: Read> Iterator for JsonlRows<R> {
    type Item = Result<BackfillRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.rdr.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    let line = self.line;
                    let bytes = self.buf.trim_ascii();
                    if bytes.is_empty() {
                        continue;
                    }
                    return Some(match std::str::from_utf8(bytes) {
                        Ok(text) => self.row(line, text),
                        Err(_) => Err(RowError::whole(line, "not valid UTF-8")),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(RowError::whole(
                        self.line + 1,
                        format!("cannot read the file: {e}"),
                    )));
                }
            }
        }
        None
    }
}

/// A serde error as a row error, naming the field when the message or the object tells it.
fn serde_error(line: u64, e: &serde_json::Error, object: &Map<String, Value>) -> RowError {
    let msg = e.to_string();
    let field = backticked_after(&msg, "missing field `")
        .or_else(|| backticked_after(&msg, "unknown field `"))
        .or_else(|| {
            // The one enum inside a payload is account_type (kinds are checked before).
            msg.starts_with("unknown variant `")
                .then(|| "account_type".to_string())
                .filter(|_| object.contains_key("account_type"))
        })
        .or_else(|| mistyped_member(object))
        .unwrap_or_else(|| "-".to_string());
    RowError::new(line, field, msg)
}

/// The name in `` prefix`name` `` inside `msg`.
fn backticked_after(msg: &str, prefix: &str) -> Option<String> {
    let rest = &msg[msg.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// The first member whose JSON type cannot be right (for an "invalid type" error).
fn mistyped_member(object: &Map<String, Value>) -> Option<String> {
    for (name, value) in object {
        let ok = match name.as_str() {
            "sale_id" => value.is_i64() || value.is_null(),
            "extended" | "trade_one" | "trade_two" | "name" | "industry" => {
                value.is_string() || value.is_null()
            }
            "devices" => match value {
                Value::Array(items) => {
                    for (i, d) in items.iter().enumerate() {
                        let Value::Object(d) = d else {
                            return Some(format!("devices[{i}]"));
                        };
                        if let Some((k, _)) = d.iter().find(|(_, v)| !v.is_string()) {
                            return Some(format!("devices[{i}].{k}"));
                        }
                    }
                    true
                }
                _ => false,
            },
            _ => value.is_string(),
        };
        if !ok {
            return Some(name.clone());
        }
    }
    None
}
