//! The one input normalisation: what every entry point (the CLI's `enqueue`, backfill rows
//! of either format) applies to a job before validating it, so the same values mean the
//! same job whichever way they came in.
//!
//! * every text field loses its surrounding whitespace; secrets (`password`,
//!   `confirm_password`, `passwd`) are taken verbatim, because silently changing a
//!   password would create an account nobody can log in to (the rules refuse the spaces
//!   instead);
//! * a country code loses a leading `+` and leading zeros (`+86`, `0086` and `086` are all
//!   `86`), so a refused code cannot slip past its rule written another way;
//! * optional text fields that are empty after trimming are absent.
//!
//! The library's own `enqueue` does not normalise: it validates, and the rules refuse a
//! country code that is not written canonically.

use crate::jobs::{BindDevicesJob, CreateAccountJob, CreateCustomerJob, Job, RegisterUserJob};

/// `+86`, `0086`, `086` → `86`. Anything that is not digits after an optional `+` (or only
/// zeros) comes back trimmed but otherwise as it was, for the rule to refuse.
pub fn country_code(raw: &str) -> String {
    let s = raw.trim();
    let digits = s.strip_prefix('+').unwrap_or(s);
    let canonical = digits.trim_start_matches('0');
    if canonical.is_empty() || !canonical.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    canonical.to_string()
}

fn trim(s: &mut String) {
    let t = s.trim();
    if t.len() != s.len() {
        *s = t.to_string();
    }
}

fn trim_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        trim(v);
        if v.is_empty() {
            *s = None;
        }
    }
}

/// Applies the normalisation above to a job in place.
pub fn job(job: &mut Job) {
    match job {
        Job::CreateCustomer(j) => customer(j),
        Job::BindDevices(j) => devices(j),
        Job::CreateAccount(j) => account(j),
        Job::RegisterUser(j) => user(j),
    }
}

/// [`job`] for a `create-customer` payload.
pub fn customer(j: &mut CreateCustomerJob) {
    trim(&mut j.customer_id);
    j.country_code = country_code(&j.country_code);
    trim(&mut j.phone_number);
}

/// [`job`] for a `bind-devices` payload.
pub fn devices(j: &mut BindDevicesJob) {
    trim(&mut j.customer_id);
    for d in &mut j.devices {
        trim(&mut d.customer_device_no);
        trim(&mut d.device_id);
        trim(&mut d.product_name);
    }
}

fn account(j: &mut CreateAccountJob) {
    trim(&mut j.mail);
    trim(&mut j.phone_num);
    j.country_code = country_code(&j.country_code);
    trim(&mut j.area);
    trim_opt(&mut j.extended);
    trim_opt(&mut j.trade_one);
    trim_opt(&mut j.trade_two);
}

fn user(j: &mut RegisterUserJob) {
    trim(&mut j.email);
    trim(&mut j.mobile);
    trim_opt(&mut j.name);
    trim_opt(&mut j.industry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{AccountType, CreateAccountJob};
    use crate::secret::Secret;
    use crate::validation::Validate;

    fn account_with(code: &str) -> Job {
        Job::CreateAccount(CreateAccountJob {
            account_type: AccountType::Personal,
            mail: "a@example.com".into(),
            password: Secret::new("Passw0rd!x"),
            confirm_password: Secret::new("Passw0rd!x"),
            phone_num: "55501234".into(),
            country_code: code.into(),
            area: "HK".into(),
            extended: None,
            trade_one: None,
            trade_two: None,
        })
    }

    #[test]
    fn country_codes_are_canonical_before_the_rules() {
        for (raw, canonical) in [
            ("7", "7"),
            ("07", "7"),
            ("007", "7"),
            ("380", "380"),
            ("0380", "380"),
            ("86", "86"),
            ("086", "86"),
            ("0086", "86"),
            ("+86", "86"),
            (" +852 ", "852"),
        ] {
            assert_eq!(country_code(raw), canonical, "{raw}");
        }
        // Not a code: left for the rule to refuse.
        for raw in ["0", "000", "+", "8a", "++86", ""] {
            assert_eq!(country_code(raw), raw, "{raw}");
        }
    }

    #[test]
    fn every_spelling_of_a_refused_code_is_refused() {
        for raw in ["7", "07", "007", "380", "0380", "86", "086", "0086", "+86"] {
            let mut j = account_with(raw);
            job(&mut j);
            let errors = j.validate().expect_err(raw);
            assert_eq!(errors.0.len(), 1, "{raw}: {errors}");
            assert_eq!(errors.0[0].field, "country_code", "{raw}");
            assert!(
                errors.0[0].rule.contains("not supported"),
                "{raw}: {errors}"
            );
        }
        let mut j = account_with("00852");
        job(&mut j);
        assert_eq!(j.validate(), Ok(()));
    }

    #[test]
    fn text_is_trimmed_and_secrets_are_not() {
        let mut j = account_with(" 852");
        if let Job::CreateAccount(a) = &mut j {
            a.mail = " a@example.com\t".into();
            a.password = Secret::new(" Passw0rd!x");
            a.extended = Some("  ".into());
        }
        job(&mut j);
        let Job::CreateAccount(a) = &j else {
            unreachable!()
        };
        assert_eq!(a.mail, "a@example.com");
        assert_eq!(a.country_code, "852");
        assert_eq!(a.password.expose(), " Passw0rd!x");
        assert_eq!(a.extended, None);
    }
}
