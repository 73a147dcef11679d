//! Field-level validation of every job payload, run before anything is enqueued.
//!
//! Each rule comes from PROVIDERS.md or the provider's own document (`seeds/`). Validation
//! collects every failing field instead of stopping at the first; each [`FieldError`] names the
//! field by its snake_case JSON name (`phone_num`, `devices[2].device_id`) and says in a few
//! words what the rule is. A rule text never contains the field's value, so secrets never leak
//! through an error message.

use crate::jobs::{BindDevicesJob, CreateAccountJob, CreateCustomerJob, Job, RegisterUserJob};
use std::fmt;

/// The most devices one `bind-devices` job may carry.
pub const MAX_DEVICES: usize = 100;

/// The symbols a CreateAccount password may (and must, at least one) contain.
pub const PASSWORD_SYMBOLS: &str = "!@#$%^&*()";

/// CreateAccount refuses these country codes.
pub const REFUSED_COUNTRY_CODES: [&str; 3] = ["7", "380", "86"];

/// One field that broke one rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// The field's snake_case JSON name, e.g. `phone_num` or `devices[2].device_id`.
    pub field: String,
    /// The rule it broke, short and human, e.g. `must be 1 to 32 digits`.
    pub rule: String,
}

impl FieldError {
    /// A new error.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for FieldError {}

/// Every field error of one payload (never empty when returned as an `Err`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors, in field order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// True when some error names `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    fn push(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.0.push(FieldError::new(field, rule));
    }

    /// Runs `check` on `value` and records its failure under `field`.
    fn check(&mut self, field: &str, value: &str, check: fn(&str) -> Result<(), &'static str>) {
        if let Err(rule) = check(value) {
            self.push(field, rule);
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A payload that can check its own fields.
pub trait Validate {
    /// `Ok(())` when every field is valid, else every field error.
    fn validate(&self) -> Result<(), ValidationErrors>;
}

// ---------------------------------------------------------------------------------------------
// Single-value checks. Each returns the rule text on failure.

fn char_len(s: &str) -> usize {
    s.chars().count()
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// `^[A-Za-z0-9_]{1,32}$`.
fn customer_id(s: &str) -> Result<(), &'static str> {
    if (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err("must be 1 to 32 letters, digits or _")
    }
}

/// 1 to 4 digits, written canonically: no `+`, no leading zero (`086` would reach the
/// provider as another code than `86`; `crate::normalize::country_code` rewrites it).
fn country_code(s: &str) -> Result<(), &'static str> {
    if (1..=4).contains(&s.len()) && all_digits(s) && !s.starts_with('0') {
        Ok(())
    } else {
        Err("must be 1 to 4 digits without + or a leading zero (e.g. 86)")
    }
}

/// 1 to 32 digits.
fn phone_digits(s: &str) -> Result<(), &'static str> {
    if (1..=32).contains(&s.len()) && all_digits(s) {
        Ok(())
    } else {
        Err("must be 1 to 32 digits")
    }
}

/// POLYV's `mobile`: 1 to 32 digits, optionally after one leading `+` (the seed gives no
/// format; an international `+` prefix is accepted).
fn mobile(s: &str) -> Result<(), &'static str> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if (1..=32).contains(&digits.len()) && all_digits(digits) {
        Ok(())
    } else {
        Err("must be 1 to 32 digits, optionally after a leading +")
    }
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a domain of non-empty dotted
/// labels with at least one dot, no whitespace, at most 254 characters.
fn email(s: &str) -> Result<(), &'static str> {
    const RULE: &str =
        "must be a valid e-mail address (name@domain.tld, no spaces, at most 254 characters)";
    if s.is_empty() || char_len(s) > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RULE);
    }
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RULE);
    };
    if local.is_empty() || !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(RULE);
    }
    Ok(())
}

/// CreateAccount's password: 8 to 20 characters of ASCII letters, digits and `!@#$%^&*()`,
/// with at least one of each class and no whitespace.
fn account_password(s: &str) -> Result<(), &'static str> {
    if s.chars().any(char::is_whitespace) {
        return Err("must not contain spaces");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || PASSWORD_SYMBOLS.contains(c))
    {
        return Err("may only contain letters, digits and !@#$%^&*()");
    }
    if !(8..=20).contains(&char_len(s)) {
        return Err("must be 8 to 20 characters");
    }
    let digit = s.chars().any(|c| c.is_ascii_digit());
    let letter = s.chars().any(|c| c.is_ascii_alphabetic());
    let symbol = s.chars().any(|c| PASSWORD_SYMBOLS.contains(c));
    if !(digit && letter && symbol) {
        return Err("must contain a digit, a letter and one of !@#$%^&*()");
    }
    Ok(())
}

