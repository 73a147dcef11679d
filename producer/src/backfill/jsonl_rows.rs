//! JSON Lines rows: one JSON object per line, its members the same fields as the CSV
//! columns (`devices` an array of objects), built by the same builder as CSV rows.

use super::fields::{self, Source};
use super::strict_json::Json;
use super::{finish_row, unknown_kind_rule, BackfillRow, RowError, RowKind, MISSING_KIND};
use onboard_shared::jobs::DeviceInfo;
use onboard_shared::validation::FieldError;
use std::io::{BufRead, BufReader, Read};

/// The JSON Lines row iterator.
pub(super) struct JsonlRows<R: Read> {
    rdr: BufReader<R>,
    kind: Option<RowKind>,
    line: u64,
    /// Bytes read so far: where the next line starts.
    offset: u64,
    buf: Vec<u8>,
    done: bool,
    io_error: Option<std::io::Error>,
}

impl<R: Read> JsonlRows<R> {
    pub(super) fn new(reader: R, kind: Option<RowKind>) -> Self {
        JsonlRows {
            rdr: BufReader::new(reader),
            kind,
            line: 0,
            offset: 0,
            buf: Vec::new(),
            done: false,
            io_error: None,
        }
    }

    pub(super) fn into_inner(self) -> R {
        self.rdr.into_inner()
    }

    pub(super) fn take_io_error(&mut self) -> Option<std::io::Error> {
        self.io_error.take()
    }

    /// One JSON object of the fixed `kind`, on its own (an HTTP request's body).
    pub(super) fn object(text: &str, kind: RowKind) -> Result<BackfillRow, RowError> {
        JsonlRows::new(std::io::empty(), Some(kind)).row(1, text.trim())
    }

    fn row(&self, line: u64, text: &str) -> Result<BackfillRow, RowError> {
        // Only the position: serde_json's syntax errors name no value.
        let value: Json = serde_json::from_str(text)
            .map_err(|e| RowError::whole(line, format!("invalid JSON: {e}")))?;
        if let Some(key) = value.repeated_key() {
            return Err(RowError::new(line, key, "duplicate key"));
        }
        let Json::Object(members) = value else {
            return Err(RowError::whole(line, "must be a JSON object"));
        };
        let own_kind = members.iter().find(|(k, _)| k == "kind").map(|(_, v)| v);
        let kind = match (self.kind, own_kind) {
            (Some(k), _) => k,
            (None, None | Some(Json::Null)) => {
                return Err(RowError::new(line, "kind", MISSING_KIND))
            }
            (None, Some(Json::String(s))) => s
                .trim()
                .parse::<RowKind>()
                .map_err(|_| RowError::new(line, "kind", unknown_kind_rule(s)))?,
            (None, Some(other)) => {
                return Err(RowError::new(
                    line,
                    "kind",
                    format!("must be a string, not {}", other.type_name()),
                ))
            }
        };
        let (members, mut errors) = Members::check(kind, self.kind.is_some(), members);
        let (item, more) = fields::build(kind, &members);
        errors.extend(more);
        finish_row(line, item, errors)
    }
}

/// A JSON object's members once their types were checked: text fields as strings.
struct Members {
    text: Vec<(String, String)>,
    devices: Result<Vec<DeviceInfo>, String>,
}

