//! A private `redis-server`: a free port, its own data directory, never the machine's Redis
//! on 6379.

use super::process::{free_port, spawn_ready};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The line redis-server prints once it serves.
const READY: &str = "Ready to accept connections";

/// A private redis-server, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    append_only: bool,
}

impl RedisServer {
    /// Starts one without persistence. Panics when redis-server cannot start (a machine
    /// without it cannot run anything here).
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
            .args(["--save", "", "--logfile", "", "--daemonize", "no"])
            .stderr(Stdio::null());
        if self.append_only {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let (child, _) = spawn_ready(cmd, READY, Duration::from_secs(20)).unwrap_or_else(|e| {
            panic!("{e} (is redis-server installed? `apt-get install redis-server`)")
        });
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
            .expect("connect to the private redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
