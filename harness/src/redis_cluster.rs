//! A private Redis Cluster on loopback: three masters and three replicas, each a
//! `redis-server --cluster-enabled yes` on a free port with its own data directory (the
//! append-only file on), joined with `redis-cli --cluster create ... --cluster-replicas 1`.
//! A master can be killed to watch its replica take over.

use super::process::free_cluster_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may be silent before the others fail it over (ms).
const NODE_TIMEOUT_MS: u64 = 2_000;

/// What the nodes of a [`RedisCluster`] write to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing (as the benchmarks' single server): a restart loses everything.
    None,
    /// The append-only file, fsynced every second (Redis's default with AOF on).
    AppendOnly,
    /// The append-only file, fsynced on every write: a restart of all nodes loses no
    /// acknowledged write.
    AppendOnlyFsyncAlways,
}

/// One node of the cluster.
struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// What each node writes to disk.
    persistence: Persistence,
}

/// A private 3-master, 3-replica Redis Cluster, torn down on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts six nodes and joins them; returns once every slot is served. Panics when it
    /// cannot (no redis-server or redis-cli: nothing here can run without them).
    /// Each node keeps an append-only file, fsynced every second.
    pub fn start() -> RedisCluster {
        Self::start_with(Persistence::AppendOnly)
    }

    /// As [`RedisCluster::start`], each node writing to disk what `persistence` says.
    pub fn start_with(persistence: Persistence) -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let mut nodes: Vec<Node> = (0..6)
            .map(|i| {
                let node_dir = dir.path().join(format!("node{i}"));
                std::fs::create_dir_all(&node_dir).expect("node dir");
                Node {
                    port: free_cluster_port(),
                    dir: node_dir,
                    child: None,
                    persistence,
                }
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        let cluster = RedisCluster { nodes, _dir: dir };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed (Debian package redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_until_ok(Duration::from_secs(30));
        cluster.wait_until_replicas_online(Duration::from_secs(30));
        cluster
    }

    /// Waits until every master has a replica whose link is up (a replica answers
    /// `cluster_state:ok` before its first sync is done); panics after `timeout`.
    fn wait_until_replicas_online(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.master_ports().iter().all(|port| {
            self.node(*port)
                .ask::<String>(redis::cmd("INFO").arg("replication"))
                .is_some_and(|info| info.contains("state=online"))
        }) {
            assert!(
                Instant::now() < deadline,
                "the replicas did not come online within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `master`'s replica has every write the master has (its acknowledged
    /// offset equals the master's); panics after `timeout`.
    pub fn wait_until_in_sync(&self, master: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self
                .node(master)
                .ask::<String>(redis::cmd("INFO").arg("replication"))
                .unwrap_or_default();
            let own = info
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .map(str::trim);
            let replica = info
                .lines()
                .filter(|l| l.starts_with("slave0:"))
                .flat_map(|l| l.split(','))
                .find_map(|f| f.strip_prefix("offset="));
            if own.is_some() && own == replica {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{master}'s replica did not catch up within {timeout:?}: {info}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:<port>/` of every node, the seeds a client starts from.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// Runs `cmd` on every live node (ACL users, for instance, are each node's own).
    pub fn on_every_node(&self, cmd: &redis::Cmd) {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port))
                .and_then(|c| c.get_connection())
                .expect("connect to a cluster node");
            let _: () = cmd
                .query(&mut conn)
                .expect("run a command on a cluster node");
        }
    }

    /// The seeds as one comma-separated list (what `ONBOARD_REDIS_URL` takes for a cluster).
    pub fn seed_list(&self) -> String {
        self.urls().join(",")
    }

    /// Ports of the nodes that are masters now.
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .filter(|n| n.role().as_deref() == Some("master"))
            .map(|n| n.port)
            .collect()
    }

    /// Kills (SIGKILL) the node on `port`; its replica takes over after the node timeout.
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.kill();
        }
    }

    /// The port of the master that serves `key` now: the node that answers a plain read of
    /// it (the others answer MOVED).
    pub fn master_of(&self, key: &str) -> u16 {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .find(|n| n.ask::<String>(redis::cmd("TYPE").arg(key)).is_some())
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no node serves {key}"))
    }

    /// The port of `master`'s replica (from its `INFO replication`).
    pub fn replica_of(&self, master: u16) -> u16 {
        let node = self.node(master);
        let info = node
            .ask::<String>(redis::cmd("INFO").arg("replication"))
            .unwrap_or_else(|| panic!("node {master} does not answer"));
        info.lines()
            .filter(|l| l.starts_with("slave0:"))
            .flat_map(|l| l.split(','))
            .find_map(|field| field.strip_prefix("port="))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("node {master} has no replica: {info}"))
    }

    /// Stops the node on `port` (SIGSTOP) without killing it: it neither answers nor
    /// replicates until [`RedisCluster::resume`].
    pub fn pause(&self, port: u16) {
        self.node(port).signal("-STOP");
    }

    /// Closes `master`'s connections to its replicas (`CLIENT KILL TYPE replica`): until
    /// a replica reconnects, the master's writes reach no replica.
    pub fn cut_replication(&self, master: u16) {
        let closed: Option<u64> = self
            .node(master)
            .ask(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica"));
        assert!(
            closed.unwrap_or(0) >= 1,
            "{master} had no replica to cut off"
        );
    }

    /// Lets a paused node run again (SIGCONT).
    pub fn resume(&self, port: u16) {
        self.node(port).signal("-CONT");
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// The process ids of the live nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }

    /// Kills every node (SIGKILL).
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Kills every node and starts each again on its port and data directory (its
    /// `nodes.conf` keeps the cluster's shape); returns once every slot is served.
    pub fn restart(&mut self) {
        self.kill_all();
        for node in &mut self.nodes {
            node.spawn();
        }
        self.wait_until_ok(Duration::from_secs(30));
    }

    /// A synchronous cluster connection for assertions (commands routed by key).
    pub fn connection(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::new(self.urls())
            .and_then(|c| c.get_connection())
            .expect("connect to the private cluster")
    }

    /// Waits until every live node reports `cluster_state:ok` (after a start or a
    /// failover); panics after `timeout`.
    pub fn wait_until_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .all(|n| n.cluster_ok());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Node {
    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .arg("--cluster-node-timeout")
            .arg(NODE_TIMEOUT_MS.to_string())
            .args(["--save", "", "--logfile", ""])
            .args(match self.persistence {
                Persistence::None => ["--appendonly", "no", "--appendfsync", "everysec"],
                Persistence::AppendOnly => ["--appendonly", "yes", "--appendfsync", "everysec"],
                Persistence::AppendOnlyFsyncAlways => {
                    ["--appendonly", "yes", "--appendfsync", "always"]
                }
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let (child, _) = super::process::spawn_ready(
            cmd,
            "Ready to accept connections",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the node runs");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", child.id());
    }

    /// Runs one command on this node alone; None when it does not answer.
    fn ask<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        cmd.query(&mut conn).ok()
    }

    fn cluster_ok(&self) -> bool {
        self.ask::<String>(redis::cmd("CLUSTER").arg("INFO"))
            .is_some_and(|i| i.contains("cluster_state:ok"))
    }

    fn role(&self) -> Option<String> {
        let text = self.ask::<String>(&redis::cmd("INFO"))?;
        text.lines()
            .find_map(|l| l.strip_prefix("role:"))
            .map(|r| r.trim().to_string())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A node is killed with whatever holds it: also when the cluster fails to start (a later
/// node panics before the `RedisCluster` exists), which used to leave the earlier nodes
/// running after the test.
impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_dropped_on_its_own_is_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = Node {
            port: free_cluster_port(),
            dir: dir.path().to_path_buf(),
            child: None,
            persistence: Persistence::None,
        };
        node.spawn();
        let pid = node.child.as_ref().map(Child::id).expect("it runs");
        drop(node);
        // Dropping killed and reaped it: the pid is gone (or reused by another program).
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains("redis-server"),
            "redis-server {pid} still runs"
        );
    }
}