/// CreateAccount's `CountryCode`: 1 to 4 digits, not 7, 380 or 86.
fn account_country_code(s: &str) -> Result<(), &'static str> {
    country_code(s)?;
    if REFUSED_COUNTRY_CODES.contains(&s) {
        return Err("is not supported (7, 380 and 86 are refused)");
    }
    Ok(())
}

/// ISO 3166 alpha-2: exactly two uppercase ASCII letters.
fn area(s: &str) -> Result<(), &'static str> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err("must be two uppercase letters (ISO 3166 alpha-2, e.g. HK)")
    }
}

fn non_empty(s: &str) -> Result<(), &'static str> {
    if s.trim().is_empty() {
        Err("must not be empty")
    } else {
        Ok(())
    }
}

fn non_empty_64(s: &str) -> Result<(), &'static str> {
    if s.trim().is_empty() || char_len(s) > 64 {
        Err("must be 1 to 64 characters")
    } else {
        Ok(())
    }
}

/// `ProductId/DeviceName`: exactly one `/`, both parts non-empty, no whitespace.
fn device_id(s: &str) -> Result<(), &'static str> {
    const RULE: &str = "must be ProductId/DeviceName (both parts non-empty, one /, no spaces)";
    if s.chars().any(char::is_whitespace) {
        return Err(RULE);
    }
    match s.split_once('/') {
        Some((product, device))
            if !product.is_empty() && !device.is_empty() && !device.contains('/') =>
        {
            Ok(())
        }
        _ => Err(RULE),
    }
}

/// POLYV's `passwd`: 5 to 16 characters.
fn polyv_passwd(s: &str) -> Result<(), &'static str> {
    if (5..=16).contains(&char_len(s)) {
        Ok(())
    } else {
        Err("must be 5 to 16 characters")
    }
}

// ---------------------------------------------------------------------------------------------

impl Validate for CreateCustomerJob {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        e.check("customer_id", &self.customer_id, customer_id);
        e.check("country_code", &self.country_code, country_code);
        e.check("phone_number", &self.phone_number, phone_digits);
        e.into_result()
    }
}

impl Validate for BindDevicesJob {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        e.check("customer_id", &self.customer_id, customer_id);
        if self.devices.is_empty() || self.devices.len() > MAX_DEVICES {
            e.push("devices", "must have 1 to 100 devices");
        }
        for (i, d) in self.devices.iter().enumerate() {
            e.check(
                &format!("devices[{i}].customer_device_no"),
                &d.customer_device_no,
                non_empty_64,
            );
            e.check(&format!("devices[{i}].device_id"), &d.device_id, device_id);
            e.check(
                &format!("devices[{i}].product_name"),
                &d.product_name,
                non_empty_64,
            );
        }
        e.into_result()
    }
}

impl Validate for CreateAccountJob {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        // account_type is an enum: serde already refused anything but personal/company.
        e.check("mail", &self.mail, email);
        e.check("password", self.password.expose(), account_password);
        if self.confirm_password.expose() != self.password.expose() {
            e.push("confirm_password", "must equal password");
        }
        e.check("phone_num", &self.phone_num, phone_digits);
        e.check("country_code", &self.country_code, account_country_code);
        e.check("area", &self.area, area);
        // extended: the seed (003) sets no format or length limit; passed through as is.
        if let Some(t) = &self.trade_one {
            e.check("trade_one", t, non_empty);
        }
        if let Some(t) = &self.trade_two {
            e.check("trade_two", t, non_empty);
        }
        e.into_result()
    }
}

impl Validate for RegisterUserJob {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        e.check("email", &self.email, email);
        e.check("mobile", &self.mobile, mobile);
        e.check("passwd", self.passwd.expose(), polyv_passwd);
        if let Some(name) = &self.name {
            e.check("name", name, non_empty_64);
        }
        if let Some(industry) = &self.industry {
            e.check("industry", industry, non_empty);
        }
        if matches!(self.sale_id, Some(id) if id < 0) {
            e.push("sale_id", "must not be negative");
        }
        e.into_result()
    }
}

