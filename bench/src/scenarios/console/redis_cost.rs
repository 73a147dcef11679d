//! What Redis ran while the console's pages loaded: `INFO commandstats` deltas (every
//! command, including those scripts call) and `SLOWLOG` at threshold 0 (each top-level
//! command with its arguments), compared between a small and a full backlog, with the
//! reads that could grow with the queue flagged: whole-collection reads (KEYS, SCAN, HGETALL,
//! SMEMBERS, ...), ranges without a bound, and commands whose cost per call grew.

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Commands that read a whole collection (or walk the keyspace), flagged by name.
const WHOLE_READS: [&str; 10] = [
    "keys", "scan", "sscan", "hscan", "zscan", "hgetall", "smembers", "hkeys", "hvals", "sort",
];
/// A range of more items than this is flagged.
const MAX_SPAN: i64 = 1_000;
/// Our own commands, left out of the figures.
const OURS: [&str; 3] = ["info", "config", "slowlog"];

/// One command's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stat {
    /// Calls.
    pub calls: u64,
    /// Microseconds in all.
    pub usec: u64,
    /// Microseconds per call.
    pub usec_per_call: f64,
}

/// Counters per command name (`zrange`, `client|setname`, ...).
pub type CommandCosts = BTreeMap<String, Stat>;

/// What the top-level commands' arguments showed.
#[derive(Debug, Clone, Default)]
pub struct RangeCheck {
    /// Top-level commands looked at.
    pub checked: u64,
    /// Unbounded ranges and whole reads (keys by their shape), each once with how often
    /// it ran.
    pub found: BTreeMap<String, u64>,
    /// Per command and first key's shape (`EVALSHA 1a2b3c4d onboard:{iot}:<kind>:...`):
    /// calls, total and longest duration in microseconds, from the slowlog.
    pub durations: BTreeMap<String, (u64, u64, u64)>,
}

impl RangeCheck {
    /// The `n` command shapes with the longest mean duration: (shape, calls, mean us,
    /// max us).
    pub fn slowest(&self, n: usize) -> Vec<(String, u64, f64, u64)> {
        let mut all: Vec<_> = self
            .durations
            .iter()
            .map(|(k, (calls, total, max))| {
                (k.clone(), *calls, *total as f64 / *calls as f64, *max)
            })
            .collect();
        all.sort_by(|a, b| b.2.total_cmp(&a.2));
        all.truncate(n);
        all
    }
}

