//! CSV rows: a header row of snake_case field names, then one row per job.

use super::{
    finish_row, parse_devices_cell, unknown_kind_rule, BackfillRow, RowError, RowKind, Work,
    MISSING_KIND,
};
use onboard_shared::jobs::{
    AccountType, BindDevicesJob, CreateAccountJob, CreateCustomerJob, Job, JobKind, RegisterUserJob,
};
use onboard_shared::secret::Secret;
use onboard_shared::validation::FieldError;
use std::collections::HashMap;
use std::io::Read;

/// The columns of one row kind: (required, optional).
fn columns(kind: RowKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        RowKind::Job(JobKind::CreateCustomer) => {
            (&["customer_id", "country_code", "phone_number"], &[])
        }
        RowKind::Job(JobKind::BindDevices) => (&["customer_id", "devices"], &[]),
        RowKind::Job(JobKind::CreateAccount) => (
            &[
                "account_type",
                "mail",
                "password",
                "phone_num",
                "country_code",
                "area",
            ],
            &["confirm_password", "extended", "trade_one", "trade_two"],
        ),
        RowKind::Job(JobKind::RegisterUser) => (
            &["email", "mobile", "passwd"],
            &["name", "industry", "sale_id"],
        ),
        RowKind::OnboardCustomer => (
            &["customer_id", "country_code", "phone_number", "devices"],
            &[],
        ),
    }
}

/// The columns a header may name: those of the fixed kind, or of every kind; and `kind`.
fn allowed_columns(kind: Option<RowKind>) -> Vec<&'static str> {
    let kinds: Vec<RowKind> = match kind {
        Some(k) => vec![k],
        None => RowKind::ALL.to_vec(),
    };
    let mut out: Vec<&'static str> = Vec::new();
    for k in kinds {
        let (req, opt) = columns(k);
        for c in req.iter().chain(opt) {
            if !out.contains(c) {
                out.push(c);
            }
        }
    }
    out.push("kind");
    out
}

enum State {
    Header,
    Rows,
    Done,
}

/// The CSV row iterator.
pub(super) struct CsvRows<R: Read> {
    rdr: csv::Reader<R>,
    kind: Option<RowKind>,
    state: State,
    record: csv::ByteRecord,
    /// Column name -> index.
    index: HashMap<String, usize>,
    /// The decoded cells of the current row (reused).
    cells: Vec<String>,
}

impl<R: Read> CsvRows<R> {
    pub(super) fn new(reader: R, kind: Option<RowKind>) -> Self {
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false) // read by hand, to report header problems at their line
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(reader);
        CsvRows {
            rdr,
            kind,
            state: State::Header,
            record: csv::ByteRecord::new(),
            index: HashMap::new(),
            cells: Vec::new(),
        }
    }

    /// Reads and checks the header row. `Err` ends the iteration.
    fn read_header(&mut self) -> Result<(), RowError> {
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return Err(RowError::whole(1, "empty file: no header row")),
            Err(e) => return Err(csv_error(&e, 1)),
        }
        let line = record_line(&self.record, 1);
        let allowed = allowed_columns(self.kind);
        for (i, raw) in self.record.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| {
                RowError::whole(line, format!("header column {} is not valid UTF-8", i + 1))
            })?;
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}').trim()
            } else {
                name
            };
            let name = name.to_ascii_lowercase();
            if !allowed.contains(&name.as_str()) {
                return Err(RowError::new(
                    line,
                    if name.is_empty() {
                        "-".to_string()
                    } else {
                        name.clone()
                    },
                    format!(
                        "unknown column{} (expected one of: {})",
                        if name.is_empty() {
                            " with an empty name"
                        } else {
                            ""
                        },
                        allowed.join(", ")
                    ),
                ));
            }
            if self.index.insert(name.clone(), i).is_some() {
                return Err(RowError::new(line, name, "duplicate column"));
            }
        }
        if let Some(kind) = self.kind {
            let (required, _) = columns(kind);
            if let Some(missing) = required.iter().find(|c| !self.index.contains_key(**c)) {
                return Err(RowError::new(
                    line,
                    *missing,
                    format!(
                        "missing column (required for {kind} rows: {})",
                        required.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Turns the current record into a row.
    fn row(&mut self) -> Result<BackfillRow, RowError> {
        let line = record_line(&self.record, 0);
        self.cells.clear();
        for (i, raw) in self.record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(s) => self.cells.push(s.to_string()),
                Err(_) => {
                    let column = self
                        .index
                        .iter()
                        .find(|(_, &j)| j == i)
                        .map(|(c, _)| c.as_str())
                        .unwrap_or("?");
                    return Err(RowError::whole(
                        line,
                        format!("not valid UTF-8 (in column `{column}`)"),
                    ));
                }
            }
        }
        let cells = Cells {
            index: &self.index,
            cells: &self.cells,
        };
        let kind = match self.kind {
            Some(k) => k,
            None => match cells.opt("kind") {
                None => return Err(RowError::new(line, "kind", MISSING_KIND)),
                Some(k) => k
                    .parse::<RowKind>()
                    .map_err(|_| RowError::new(line, "kind", unknown_kind_rule(k)))?,
            },
        };
        if self.kind.is_none() {
            let (required, _) = columns(kind);
            if let Some(missing) = required.iter().find(|c| !self.index.contains_key(**c)) {
                return Err(RowError::new(
                    line,
                    *missing,
                    format!("missing column (required for {kind} rows)"),
                ));
            }
        }
        let (item, errors) = build(kind, &cells);
        finish_row(line, item, errors)
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<BackfillRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.state {
                State::Done => return None,
                State::Header => match self.read_header() {
                    Ok(()) => self.state = State::Rows,
                    Err(e) => {
                        self.state = State::Done;
                        return Some(Err(e));
                    }
                },
                State::Rows => {
                    return match self.rdr.read_byte_record(&mut self.record) {
                        Ok(true) => Some(self.row()),
                        Ok(false) => {
                            self.state = State::Done;
                            None
                        }
                        Err(e) => {
                            // A wrong field count leaves the reader at the next record; any
                            // other error (I/O, ...) may repeat forever: stop after it.
                            if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                                self.state = State::Done;
                            }
                            Some(Err(csv_error(&e, 0)))
                        }
                    };
                }
            }
        }
    }
}