impl Members {
    /// Sorts the members out; every member of the wrong type, unknown or missing is one
    /// error. A wrong type is named, never shown: the value may be a password.
    fn check(
        kind: RowKind,
        fixed_kind: bool,
        members: Vec<(String, Json)>,
    ) -> (Members, Vec<FieldError>) {
        let (required, optional) = fields::columns(kind);
        let mut errors = Vec::new();
        let mut out = Members {
            text: Vec::new(),
            devices: Err("missing".into()),
        };
        for (name, value) in members {
            if name == "kind" {
                if fixed_kind && !matches!(value, Json::Null) {
                    // --kind fixes the kind; a member saying otherwise is a mistake.
                    if !matches!(&value, Json::String(s) if s.trim() == kind.as_str()) {
                        errors.push(FieldError::new("kind", format!("must be {kind} (--kind)")));
                    }
                }
                continue;
            }
            if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
                let expected: Vec<&str> = required.iter().chain(optional).copied().collect();
                errors.push(FieldError::new(
                    &name,
                    format!("unknown field (expected one of: {})", expected.join(", ")),
                ));
                continue;
            }
            match (name.as_str(), value) {
                (_, Json::Null) => {}
                ("devices", Json::Array(items)) => out.devices = devices(items),
                ("devices", other) => {
                    out.devices = Err(format!("must be an array, not {}", other.type_name()))
                }
                ("sale_id", Json::Number(Some(n))) => out.text.push((name, n.to_string())),
                ("sale_id", Json::Number(None)) => {
                    errors.push(FieldError::new(name, "must be an integer"))
                }
                (_, Json::String(s)) => out.text.push((name, s)),
                (_, other) => errors.push(FieldError::new(
                    name,
                    format!("must be a string, not {}", other.type_name()),
                )),
            }
        }
        for field in required {
            let present = if *field == "devices" {
                !matches!(&out.devices, Err(e) if e == "missing")
            } else {
                out.text.iter().any(|(k, _)| k == field) || errors.iter().any(|e| e.field == *field)
            };
            if !present {
                errors.push(FieldError::new(*field, "missing"));
            }
        }
        (out, errors)
    }
}

impl Source for Members {
    fn text(&self, field: &str) -> Option<&str> {
        self.text
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, String> {
        match &self.devices {
            // Reported once, by the required-member check.
            Err(e) if e == "missing" => Ok(Vec::new()),
            other => other.clone(),
        }
    }
}

/// `devices`: an array of `{customer_device_no, device_id, product_name}` objects.
fn devices(items: Vec<Json>) -> Result<Vec<DeviceInfo>, String> {
    const MEMBERS: [&str; 3] = ["customer_device_no", "device_id", "product_name"];
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Json::Object(members) = item else {
            return Err(format!("[{i}] must be an object, not {}", item.type_name()));
        };
        let mut values: [Option<String>; 3] = [None, None, None];
        for (name, value) in members {
            let Some(slot) = MEMBERS.iter().position(|m| *m == name) else {
                return Err(format!(
                    "[{i}].{name}: unknown field (expected one of: {})",
                    MEMBERS.join(", ")
                ));
            };
            match value {
                Json::String(s) => values[slot] = Some(s),
                other => {
                    return Err(format!(
                        "[{i}].{name} must be a string, not {}",
                        other.type_name()
                    ))
                }
            }
        }
        let [Some(no), Some(id), Some(name)] = values else {
            return Err(format!(
                "[{i}] must have customer_device_no, device_id and product_name"
            ));
        };
        out.push(DeviceInfo {
            customer_device_no: no,
            device_id: id,
            product_name: name,
        });
    }
    Ok(out)
}

impl<R: Read> Iterator for JsonlRows<R> {
    type Item = Result<BackfillRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.rdr.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(n) => {
                    self.line += 1;
                    let line = self.line;
                    let span = self.offset..self.offset + n as u64;
                    self.offset += n as u64;
                    let mut bytes = &self.buf[..];
                    if line == 1 {
                        // A UTF-8 byte order mark, as editors on Windows write one.
                        bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
                    }
                    let row = match std::str::from_utf8(bytes) {
                        Ok(text) if text.trim().is_empty() => continue,
                        Ok(text) => self.row(line, text.trim()),
                        Err(_) => Err(RowError::whole(line, "not valid UTF-8")),
                    };
                    return Some(match row {
                        Ok(row) => Ok(row.at(span)),
                        Err(e) => Err(e.at(span)),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    self.io_error = Some(e);
                }
            }
        }
        None
    }
}
