//! Rows of one file that share a natural key: what becomes of each.
//!
//! Each job's idempotency key is its kind and natural key, so two rows with the same key
//! can never both be enqueued: before, the second silently lost (a file laid out one row
//! per device bound only each customer's first device). Now, for a group of rows that
//! share a key ([`group_key`]), [`resolve`] decides:
//!
//! * identical rows are one job, the later ones reported as duplicates of the first line;
//! * `onboard-customer` rows of one customer with identical customer fields are one
//!   customer whose devices are all of theirs, in file order: one `bind-devices` job;
//! * anything else is a conflict: every row of the group is invalid, each naming the other
//!   line and the field that differs (never its value: it may be a password).

use super::{BackfillRow, RowError, Work};
use onboard_shared::jobs::{CreateCustomerJob, DeviceInfo, Job};
use onboard_shared::validation::MAX_DEVICES;

/// The key rows are grouped by: a customer's rows (create-customer, bind-devices,
/// onboard-customer) share the customer id; an account its mail; a user their e-mail.
pub fn group_key(work: &Work) -> String {
    match work {
        Work::OnboardCustomer { customer, .. } => format!("customer\0{}", customer.customer_id),
        Work::Job(Job::CreateCustomer(c)) => format!("customer\0{}", c.customer_id),
        Work::Job(Job::BindDevices(b)) => format!("customer\0{}", b.customer_id),
        Work::Job(job) => format!("{}\0{}", job.kind(), job.natural_key()),
    }
}

/// What becomes of one row of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// This row's line enqueues the unit that stands for the group (or part of it).
    Enqueue(Work),
    /// Nothing of its own: the same as what line `of` enqueues.
    Duplicate {
        /// The line whose unit includes this row.
        of: u64,
    },
    /// Its devices joined those of line `into`'s customer.
    Merged {
        /// The line that enqueues the merged unit.
        into: u64,
    },
    /// Invalid: it conflicts with another row of the file.
    Conflict(RowError),
}

/// Decides a group of rows that share a [`group_key`], given in file order: one decision
/// per row, by line.
pub fn resolve(rows: &[BackfillRow]) -> Vec<(u64, Decision)> {
    let (mut customers, mut binds, mut onboards) = (Vec::new(), Vec::new(), Vec::new());
    let mut others = Vec::new();
    for row in rows {
        match &row.item {
            Work::Job(Job::CreateCustomer(_)) => customers.push(row),
            Work::Job(Job::BindDevices(_)) => binds.push(row),
            Work::OnboardCustomer { .. } => onboards.push(row),
            Work::Job(_) => others.push(row),
        }
    }
    if onboards.is_empty() {
        let mut out = identical(&customers);
        out.extend(identical(&binds));
        out.extend(identical(&others));
        return out;
    }
    if let Some(bind) = binds.first() {
        return conflict(rows, onboards[0].line, bind.line, "kind");
    }
    onboard(rows, &customers, &onboards)
}

/// Rows that must be identical: the first enqueues, the others are its duplicates.
fn identical(rows: &[&BackfillRow]) -> Vec<(u64, Decision)> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    for row in &rows[1..] {
        if row.item != first.item {
            let field = differing_field(&first.item, &row.item);
            let group: Vec<BackfillRow> = rows.iter().map(|r| (*r).clone()).collect();
            return conflict(&group, first.line, row.line, &field);
        }
    }
    let mut out = vec![(first.line, Decision::Enqueue(first.item.clone()))];
    out.extend(
        rows[1..]
            .iter()
            .map(|r| (r.line, Decision::Duplicate { of: first.line })),
    );
    out
}

