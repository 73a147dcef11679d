//! A child process that is killed on drop, started and awaited through its ready line, with
//! its stderr kept in a file for failure messages.

use super::{HarnessError, READY_TIMEOUT};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// What Redis Cluster adds to a node's port for its cluster bus port.
pub const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// A port for a Redis Cluster node: free, with its bus port (`port + 10000`) free too, and
/// both below the kernel's ephemeral range, so no outgoing connection can take either while
/// the node is down or restarting (a port from [`free_port`] is in that range, and its bus
/// port often too). No port, node or bus, is handed out twice in one process: one node's
/// port is never another's bus port.
pub fn free_cluster_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let (low, high) = (1_024, ephemeral_low.saturating_sub(CLUSTER_BUS_OFFSET));
    assert!(
        high > low,
        "no room below the ephemeral ports ({ephemeral_low})"
    );
    let mut given = GIVEN
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // Start from a spot that differs per process, then walk the range.
    let span = u32::from(high - low);
    let start = (std::process::id().wrapping_mul(7_919) + given.len() as u32 * 97) % span;
    for step in 0..span {
        let port = low + ((start + step) % span) as u16;
        let bindable = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        let bus = port + CLUSTER_BUS_OFFSET;
        let unused = !given.contains(&port) && !given.contains(&bus);
        if unused && bindable(port) && bindable(bus) {
            given.insert(port);
            given.insert(bus);
            return port;
        }
    }
    panic!("no free port pair (p, p + {CLUSTER_BUS_OFFSET}) below {ephemeral_low}")
}

/// Spawns `cmd` with stdout piped and waits until a stdout line contains `needle`,
/// returning that line. The rest of stdout keeps draining in the background.
pub fn spawn_ready(
    mut cmd: Command,
    needle: &str,
    timeout: Duration,
) -> Result<(Child, String), HarnessError> {
    cmd.stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| HarnessError(format!("cannot start {cmd:?}: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| HarnessError("no stdout".into()))?;
    let (tx, rx) = mpsc::channel();
    let wanted = needle.to_string();
    let needle = needle.to_string();
    // The reader sends the ready line, or, if stdout ends first (the process exited), the
    // lines it printed, so a process that cannot start says why at once.
    std::thread::spawn(move || {
        let mut sent = false;
        let mut printed: Vec<String> = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains(&needle) {
                let _ = tx.send(Ok(line.clone()));
                sent = true;
            } else if !sent && printed.len() < 20 {
                printed.push(line);
            }
        }
        if !sent {
            let _ = tx.send(Err(printed));
        }
    });
    let failed = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(HarnessError(format!("{cmd:?} {why}")))
    };
    match rx.recv_timeout(timeout) {
        Ok(Ok(line)) => Ok((child, line)),
        Ok(Err(printed)) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            failed(
                &mut child,
                format!(
                    "ended ({status}) before printing {wanted:?}; it printed:\n{}",
                    printed.join("\n")
                ),
            )
        }
        Err(_) => failed(
            &mut child,
            format!("did not print a line containing {wanted:?} within {timeout:?}"),
        ),
    }
}

/// A child process, killed (SIGKILL) on drop.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `cmd` with its stderr in a log file and waits for its ready line.
    pub fn start(mut cmd: Command, ready: &str) -> Result<(Process, String), HarnessError> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError(format!("temp dir: {e}")))?;
        let log = dir.path().join("stderr.log");
        let file =
            std::fs::File::create(&log).map_err(|e| HarnessError(format!("log file: {e}")))?;
        cmd.stderr(file);
        let (child, line) = spawn_ready(cmd, ready, READY_TIMEOUT).map_err(|e| {
            let tail = tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20);
            HarnessError(format!("{e}; its log:\n{tail}"))
        })?;
        Ok((
            Process {
                child: Some(child),
                log,
                _dir: dir,
            },
            line,
        ))
    }

    /// Its process id (0 once it was stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 20 lines of its stderr.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), 20)
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (up to `timeout`) for the process to exit; returns whether it
    /// exited successfully. Past the timeout it is killed.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let pid = child.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().map(|s| s.success()).unwrap_or(false));
        });
        match rx.recv_timeout(timeout) {
            Ok(success) => success,
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                false
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ports_are_distinct_with_their_bus_ports_and_below_the_ephemeral_range() {
        let a = free_cluster_port();
        let b = free_cluster_port();
        assert_ne!(a, b, "never the same port twice");
        assert_ne!(
            a + CLUSTER_BUS_OFFSET,
            b,
            "one's bus port is not the other's port"
        );
        assert_ne!(
            a,
            b + CLUSTER_BUS_OFFSET,
            "one's bus port is not the other's port"
        );
        // Not bound again here to show they are free: the other tests of this process
        // fork children (redis-server, sh) that hold its sockets until they exec.
        for port in [a, b] {
            assert!(port >= 1_024, "{port}");
            assert!(port + CLUSTER_BUS_OFFSET < 32_768, "{port}");
        }
    }

    #[test]
    fn a_process_that_ends_before_its_ready_line_says_what_it_printed() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'Could not bind the cluster bus port'; exit 3"]);
        // A long timeout: the error must come when the process ends, not when this runs out.
        let started = std::time::Instant::now();
        let err = match spawn_ready(cmd, "Ready to accept", Duration::from_secs(60)) {
            Ok(_) => panic!("the process never printed the ready line"),
            Err(e) => e.to_string(),
        };
        assert!(started.elapsed() < Duration::from_secs(30), "{err}");
        assert!(err.contains("Could not bind the cluster bus port"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
    }
}