impl Validate for Job {
    fn validate(&self) -> Result<(), ValidationErrors> {
        match self {
            Job::CreateCustomer(j) => j.validate(),
            Job::BindDevices(j) => j.validate(),
            Job::CreateAccount(j) => j.validate(),
            Job::RegisterUser(j) => j.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{AccountType, DeviceInfo};
    use crate::secret::Secret;

    fn customer() -> CreateCustomerJob {
        CreateCustomerJob {
            customer_id: "Customer_100001".into(),
            country_code: "86".into(),
            phone_number: "13900000000".into(),
        }
    }

    fn device(no: &str, id: &str, name: &str) -> DeviceInfo {
        DeviceInfo {
            customer_device_no: no.into(),
            device_id: id.into(),
            product_name: name.into(),
        }
    }

    fn bind() -> BindDevicesJob {
        BindDevicesJob {
            customer_id: "Customer_100001".into(),
            devices: vec![
                device("1001", "lampP1/dev_a", "Desk lamp"),
                device("1002", "plugP2/dev_b", "Smart plug"),
            ],
        }
    }

    fn account() -> CreateAccountJob {
        CreateAccountJob {
            account_type: AccountType::Personal,
            mail: "account@example.com".into(),
            password: Secret::new("ABCabc123!"),
            confirm_password: Secret::new("ABCabc123!"),
            phone_num: "18888888888".into(),
            country_code: "852".into(),
            area: "HK".into(),
            extended: Some("test".into()),
            trade_one: None,
            trade_two: None,
        }
    }

    fn user() -> RegisterUserJob {
        RegisterUserJob {
            email: "user1@example.com".into(),
            mobile: "1889887777".into(),
            passwd: Secret::new("123456"),
            name: Some("Alice".into()),
            industry: Some("company".into()),
            sale_id: Some(7),
        }
    }

    /// Asserts validation fails, naming `field` (and that the value is not in the message).
    #[track_caller]
    fn fails_on(job: &dyn Validate, field: &str) -> ValidationErrors {
        let errors = job.validate().expect_err("expected a validation error");
        assert!(
            errors.has_field(field),
            "expected an error on {field}, got: {errors}"
        );
        errors
    }

    #[test]
    fn valid_examples_pass() {
        assert_eq!(customer().validate(), Ok(()));
        assert_eq!(bind().validate(), Ok(()));
        assert_eq!(account().validate(), Ok(()));
        assert_eq!(user().validate(), Ok(()));
        for job in [
            Job::CreateCustomer(customer()),
            Job::BindDevices(bind()),
            Job::CreateAccount(account()),
            Job::RegisterUser(user()),
        ] {
            assert_eq!(job.validate(), Ok(()), "{:?}", job.kind());
        }
        // Edges that are still valid.
        let mut c = customer();
        c.customer_id = "a".repeat(32);
        c.country_code = "1234".into();
        c.phone_number = "1".repeat(32);
        assert_eq!(c.validate(), Ok(()));
        let mut a = account();
        a.password = Secret::new("a1!aaaaa");
        a.confirm_password = Secret::new("a1!aaaaa");
        a.extended = None;
        a.trade_one = Some("10".into());
        assert_eq!(a.validate(), Ok(()));
        let mut u = user();
        u.mobile = "+85255501234".into();
        u.passwd = Secret::new("x".repeat(16));
        u.name = None;
        u.industry = None;
        u.sale_id = None;
        assert_eq!(u.validate(), Ok(()));
    }

    #[test]
    fn customer_rules() {
        for bad in ["", "has space", "dash-ed", "ünï", &"a".repeat(33)] {
            let mut c = customer();
            c.customer_id = bad.into();
            fails_on(&c, "customer_id");
        }
        for bad in ["", "12345", "+86", "8a", "086", "0"] {
            let mut c = customer();
            c.country_code = bad.into();
            fails_on(&c, "country_code");
        }
        for bad in ["", "139-0000", &"1".repeat(33)] {
            let mut c = customer();
            c.phone_number = bad.into();
            fails_on(&c, "phone_number");
        }
    }

    #[test]
    fn all_errors_are_collected() {
        let c = CreateCustomerJob {
            customer_id: "bad id".into(),
            country_code: "x".into(),
            phone_number: "".into(),
        };
        let errors = c.validate().unwrap_err();
        assert_eq!(errors.len(), 3);
        assert_eq!(
            errors.to_string(),
            "customer_id: must be 1 to 32 letters, digits or _; \
             country_code: must be 1 to 4 digits without + or a leading zero (e.g. 86); \
             phone_number: must be 1 to 32 digits"
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["customer_id", "country_code", "phone_number"]);
    }

    #[test]
    fn bind_devices_rules() {
        let mut b = bind();
        b.customer_id = "no spaces allowed".into();
        fails_on(&b, "customer_id");

        let mut b = bind();
        b.devices.clear();
        fails_on(&b, "devices");

        let mut b = bind();
        b.devices = (0..101)
            .map(|i| device(&i.to_string(), "p/d", "n"))
            .collect();
        fails_on(&b, "devices");

        let mut b = bind();
        b.devices[1].customer_device_no = "".into();
        fails_on(&b, "devices[1].customer_device_no");
        b.devices[1].customer_device_no = "x".repeat(65);
        fails_on(&b, "devices[1].customer_device_no");

        for bad in ["", "nodash", "/dev", "prod/", "a/b/c", "prod/dev ice"] {
            let mut b = bind();
            b.devices[0].device_id = bad.into();
            let errors = fails_on(&b, "devices[0].device_id");
            assert_eq!(errors.len(), 1);
        }

        let mut b = bind();
        b.devices[1].product_name = " ".into();
        fails_on(&b, "devices[1].product_name");
        b.devices[1].product_name = "y".repeat(65);
        fails_on(&b, "devices[1].product_name");
    }

    #[test]
    fn create_account_rules() {
        for bad in [
            "",
            "no-at.example.com",
            "two@@example.com",
            "a@b@example.com",
            "@example.com",
            "a@nodot",
            "a@.com",
            "a@example.",
            "a b@example.com",
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            let mut a = account();
            a.mail = bad.into();
            fails_on(&a, "mail");
        }

        for (bad, rule) in [
            ("Abc12!", "must be 8 to 20 characters"),
            ("Abcdefgh12345678901!x", "must be 8 to 20 characters"),
            (
                "Abcdefgh!",
                "must contain a digit, a letter and one of !@#$%^&*()",
            ),
            (
                "12345678!",
                "must contain a digit, a letter and one of !@#$%^&*()",
            ),
            (
                "Abcdefgh1",
                "must contain a digit, a letter and one of !@#$%^&*()",
            ),
            ("Abc 123!xyz", "must not contain spaces"),
            (
                "Abc123!xyz-",
                "may only contain letters, digits and !@#$%^&*()",
            ),
            (
                "Abc123!xyzé",
                "may only contain letters, digits and !@#$%^&*()",
            ),
        ] {
            let mut a = account();
            a.password = Secret::new(bad);
            a.confirm_password = Secret::new(bad);
            let errors = fails_on(&a, "password");
            assert_eq!(errors.0, vec![FieldError::new("password", rule)], "{bad}");
            // The value never shows up in the message.
            assert!(!errors.to_string().contains(bad));
        }

        let mut a = account();
        a.confirm_password = Secret::new("ABCabc123");
        let errors = fails_on(&a, "confirm_password");
        assert_eq!(errors.len(), 1);

        for bad in ["", "1888-888", "+18888888888", &"1".repeat(33)] {
            let mut a = account();
            a.phone_num = bad.into();
            fails_on(&a, "phone_num");
        }

        for bad in ["7", "380", "86"] {
            let mut a = account();
            a.country_code = bad.into();
            let errors = fails_on(&a, "country_code");
            assert_eq!(
                errors.0[0].rule,
                "is not supported (7, 380 and 86 are refused)"
            );
        }
        for bad in ["", "12345", "+852", "0852", "086"] {
            let mut a = account();
            a.country_code = bad.into();
            fails_on(&a, "country_code");
        }

        for bad in ["", "hk", "H", "HKG", "H1"] {
            let mut a = account();
            a.area = bad.into();
            fails_on(&a, "area");
        }

        let mut a = account();
        a.trade_one = Some("".into());
        fails_on(&a, "trade_one");
        let mut a = account();
        a.trade_two = Some("  ".into());
        fails_on(&a, "trade_two");
    }

    #[test]
    fn register_user_rules() {
        for bad in ["", "nobody", "x@y", "x y@example.com"] {
            let mut u = user();
            u.email = bad.into();
            fails_on(&u, "email");
        }
        for bad in ["", "+", "188-9887", "++1889", &"1".repeat(33)] {
            let mut u = user();
            u.mobile = bad.into();
            fails_on(&u, "mobile");
        }
        for bad in ["1234", &"x".repeat(17)] {
            let mut u = user();
            u.passwd = Secret::new(bad);
            fails_on(&u, "passwd");
        }
        let mut u = user();
        u.name = Some("n".repeat(65));
        fails_on(&u, "name");
        let mut u = user();
        u.name = Some("".into());
        fails_on(&u, "name");
        let mut u = user();
        u.industry = Some("".into());
        fails_on(&u, "industry");
        let mut u = user();
        u.sale_id = Some(-1);
        fails_on(&u, "sale_id");
    }

    #[test]
    fn job_dispatches() {
        let mut a = account();
        a.area = "hk".into();
        let errors = Job::CreateAccount(a).validate().unwrap_err();
        assert_eq!(
            errors.0,
            vec![FieldError::new(
                "area",
                "must be two uppercase letters (ISO 3166 alpha-2, e.g. HK)"
            )]
        );
        let mut u = user();
        u.passwd = Secret::new("");
        assert!(Job::RegisterUser(u)
            .validate()
            .unwrap_err()
            .has_field("passwd"));
    }
}