/// One customer onboarded by one or more rows (plus create-customer rows that repeat it).
fn onboard(
    rows: &[BackfillRow],
    customers: &[&BackfillRow],
    onboards: &[&BackfillRow],
) -> Vec<(u64, Decision)> {
    let customer_of = |row: &BackfillRow| -> CreateCustomerJob {
        match &row.item {
            Work::OnboardCustomer { customer, .. } => customer.clone(),
            Work::Job(Job::CreateCustomer(c)) => c.clone(),
            _ => unreachable!("only customer rows are passed"),
        }
    };
    let mut anchors: Vec<&BackfillRow> = customers.iter().chain(onboards).copied().collect();
    anchors.sort_by_key(|r| r.line);
    let anchor = anchors[0];
    let customer = customer_of(anchor);
    for row in &anchors[1..] {
        let other = customer_of(row);
        if other != customer {
            let field = differing_field(
                &Work::Job(Job::CreateCustomer(customer.clone())),
                &Work::Job(Job::CreateCustomer(other)),
            );
            return conflict(rows, anchor.line, row.line, &field);
        }
    }
    // Every device once, in file order; a device listed again must be the same device.
    let mut devices: Vec<(DeviceInfo, u64)> = Vec::new();
    let mut out = Vec::new();
    for row in onboards {
        let Work::OnboardCustomer { devices: bind, .. } = &row.item else {
            continue;
        };
        let mut added = false;
        for d in &bind.devices {
            let same = devices.iter().find(|(seen, _)| {
                seen.device_id == d.device_id || seen.customer_device_no == d.customer_device_no
            });
            match same {
                Some((seen, _)) if seen == d => {}
                Some((_, line)) => return conflict(rows, *line, row.line, "devices"),
                None => {
                    devices.push((d.clone(), row.line));
                    added = true;
                }
            }
        }
        if row.line != anchor.line {
            out.push((
                row.line,
                if added {
                    Decision::Merged { into: anchor.line }
                } else {
                    Decision::Duplicate { of: anchor.line }
                },
            ));
        }
    }
    if devices.len() > MAX_DEVICES {
        let rule = format!(
            "these rows bind {} devices to one customer together; at most {MAX_DEVICES}",
            devices.len()
        );
        return rows
            .iter()
            .map(|r| {
                let e = RowError::new(r.line, "devices", rule.clone()).at(r.span.clone());
                (r.line, Decision::Conflict(e))
            })
            .collect();
    }
    for row in customers {
        if row.line != anchor.line {
            out.push((row.line, Decision::Duplicate { of: anchor.line }));
        }
    }
    let mut bind = match &onboards[0].item {
        Work::OnboardCustomer { devices, .. } => devices.clone(),
        _ => unreachable!("onboard rows only"),
    };
    bind.devices = devices.into_iter().map(|(d, _)| d).collect();
    out.push((
        anchor.line,
        Decision::Enqueue(Work::OnboardCustomer {
            customer,
            devices: bind,
        }),
    ));
    out.sort_by_key(|(line, _)| *line);
    out
}

/// Every row of the group is invalid: line `a` and line `b` differ in `field`.
fn conflict(rows: &[BackfillRow], a: u64, b: u64, field: &str) -> Vec<(u64, Decision)> {
    let key = match rows.first().map(|r| &r.item) {
        Some(Work::Job(Job::CreateAccount(_))) => "mail",
        Some(Work::Job(Job::RegisterUser(_))) => "email",
        _ => "customer_id",
    };
    rows.iter()
        .map(|r| {
            let other = if r.line == a { b } else { a };
            let rule = if field == "kind" {
                format!(
                    "line {other} is a row of another kind for the same customer: give all of \
                     a customer's devices on onboard-customer rows, or none"
                )
            } else {
                format!("conflicts with line {other}: the same {key} with a different {field}")
            };
            let e = RowError::new(r.line, field, rule).at(r.span.clone());
            (r.line, Decision::Conflict(e))
        })
        .collect()
}

