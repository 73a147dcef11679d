//! The end-to-end test harness: real processes on loopback, each torn down on drop.
//!
//! * [`RedisServer`]: a private `redis-server` on a free port with its own data directory
//!   (never the machine's Redis on 6379), optionally with the append-only file on, and
//!   restartable on the same port and data;
//! * process helpers to start `onboard-sandbox` and `onboard-worker` and wait for the line
//!   each prints when it is ready (an event, not a sleep).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
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

/// Spawns `cmd` with stdout piped and waits until a stdout line contains `needle`, returning
/// that line. The rest of stdout keeps draining in the background (to `log` if given).
pub fn spawn_and_wait(mut cmd: Command, needle: &str, timeout: Duration) -> (Child, String) {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
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
        Ok(line) => (child, line),
        Err(_) => {
            let _ = child.kill();
            panic!("{cmd:?} did not print a line containing the ready marker within {timeout:?}")
        }
    }
}

/// A private redis-server.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    append_only: bool,
}

impl RedisServer {
    /// Starts one without persistence.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts one with the append-only file on (`appendfsync always`) when `append_only`.
    pub fn start_with(append_only: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir for redis data");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            append_only,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .stderr(Stdio::null());
        if self.append_only {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let (child, _) =
            spawn_and_wait(cmd, "Ready to accept connections", Duration::from_secs(20));
        self.child = Some(child);
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server abruptly (SIGKILL): with the append-only file (fsync always), every
    /// acknowledged write survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A plain synchronous connection for assertions.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The directory cargo puts the workspace's binaries in (target/debug or target/release),
/// found from this test executable's own path.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-exe>
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(Path::to_path_buf)
        .expect("target/<profile> directory")
}

/// The path of a workspace binary (`onboard-sandbox`, `onboard-worker`, `onboard-producer`).
/// The binaries must have been built: the README's test command builds them first.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (the README's test command does)",
        path.display()
    );
    path
}
