//! The record of one scenario: figures, target, peer figures, ratio and machine info,
//! written as JSON to `target/bench/<scenario>.json`, plus its one-line summary.

use serde::Serialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::process::Command;

/// A target: `metric` compared with `value` by `op` (`>=`, `<=`, `<`).
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is compared, e.g. `jobs_per_sec`.
    pub metric: String,
    /// `>=`, `<=` or `<`.
    pub op: &'static str,
    /// The bound.
    pub value: f64,
    /// In words, from DESIGN.md.
    pub description: String,
}

impl Target {
    /// A target.
    pub fn new(metric: &str, op: &'static str, value: f64, description: &str) -> Self {
        Target {
            metric: metric.into(),
            op,
            value,
            description: description.into(),
        }
    }

    /// Whether `figure` meets it.
    pub fn met_by(&self, figure: f64) -> bool {
        match self.op {
            ">=" => figure >= self.value,
            "<=" => figure <= self.value,
            "<" => figure < self.value,
            _ => false,
        }
    }
}

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `redis-server --version`.
    pub redis_version: String,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
}

impl Machine {
    /// Reads it from the running system.
    pub fn detect() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let redis_version = Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            redis_version,
            kernel,
        }
    }
}

/// Everything one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Scenario name.
    pub scenario: String,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// Our figures.
    pub figures: Map<String, Value>,
    /// apalis-redis 1.0.0's figures on the same machine and sizes (empty when the scenario
    /// has no peer run).
    pub peer: Map<String, Value>,
    /// Ours divided by the peer's, per compared figure (for latencies, below 1 is better).
    pub ratio: Map<String, Value>,
    /// The target.
    pub target: Target,
    /// The figure compared with the target.
    pub target_figure: f64,
    /// Whether the target was met.
    pub met: bool,
    /// Anything worth knowing to read the figures.
    pub notes: Vec<String>,
    /// The summary line printed on stdout.
    pub summary: String,
    /// Where it ran.
    pub machine: Machine,
    /// When (RFC 3339, UTC).
    pub date: String,
    /// Wall time of the whole scenario, seconds.
    pub wall_secs: f64,
}

/// Builds a [`Record`] bit by bit.
#[derive(Debug)]
pub struct RecordBuilder {
    scenario: String,
    quick: bool,
    figures: Map<String, Value>,
    peer: Map<String, Value>,
    ratio: Map<String, Value>,
    notes: Vec<String>,
}

impl RecordBuilder {
    /// A record for `scenario`.
    pub fn new(scenario: &str, quick: bool) -> Self {
        RecordBuilder {
            scenario: scenario.into(),
            quick,
            figures: Map::new(),
            peer: Map::new(),
            ratio: Map::new(),
            notes: Vec::new(),
        }
    }

    /// Adds one of our figures.
    pub fn figure(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.figures.insert(key.into(), value.into());
        self
    }

    /// Adds one of the peer's figures.
    pub fn peer(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.peer.insert(key.into(), value.into());
        self
    }

    /// Adds a ratio ours/peer (skipped when the peer figure is 0).
    pub fn ratio(&mut self, key: &str, ours: f64, peer: f64) -> &mut Self {
        if peer > 0.0 {
            self.ratio.insert(key.into(), round(ours / peer, 3).into());
        }
        self
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) -> &mut Self {
        self.notes.push(note.into());
        self
    }

    /// Finishes the record: `figure` is compared with `target` (and `also_ok` must hold
    /// too, for targets with a second condition); `summary` gets the verdict appended.
    pub fn finish(
        self,
        target: Target,
        figure: f64,
        also_ok: bool,
        summary: String,
        wall_secs: f64,
    ) -> Record {
        let met = target.met_by(figure) && also_ok;
        let verdict = format!(
            "target {} {} {}: {}",
            target.metric,
            target.op,
            fmt_num(target.value),
            if met { "met" } else { "MISSED" }
        );
        Record {
            scenario: self.scenario.clone(),
            quick: self.quick,
            figures: self.figures,
            peer: self.peer,
            ratio: self.ratio,
            target,
            target_figure: round(figure, 3),
            met,
            notes: self.notes,
            summary: format!("{}: {summary}; {verdict}", self.scenario),
            machine: Machine::detect(),
            date: chrono::Utc::now().to_rfc3339(),
            wall_secs: round(wall_secs, 2),
        }
    }
}

impl Record {
    /// Writes `target/bench/<scenario>.json`; returns the path.
    pub fn write(&self) -> anyhow::Result<PathBuf> {
        let dir = crate::harness::target_dir().join("bench");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.scenario));
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }
}

/// ours / peer for a summary line; a peer figure of 0 reads as the smallest positive one.
pub fn times(ours: f64, peer: f64) -> f64 {
    ours / peer.max(f64::MIN_POSITIVE)
}

/// Rounds to `digits` decimals (for readable JSON).
pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// `123456.7` -> `123,457`; small values keep two decimals.
pub fn fmt_num(v: f64) -> String {
    if v.abs() < 100.0 {
        return format!("{v:.2}");
    }
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
