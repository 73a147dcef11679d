//! A job's fields as an operator sees them (the console's job page): personal data masked
//! as in the logs (phones keep their last four digits, e-mails their first letter and
//! domain, names their first letter), secrets never shown, and what identifies the job to
//! the vendor (customer ids, device ids, areas) in full.

use crate::jobs::Job;
use crate::secret::{mask_email, mask_phone};

/// What a secret field shows.
const HIDDEN: &str = "[redacted]";

/// `job`'s fields, in the order of its kind's definition, each with its shown value.
pub fn masked_fields(job: &Job) -> Vec<(&'static str, String)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match job {
        Job::CreateCustomer(j) => vec![
            ("customer_id", j.customer_id.clone()),
            ("country_code", j.country_code.clone()),
            ("phone_number", mask_phone(&j.phone_number)),
        ],
        Job::BindDevices(j) => {
            let mut out = vec![("customer_id", j.customer_id.clone())];
            out.extend(j.devices.iter().map(|d| ("device", d.device_id.clone())));
            out
        }
        Job::CreateAccount(j) => vec![
            ("account_type", j.account_type.as_str().to_string()),
            ("mail", mask_email(&j.mail)),
            ("password", HIDDEN.to_string()),
            ("phone_num", mask_phone(&j.phone_num)),
            ("country_code", j.country_code.clone()),
            ("area", j.area.clone()),
            ("trade_one", opt(&j.trade_one)),
            ("trade_two", opt(&j.trade_two)),
        ],
        Job::RegisterUser(j) => vec![
            ("email", mask_email(&j.email)),
            ("mobile", mask_phone(&j.mobile)),
            ("passwd", HIDDEN.to_string()),
            ("name", first_letter(j.name.as_deref())),
        ],
    }
}

/// A name masked to its first letter (`J***`), or nothing.
fn first_letter(name: Option<&str>) -> String {
    match name.and_then(|n| n.chars().next()) {
        Some(c) => format!("{c}***"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{AccountType, CreateAccountJob};
    use crate::secret::Secret;

    #[test]
    fn no_secret_or_whole_personal_value_is_shown() {
        let job = Job::CreateAccount(CreateAccountJob {
            account_type: AccountType::Personal,
            mail: "alice@example.com".into(),
            password: Secret::new("Sup3r!secret"),
            confirm_password: Secret::new("Sup3r!secret"),
            phone_num: "98765432".into(),
            country_code: "852".into(),
            area: "HK".into(),
            extended: None,
            trade_one: None,
            trade_two: None,
        });
        let shown: String = masked_fields(&job)
            .into_iter()
            .map(|(k, v)| format!("{k}={v};"))
            .collect();
        assert!(!shown.contains("Sup3r!secret"), "{shown}");
        assert!(!shown.contains("alice@"), "{shown}");
        assert!(!shown.contains("98765432"), "{shown}");
        assert!(shown.contains("mail=a***@example.com;"), "{shown}");
        assert!(shown.contains("phone_num=****5432;"), "{shown}");
    }
}
