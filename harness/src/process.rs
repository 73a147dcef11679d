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
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains(&needle) {
                let _ = tx.send(line.clone());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => Ok((child, line)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(HarnessError(format!(
                "{cmd:?} did not print a line containing {wanted:?} within {timeout:?}"
            )))
        }
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
