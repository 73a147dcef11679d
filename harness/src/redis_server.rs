//! The private Redis a test runs against: one `redis-server` on a free port with its own
//! data directory (never the machine's Redis on 6379), or, when `TEST_REDIS=cluster`,
//! a private [`RedisCluster`], so that the same suites run on both.

use super::process::{free_port, spawn_ready};
use super::redis_cluster::{Persistence, RedisCluster};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable that runs the suites on a cluster (`cluster`) rather than on one
/// server (unset or `single`). Outside `ONBOARD_`: the configuration refuses unknown names
/// there, and the binaries under test inherit the environment.
pub const TEST_REDIS_ENV: &str = "TEST_REDIS";

/// A private Redis, torn down on drop: one server or a cluster (see [`TEST_REDIS_ENV`]).
pub enum RedisServer {
    /// One redis-server.
    Single(SingleServer),
    /// Three masters and three replicas.
    Cluster(RedisCluster),
}

impl RedisServer {
    /// Starts one without persistence: a cluster when [`TEST_REDIS_ENV`] says so. Panics
    /// when it cannot (a machine without redis-server cannot run anything here).
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts one with the append-only file fsynced on every write when `append_only`.
    pub fn start_with(append_only: bool) -> RedisServer {
        match cluster_wanted() {
            true => RedisServer::Cluster(RedisCluster::start_with(match append_only {
                true => Persistence::AppendOnlyFsyncAlways,
                false => Persistence::AppendOnly,
            })),
            false => RedisServer::Single(SingleServer::start_with(append_only)),
        }
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisServer::Cluster(_))
    }

    /// What `redis_url` takes: `redis://127.0.0.1:<port>/`, or a cluster's seed list.
    pub fn url(&self) -> String {
        match self {
            RedisServer::Single(s) => s.url(),
            RedisServer::Cluster(c) => c.seed_list(),
        }
    }

    /// As [`RedisServer::url`], logging in as `user` with `password`.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        self.url()
            .split(',')
            .map(|u| u.replacen("redis://", &format!("redis://{user}:{password}@"), 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `cmd` on the server, or on every node of the cluster (for what each node keeps
    /// for itself, such as ACL users).
    pub fn on_every_node(&self, cmd: &redis::Cmd) {
        match self {
            RedisServer::Single(s) => {
                let _: () = cmd.query(&mut s.connection()).expect("run a command");
            }
            RedisServer::Cluster(c) => c.on_every_node(cmd),
        }
    }

    /// The single server's port. Panics on a cluster (a test that needs one node's port
    /// cannot run there).
    pub fn port(&self) -> u16 {
        match self {
            RedisServer::Single(s) => s.port,
            RedisServer::Cluster(_) => panic!("a cluster has no single port"),
        }
    }

    /// The process ids of the server or of the cluster's live nodes.
    pub fn pids(&self) -> Vec<u32> {
        match self {
            RedisServer::Single(s) => s.child.as_ref().map(Child::id).into_iter().collect(),
            RedisServer::Cluster(c) => c.pids(),
        }
    }

    /// Stops the server or every node abruptly (SIGKILL).
    pub fn kill(&mut self) {
        match self {
            RedisServer::Single(s) => s.kill(),
            RedisServer::Cluster(c) => c.kill_all(),
        }
    }

    /// Kills it and starts it again on the same ports and data: with the append-only file
    /// fsynced on every write, every acknowledged write survives.
    pub fn restart(&mut self) {
        match self {
            RedisServer::Single(s) => {
                s.kill();
                s.spawn();
            }
            RedisServer::Cluster(c) => c.restart(),
        }
    }

    /// A plain synchronous connection for assertions (routed by key on a cluster).
    pub fn connection(&self) -> TestConnection {
        match self {
            RedisServer::Single(s) => TestConnection::Single(s.connection()),
            RedisServer::Cluster(c) => TestConnection::Cluster(Box::new(c.connection())),
        }
    }
}

/// Whether [`TEST_REDIS_ENV`] asks for a cluster; panics on a value it does not know, so
/// that a typo does not quietly test the wrong thing.
fn cluster_wanted() -> bool {
    match std::env::var(TEST_REDIS_ENV).as_deref() {
        Err(_) | Ok("") | Ok("single") => false,
        Ok("cluster") => true,
        Ok(other) => panic!("{TEST_REDIS_ENV}={other:?}: expected \"single\" or \"cluster\""),
    }
}

/// A synchronous connection to a [`RedisServer`], whichever it is.
pub enum TestConnection {
    /// To the one server.
    Single(redis::Connection),
    /// To the cluster (boxed: it is large).
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for TestConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            TestConnection::Single(c) => c.req_packed_command(cmd),
            TestConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    // The cluster routes a command by its parsed form: forward the command itself.
    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            TestConnection::Single(c) => c.req_command(cmd),
            TestConnection::Cluster(c) => c.req_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            TestConnection::Single(c) => c.req_packed_commands(cmd, offset, count),
            TestConnection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            TestConnection::Single(c) => c.get_db(),
            TestConnection::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            TestConnection::Single(c) => c.check_connection(),
            TestConnection::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            TestConnection::Single(c) => c.is_open(),
            TestConnection::Cluster(c) => c.is_open(),
        }
    }
}

/// The line redis-server prints once it serves.
const READY: &str = "Ready to accept connections";

/// One private redis-server, killed on drop.
pub struct SingleServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    append_only: bool,
}

impl SingleServer {
    /// Starts one with the append-only file on (`appendfsync always`) when `append_only`.
    pub fn start_with(append_only: bool) -> SingleServer {
        let dir = tempfile::tempdir().expect("temp dir for redis data");
        let mut server = SingleServer {
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

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server abruptly (SIGKILL).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A plain synchronous connection for assertions.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the private redis")
    }
}

impl Drop for SingleServer {
    fn drop(&mut self) {
        self.kill();
    }
}
