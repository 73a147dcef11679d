//! One row's values by field name, whatever the file's format, and the one builder that
//! turns them into a unit of work. CSV cells and JSON members both end here, so the same
//! values make the same job in either format (the normalisation is documented in
//! `onboard_shared::normalize` and the module docs of `backfill`).

use super::{RowKind, Work};
use onboard_shared::jobs::{
    AccountType, BindDevicesJob, CreateAccountJob, CreateCustomerJob, DeviceInfo, Job, JobKind,
    RegisterUserJob,
};
use onboard_shared::normalize;
use onboard_shared::secret::Secret;
use onboard_shared::validation::FieldError;

/// The columns (CSV) or members (JSON Lines) of one row kind: (required, optional).
pub(super) fn columns(kind: RowKind) -> (&'static [&'static str], &'static [&'static str]) {
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

/// The columns a row may name: those of the fixed kind, or of every kind; and `kind`.
pub(super) fn allowed_columns(kind: Option<RowKind>) -> Vec<&'static str> {
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

/// Where a row's values come from.
pub(super) trait Source {
    /// The text of a field; `None` when the field is absent (or null in JSON).
    fn text(&self, field: &str) -> Option<&str>;
    /// The `devices` field, parsed; `Err` holds the rule it broke.
    fn devices(&self) -> Result<Vec<DeviceInfo>, String>;
}

/// Builds a row's unit of work from its values. Values that cannot be read become
/// placeholders plus an error (validation then skips what only repeats them).
pub(super) fn build(kind: RowKind, src: &dyn Source) -> (Work, Vec<FieldError>) {
    let mut errors = Vec::new();
    let text = |field: &str| src.text(field).unwrap_or("").to_string();
    let opt = |field: &str| src.text(field).map(str::to_string);
    let devices = |errors: &mut Vec<FieldError>| match src.devices() {
        Ok(d) => d,
        Err(rule) => {
            errors.push(FieldError::new("devices", rule));
            Vec::new()
        }
    };
    let customer = || CreateCustomerJob {
        customer_id: text("customer_id"),
        country_code: text("country_code"),
        phone_number: text("phone_number"),
    };
    let mut item = match kind {
        RowKind::Job(JobKind::CreateCustomer) => Work::Job(Job::CreateCustomer(customer())),
        RowKind::Job(JobKind::BindDevices) => Work::Job(Job::BindDevices(BindDevicesJob {
            customer_id: text("customer_id"),
            devices: devices(&mut errors),
        })),
        RowKind::OnboardCustomer => {
            let customer = customer();
            Work::OnboardCustomer {
                devices: BindDevicesJob {
                    customer_id: customer.customer_id.clone(),
                    devices: devices(&mut errors),
                },
                customer,
            }
        }
        RowKind::Job(JobKind::CreateAccount) => {
            let account_type = match text("account_type").trim().to_ascii_lowercase().as_str() {
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
            let password = text("password");
            // An absent or empty confirm_password means "the same as password".
            let confirm = opt("confirm_password")
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| password.clone());
            Work::Job(Job::CreateAccount(CreateAccountJob {
                account_type,
                mail: text("mail"),
                password: Secret::new(password),
                confirm_password: Secret::new(confirm),
                phone_num: text("phone_num"),
                country_code: text("country_code"),
                area: text("area"),
                extended: opt("extended"),
                trade_one: opt("trade_one"),
                trade_two: opt("trade_two"),
            }))
        }
        RowKind::Job(JobKind::RegisterUser) => {
            let sale_id = match opt("sale_id").as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) => match s.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        errors.push(FieldError::new("sale_id", "must be an integer"));
                        None
                    }
                },
            };
            Work::Job(Job::RegisterUser(RegisterUserJob {
                email: text("email"),
                mobile: text("mobile"),
                passwd: Secret::new(text("passwd")),
                name: opt("name"),
                industry: opt("industry"),
                sale_id,
            }))
        }
    };
    match &mut item {
        Work::Job(job) => normalize::job(job),
        Work::OnboardCustomer { customer, devices } => {
            normalize::customer(customer);
            normalize::devices(devices);
        }
    }
    (item, errors)
}

/// Splits a CSV `devices` cell: `no|product/device|name;no|product/device|name`.
pub(super) fn parse_devices_cell(cell: &str) -> Result<Vec<DeviceInfo>, String> {
    let mut out = Vec::new();
    for (i, entry) in cell.split(';').map(str::trim).enumerate() {
        if entry.is_empty() {
            // Allows a trailing `;` (and an empty cell: no devices, which validation refuses).
            continue;
        }
        let parts: Vec<&str> = entry.split('|').collect();
        let [no, id, name] = parts.as_slice() else {
            return Err(format!(
                "device {} has {} part(s), expected 3: write each device as \
                 customer_device_no|ProductId/DeviceName|product_name, separated by ;",
                i + 1,
                parts.len()
            ));
        };
        out.push(DeviceInfo {
            customer_device_no: no.to_string(),
            device_id: id.to_string(),
            product_name: name.to_string(),
        });
    }
    Ok(out)
}