/// A key with its ids (ULIDs, batch and job ids) written `<id>`; with `kinds`, job kinds
/// and provider tags too (`onboard:{<p>}:<kind>:dead-codes`), so keys of one shape group.
pub fn shape(key: &str, kinds: bool) -> String {
    key.split(':')
        .map(|seg| {
            let tail = seg.rsplit('_').next().unwrap_or(seg);
            if tail.len() == 26 && tail.chars().all(|c| c.is_ascii_alphanumeric()) {
                "<id>".to_string()
            } else if kinds && seg.starts_with('{') {
                "{<p>}".to_string()
            } else if kinds
                && onboard_shared::jobs::JobKind::ALL
                    .iter()
                    .any(|k| k.as_str() == seg)
            {
                "<kind>".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// A connection without a response timeout (SLOWLOG GET of a round can be large).
pub async fn connect(url: &str) -> anyhow::Result<MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    Ok(client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?)
}

/// `INFO commandstats` parsed.
pub fn parse_commandstats(text: &str) -> CommandCosts {
    let mut out = CommandCosts::new();
    for line in text.lines() {
        let Some((name, fields)) = line
            .trim()
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let mut stat = Stat::default();
        for field in fields.split(',') {
            match field.split_once('=') {
                Some(("calls", v)) => stat.calls = v.parse().unwrap_or(0),
                Some(("usec", v)) => stat.usec = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        out.insert(name.to_string(), stat);
    }
    out
}

async fn commandstats(conn: &mut MultiplexedConnection) -> anyhow::Result<CommandCosts> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .context("INFO commandstats")?;
    Ok(parse_commandstats(&text))
}

/// Starts a round: every command into the slowlog, and the counters so far.
pub async fn start(conn: &mut MultiplexedConnection) -> anyhow::Result<CommandCosts> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(1_000_000)
        .query_async::<()>(conn)
        .await?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query_async::<()>(conn)
        .await?;
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(conn)
        .await?;
    commandstats(conn).await
}

/// Ends a round: the counters' deltas since `before` and the arguments' check.
pub async fn finish(
    conn: &mut MultiplexedConnection,
    before: &CommandCosts,
) -> anyhow::Result<(CommandCosts, RangeCheck)> {
    let after = commandstats(conn).await?;
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(conn)
        .await
        .context("SLOWLOG GET")?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(10_000)
        .query_async::<()>(conn)
        .await?;
    let mut delta = CommandCosts::new();
    for (name, a) in &after {
        if OURS
            .iter()
            .any(|o| name == o || name.starts_with(&format!("{o}|")))
        {
            continue;
        }
        let b = before.get(name).copied().unwrap_or_default();
        let calls = a.calls.saturating_sub(b.calls);
        if calls == 0 {
            continue;
        }
        let usec = a.usec.saturating_sub(b.usec);
        delta.insert(
            name.clone(),
            Stat {
                calls,
                usec,
                usec_per_call: usec as f64 / calls as f64,
            },
        );
    }
    let mut check = RangeCheck::default();
    for entry in entries {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let Some(redis::Value::Array(args)) = fields.get(3) else {
            continue;
        };
        let micros = match fields.get(2) {
            Some(redis::Value::Int(us)) => (*us).max(0) as u64,
            _ => 0,
        };
        let args: Vec<String> = args
            .iter()
            .filter_map(|a| redis::from_redis_value::<String>(a.clone()).ok())
            .collect();
        let Some(cmd) = args.first().map(|c| c.to_lowercase()) else {
            continue;
        };
        if OURS.contains(&cmd.as_str()) {
            continue;
        }
        check.checked += 1;
        if let Some(why) = unbounded(&args) {
            *check.found.entry(why).or_default() += 1;
        }
        let first_key = match cmd.as_str() {
            "evalsha" | "eval" => format!(
                "{} {}",
                args.get(1)
                    .map(|s| &s[..s.len().min(8)])
                    .unwrap_or_default(),
                args.get(3).map(|k| shape(k, false)).unwrap_or_default()
            ),
            _ => args.get(1).map(|k| shape(k, false)).unwrap_or_default(),
        };
        let slot = check
            .durations
            .entry(format!("{} {first_key}", cmd.to_uppercase()))
            .or_default();
        slot.0 += 1;
        slot.1 += micros;
        slot.2 = slot.2.max(micros);
    }
    Ok((delta, check))
}

/// Why a top-level command (name and arguments) may read without a bound, if it may.
pub fn unbounded(args: &[String]) -> Option<String> {
    let cmd = args.first()?.to_lowercase();
    let key = args.get(1).map(|k| shape(k, true)).unwrap_or_default();
    let int = |i: usize| args.get(i).and_then(|a| a.parse::<i64>().ok());
    let has = |word: &str| args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word));
    let span_too_long = |start: i64, stop: i64| match (start >= 0, stop >= 0) {
        (true, true) | (false, false) => stop - start + 1 > MAX_SPAN,
        (true, false) => true,
        (false, true) => false,
    };
    let why = match cmd.as_str() {
        c if WHOLE_READS.contains(&c) => format!("{} {key}", c.to_uppercase()),
        "lrange" | "zrevrange" | "zrange"
            if !(cmd == "zrange" && (has("byscore") || has("bylex"))) =>
        {
            let (start, stop) = (int(2)?, int(3)?);
            if !span_too_long(start, stop) {
                return None;
            }
            format!("{} {key} {start} {stop}", cmd.to_uppercase())
        }
        "zrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex" | "zrevrangebylex" => {
            if has("limit") {
                return None;
            }
            format!("{} {key} without LIMIT", cmd.to_uppercase())
        }
        "xrange" | "xrevrange" => {
            if has("count") {
                return None;
            }
            format!("{} {key} without COUNT", cmd.to_uppercase())
        }
        _ => return None,
    };
    Some(why)
}

/// One command at both sizes.
#[derive(Debug, Clone)]
pub struct Growth {
    /// The command.
    pub name: String,
    /// At the small backlog.
    pub small: Stat,
    /// At the full backlog.
    pub full: Stat,
}

impl Growth {
    /// Its cost per call rose over 3x and by over 10 us between the sizes.
    pub fn grew(&self) -> bool {
        self.small.calls > 0
            && self.full.calls > 0
            && self.full.usec_per_call > 3.0 * self.small.usec_per_call
            && self.full.usec_per_call - self.small.usec_per_call > 10.0
    }
}

/// Every command of either round, side by side, costliest per call (full size) first.
pub fn compare(small: &CommandCosts, full: &CommandCosts) -> Vec<Growth> {
    let mut names: Vec<&String> = small.keys().chain(full.keys()).collect();
    names.sort();
    names.dedup();
    let mut out: Vec<Growth> = names
        .into_iter()
        .map(|n| Growth {
            name: n.clone(),
            small: small.get(n).copied().unwrap_or_default(),
            full: full.get(n).copied().unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| b.full.usec_per_call.total_cmp(&a.full.usec_per_call));
    out
}

/// The comparison as JSON: `{name: {calls, usec_per_call, first_round: {...}, grew}}`.
pub fn to_json(growth: &[Growth]) -> Value {
    let r = |v: f64| (v * 100.0).round() / 100.0;
    let mut map = serde_json::Map::new();
    for g in growth {
        map.insert(
            g.name.clone(),
            json!({
                "calls": g.full.calls,
                "usec_per_call": r(g.full.usec_per_call),
                "first_round": {"calls": g.small.calls, "usec_per_call": r(g.small.usec_per_call)},
                "grew": g.grew(),
            }),
        );
    }
    Value::Object(map)
}

/// Everything flagged: whole reads by name (from the counters, scripts included), and
/// each unbounded top-level command the slowlog showed.
pub fn flags(growth: &[Growth], ranges: &RangeCheck) -> Vec<String> {
    let mut out: Vec<String> = growth
        .iter()
        .filter(|g| g.full.calls > 0 && WHOLE_READS.contains(&g.name.as_str()))
        .map(|g| {
            format!(
                "{} x{} at {:.2} us/call (first round {:.2})",
                g.name.to_uppercase(),
                g.full.calls,
                g.full.usec_per_call,
                g.small.usec_per_call
            )
        })
        .collect();
    out.extend(ranges.found.iter().map(|(why, n)| format!("{why} x{n}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn bounded_ranges_pass_and_unbounded_ones_are_named() {
        for ok in [
            "LRANGE k 0 49",
            "ZRANGE k 100 149",
            "ZREVRANGE k -50 -1",
            "ZRANGE k 0 +inf BYSCORE LIMIT 0 50",
            "ZRANGEBYSCORE k -inf +inf LIMIT 0 10",
            "XREVRANGE s + - COUNT 20",
            "GET k",
        ] {
            assert_eq!(unbounded(&args(ok)), None, "{ok}");
        }
        for bad in [
            "LRANGE k 0 -1",
            "ZRANGE k 0 5000",
            "ZRANGE k 0 +inf BYSCORE",
            "ZRANGEBYSCORE k -inf +inf",
            "XRANGE s - +",
            "HGETALL h",
            "SMEMBERS s",
            "KEYS *",
        ] {
            assert!(unbounded(&args(bad)).is_some(), "{bad}");
        }
    }

    #[test]
    fn keys_group_by_shape() {
        let key = "onboard:{iot}:create-customer:job:cust_01M8W813M70PSHVC2N30M05RXY";
        assert_eq!(shape(key, false), "onboard:{iot}:create-customer:job:<id>");
        assert_eq!(shape(key, true), "onboard:{<p>}:<kind>:job:<id>");
        assert_eq!(
            shape("onboard:{batches}:batch_01M8W813M70PSHVC2N30M05RXY", true),
            "onboard:{<p>}:<id>"
        );
    }

    #[test]
    fn commandstats_are_parsed_and_growth_needs_both_ratio_and_size() {
        let text = "# Commandstats\r\ncmdstat_zrange:calls=10,usec=50,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\ncmdstat_client|setname:calls=1,usec=1,usec_per_call=1.00\r\n";
        let stats = parse_commandstats(text);
        assert_eq!(stats["zrange"].calls, 10);
        assert_eq!(stats["zrange"].usec, 50);
        assert!(stats.contains_key("client|setname"));
        let at = |usec_per_call| Stat {
            calls: 10,
            usec: 0,
            usec_per_call,
        };
        let g = |small, full| Growth {
            name: "x".into(),
            small: at(small),
            full: at(full),
        };
        assert!(g(2.0, 40.0).grew());
        assert!(!g(2.0, 9.0).grew(), "4x but under 10 us more");
        assert!(!g(20.0, 45.0).grew(), "over 10 us more but not 3x");
    }
}