/// A field whose value differs between two units of the same key (`password` rather
/// than the `confirm_password` that follows it).
fn differing_field(a: &Work, b: &Work) -> String {
    let fields = |w: &Work| -> serde_json::Map<String, serde_json::Value> {
        let v = match w {
            Work::Job(job) => serde_json::to_value(job),
            Work::OnboardCustomer { customer, devices } => {
                serde_json::to_value(customer).map(|mut v| {
                    v["devices"] = serde_json::json!(devices.devices);
                    v
                })
            }
        };
        match v {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    };
    let (a, b) = (fields(a), fields(b));
    if a.get("kind") != b.get("kind") {
        return "kind".into();
    }
    let differ: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    differ
        .iter()
        .find(|k| k.as_str() != "confirm_password")
        .or(differ.first())
        .map(|k| k.to_string())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backfill::{read_rows, FileFormat, RowKind};

    fn rows(text: &str, kind: Option<RowKind>) -> Vec<BackfillRow> {
        read_rows(text.as_bytes(), FileFormat::Csv, kind)
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    const ONBOARD: Option<RowKind> = Some(RowKind::OnboardCustomer);
    const HEADER: &str = "customer_id,country_code,phone_number,devices\n";

    #[test]
    fn one_row_per_device_is_one_bind_of_every_device() {
        let group = rows(
            &format!(
                "{HEADER}c1,86,139,1|P/d1|lamp\nc1,86,139,2|P/d2|plug\nc1,86,139,1|P/d1|lamp\n"
            ),
            ONBOARD,
        );
        let d = resolve(&group);
        let Decision::Enqueue(Work::OnboardCustomer { devices, .. }) = &d[0].1 else {
            panic!("{d:?}")
        };
        let ids: Vec<&str> = devices
            .devices
            .iter()
            .map(|d| d.device_id.as_str())
            .collect();
        assert_eq!(ids, ["P/d1", "P/d2"]);
        assert_eq!(d[1], (3, Decision::Merged { into: 2 }));
        assert_eq!(d[2], (4, Decision::Duplicate { of: 2 }));
    }

    #[test]
    fn identical_rows_are_one_job() {
        let group = rows(
            "customer_id,country_code,phone_number\nc1,86,139\n c1 ,086,139\n",
            Some(RowKind::Job(onboard_shared::jobs::JobKind::CreateCustomer)),
        );
        let d = resolve(&group);
        assert!(matches!(d[0], (2, Decision::Enqueue(_))), "{d:?}");
        assert_eq!(d[1], (3, Decision::Duplicate { of: 2 }));
    }

    #[test]
    fn another_phone_for_the_same_customer_conflicts_naming_both_lines() {
        let group = rows(
            &format!("{HEADER}c1,86,139,1|P/d1|lamp\nc1,86,138,2|P/d2|plug\n"),
            ONBOARD,
        );
        let d = resolve(&group);
        for (line, other) in [(2, 3), (3, 2)] {
            let (_, Decision::Conflict(e)) = d.iter().find(|(l, _)| *l == line).unwrap() else {
                panic!("{d:?}")
            };
            assert_eq!(e.field, "phone_number");
            assert!(e.rule.contains(&format!("line {other}")), "{e}");
            assert!(!e.rule.contains("138"), "no value in the rule: {e}");
        }
    }

    #[test]
    fn the_same_mail_with_another_password_conflicts_without_showing_it() {
        let text = "account_type,mail,password,phone_num,country_code,area\n\
            personal,a@example.com,Passw0rd!1,555,852,HK\n\
            personal,a@example.com,Passw0rd!2,555,852,HK\n";
        let group = rows(
            text,
            Some(RowKind::Job(onboard_shared::jobs::JobKind::CreateAccount)),
        );
        let d = resolve(&group);
        let Decision::Conflict(e) = &d[1].1 else {
            panic!("{d:?}")
        };
        assert_eq!(e.field, "password");
        assert!(!e.to_string().contains("Passw0rd"), "{e}");
    }

    #[test]
    fn a_device_listed_twice_differently_conflicts() {
        let group = rows(
            &format!("{HEADER}c1,86,139,1|P/d1|lamp\nc1,86,139,1|P/d9|lamp\n"),
            ONBOARD,
        );
        assert!(resolve(&group)
            .iter()
            .all(|(_, d)| matches!(d, Decision::Conflict(e) if e.field == "devices")));
    }

    #[test]
    fn bind_rows_beside_onboard_rows_conflict() {
        let text = "kind,customer_id,country_code,phone_number,devices\n\
            onboard-customer,c1,86,139,1|P/d1|lamp\nbind-devices,c1,,,2|P/d2|plug\n";
        let d = resolve(&rows(text, None));
        assert!(d
            .iter()
            .all(|(_, d)| matches!(d, Decision::Conflict(e) if e.field == "kind")));
    }

    #[test]
    fn more_than_the_device_limit_together_is_refused() {
        let mut text = HEADER.to_string();
        for i in 0..=MAX_DEVICES {
            text.push_str(&format!("c1,86,139,{i}|P/d{i}|lamp\n"));
        }
        let d = resolve(&rows(&text, ONBOARD));
        assert_eq!(d.len(), MAX_DEVICES + 1);
        assert!(d.iter().all(|(_, d)| matches!(d, Decision::Conflict(_))));
    }
}