/// The line a record starts on.
fn record_line(record: &csv::ByteRecord, fallback: u64) -> u64 {
    record.position().map(|p| p.line()).unwrap_or(fallback)
}

/// A csv error as a whole-row error.
fn csv_error(e: &csv::Error, fallback_line: u64) -> RowError {
    let line = e.position().map(|p| p.line()).unwrap_or(fallback_line);
    let rule = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "has {len} field(s), expected {expected_len} like the header \
             (a stray comma, or an unbalanced quote?)"
        ),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        csv::ErrorKind::Io(io) => format!("cannot read the file: {io}"),
        _ => format!("malformed CSV: {e}"),
    };
    RowError::whole(line, rule)
}

/// The cells of one row, by column name.
struct Cells<'a> {
    index: &'a HashMap<String, usize>,
    cells: &'a [String],
}

impl Cells<'_> {
    /// The cell, `""` when the column is absent.
    fn get(&self, column: &str) -> &str {
        self.index
            .get(column)
            .and_then(|&i| self.cells.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The cell, `None` when the column is absent or the cell empty.
    fn opt(&self, column: &str) -> Option<&str> {
        Some(self.get(column)).filter(|s| !s.is_empty())
    }

    fn string(&self, column: &str) -> String {
        self.get(column).to_string()
    }

    fn opt_string(&self, column: &str) -> Option<String> {
        self.opt(column).map(str::to_string)
    }
}

/// Builds the row's item; cells that cannot be read become placeholders plus an error.
fn build(kind: RowKind, c: &Cells<'_>) -> (Work, Vec<FieldError>) {
    let mut errors = Vec::new();
    let devices = |errors: &mut Vec<FieldError>| match parse_devices_cell(c.get("devices")) {
        Ok(d) => d,
        Err(rule) => {
            errors.push(FieldError::new("devices", rule));
            Vec::new()
        }
    };
    let item = match kind {
        RowKind::Job(JobKind::CreateCustomer) => Work::Job(Job::CreateCustomer(customer(c))),
        RowKind::Job(JobKind::BindDevices) => Work::Job(Job::BindDevices(BindDevicesJob {
            customer_id: c.string("customer_id"),
            devices: devices(&mut errors),
        })),
        RowKind::OnboardCustomer => {
            let customer = customer(c);
            Work::OnboardCustomer {
                devices: BindDevicesJob {
                    customer_id: customer.customer_id.clone(),
                    devices: devices(&mut errors),
                },
                customer,
            }
        }
        RowKind::Job(JobKind::CreateAccount) => {
            let account_type = match c.get("account_type").to_ascii_lowercase().as_str() {
                "personal" => AccountType::Personal,
                "company" => AccountType::Company,
                _ => {
                    errors.push(FieldError::new(
                        "account_type",
                        "must be personal or company",
                    ));
                    AccountType::Personal
                }
            };
            let password = c.string("password");
            let confirm = c
                .opt_string("confirm_password")
                .unwrap_or_else(|| password.clone());
            Work::Job(Job::CreateAccount(CreateAccountJob {
                account_type,
                mail: c.string("mail"),
                password: Secret::new(password),
                confirm_password: Secret::new(confirm),
                phone_num: c.string("phone_num"),
                country_code: c.string("country_code"),
                area: c.string("area"),
                extended: c.opt_string("extended"),
                trade_one: c.opt_string("trade_one"),
                trade_two: c.opt_string("trade_two"),
            }))
        }
        RowKind::Job(JobKind::RegisterUser) => {
            let sale_id = match c.opt("sale_id") {
                None => None,
                Some(s) => match s.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        errors.push(FieldError::new("sale_id", "must be an integer"));
                        None
                    }
                },
            };
            Work::Job(Job::RegisterUser(RegisterUserJob {
                email: c.string("email"),
                mobile: c.string("mobile"),
                passwd: Secret::new(c.string("passwd")),
                name: c.opt_string("name"),
                industry: c.opt_string("industry"),
                sale_id,
            }))
        }
    };
    (item, errors)
}

fn customer(c: &Cells<'_>) -> CreateCustomerJob {
    CreateCustomerJob {
        customer_id: c.string("customer_id"),
        country_code: c.string("country_code"),
        phone_number: c.string("phone_number"),
    }
}
