//! The producer binary as people and scripts use it: backfills (good, bad and huge files),
//! reruns, dependencies, dead letters, exit codes. Real redis-server; the sandbox and worker
//! where jobs must finish.

use onboard_shared::jobs::*;
use onboard_shared::queue::*;
use onboard_tests::fixtures::*;
use onboard_tests::{free_port, RedisServer, Sandbox, Worker};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../producer/examples")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path.to_string_lossy().into_owned()
}

async fn total_jobs(redis: &RedisServer) -> u64 {
    let p = producer(redis).await;
    p.stats()
        .await
        .unwrap()
        .iter()
        .map(|q| q.enqueued_total)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_of_the_same_file_enqueues_nothing_new() {
    let redis = RedisServer::start();
    let file = examples().join("customers.csv");
    let file = file.to_str().unwrap();
    let first = cli(
        &redis.url(),
        &["--json", "backfill", file, "--kind", "onboard-customer"],
    );
    let (out, err) = text(&first);
    assert!(first.status.success(), "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("--json summary");
    assert_eq!(summary["rows"], 5);
    assert_eq!(
        summary["new_jobs"], 10,
        "a customer and its bind-devices per row"
    );
    assert_eq!(total_jobs(&redis).await, 10);

    let again = cli(
        &redis.url(),
        &["backfill", file, "--kind", "onboard-customer"],
    );
    let (out, err) = text(&again);
    assert!(again.status.success(), "{out}{err}");
    assert!(out.contains("nothing new"), "the rerun says so: {out}");
    assert_eq!(total_jobs(&redis).await, 10, "nothing new was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_row_stops_the_run_and_nothing_is_enqueued() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.csv",
        b"customer_id,country_code,phone_number\nok_1,86,13900000001\nbad id!,86,13900000002\nok_3,86,1390000000x\n",
    );
    let out = cli(
        &redis.url(),
        &["backfill", &file, "--kind", "create-customer"],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 3, field customer_id"), "{err}");
    assert!(err.contains("line 4, field phone_number"), "{err}");
    assert!(err.contains("nothing was enqueued"), "{err}");
    assert_eq!(total_jobs(&redis).await, 0);

    // --skip-invalid enqueues the valid rows and writes the rejects to a file.
    let rejects = dir.path().join("rejects.txt");
    let out = cli(
        &redis.url(),
        &[
            "backfill",
            &file,
            "--kind",
            "create-customer",
            "--skip-invalid",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert_eq!(total_jobs(&redis).await, 1);
    // The rejects are the rejected rows as they were, under the header; the errors beside.
    let written = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        written,
        "customer_id,country_code,phone_number\nbad id!,86,13900000002\nok_3,86,1390000000x\n"
    );
    let errors = std::fs::read_to_string(format!("{}.errors", rejects.display())).unwrap();
    assert_eq!(errors.lines().count(), 2, "{errors}");
    assert!(
        errors.contains("(input line 3), field customer_id"),
        "{errors}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_files_get_clear_errors_and_change_nothing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "quote.csv",
            b"customer_id,country_code,phone_number\n\"ok_1,86,13900000001\nok_2,86,1\n",
            "line 2",
        ),
        (
            "columns.csv",
            b"customer_id,country_code,phone_number\nok_1,86\n",
            "line 2",
        ),
        (
            "utf8.csv",
            b"customer_id,country_code,phone_number\nok_\xff\xfe,86,1\n",
            "line 2",
        ),
        (
            "unknown.csv",
            b"customer_id,country_code,phone_number,shoe_size\nok_1,86,1,44\n",
            "shoe_size",
        ),
        (
            "missing.csv",
            b"customer_id,country_code\nok_1,86\n",
            "phone_number",
        ),
        ("empty.csv", b"", "empty"),
    ];
    for (name, bytes, needle) in cases {
        let file = write(dir.path(), name, bytes);
        let out = cli(
            &redis.url(),
            &["backfill", &file, "--kind", "create-customer"],
        );
        let (o, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {o}{err}");
        assert!(
            err.contains(needle),
            "{name}: the error should mention {needle:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let jsonl = write(
        dir.path(),
        "bad.jsonl",
        b"{\"kind\":\"create-customer\",\"customer_id\":\"a\"\nnot json\n",
    );
    let out = cli(&redis.url(), &["backfill", &jsonl]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 1") && err.contains("line 2"), "{err}");
    assert_eq!(total_jobs(&redis).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_unreachable_is_exit_code_2() {
    let file = examples().join("customers.csv");
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let out = cli(
        &url,
        &[
            "backfill",
            file.to_str().unwrap(),
            "--kind",
            "onboard-customer",
        ],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Redis"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_row_file_is_validated_in_one_pass() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("million.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "customer_id,country_code,phone_number").unwrap();
    for i in 0..1_000_000u32 {
        writeln!(f, "c{i},86,139{i:08}").unwrap();
    }
    // One bad row at the very end: found, and nothing enqueued.
    writeln!(f, "bad-id,86,1").unwrap();
    f.flush().unwrap();
    drop(f);
    let out = cli(
        &redis.url(),
        &[
            "backfill",
            path.to_str().unwrap(),
            "--kind",
            "create-customer",
        ],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 1000002, field customer_id"), "{err}");
    assert_eq!(total_jobs(&redis).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn customers_then_devices_and_a_failed_parent_kills_its_child() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    let _worker = Worker::start(&redis, &sandbox, quick());
    let p = producer(&redis).await;
    // "taken" exists at the provider already, so creating it again fails for good.
    let pre = p
        .enqueue(
            &Job::CreateCustomer(CreateCustomerJob {
                customer_id: "taken".into(),
                country_code: "86".into(),
                phone_number: "13900000000".into(),
            }),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        p.wait(&pre.id, WAIT).await.unwrap().state,
        JobState::Succeeded
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "onboard.csv",
        b"customer_id,country_code,phone_number,devices\n\
          fresh_1,86,13900000001,1|P1/d1|lamp;2|P1/d2|plug\n\
          taken,86,13900000009,3|P1/d3|lamp\n",
    );
    let out = cli(
        &redis.url(),
        &[
            "--json",
            "backfill",
            &file,
            "--kind",
            "onboard-customer",
            "--wait",
            "--timeout",
            "30",
        ],
    );
    let (o, e) = text(&out);
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{o}{e}"
    );
    let stats = sandbox.stats();
    assert_eq!(stats["creates"]["customers"]["fresh_1"], 1, "{stats}");
    assert!(
        stats["actions"]["ServiceBindDevice"]["successes"].as_u64() == Some(1),
        "one bind, for fresh_1 only (the sandbox refuses a bind before its customer): {stats}"
    );
    let dead = p.dead_letters(JobKind::BindDevices, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0].last_error.as_ref().expect("a reason");
    assert!(reason.message.contains("dependency failed"), "{reason:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_retried_after_the_fault_is_gone_succeeds() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::start(&["--no-rate-limits"]);
    sandbox.set_faults(
        serde_json::json!({"seed": 1, "error_rate": 1.0, "actions": ["add-custom-user"]}),
    );
    let _worker = Worker::start(&redis, &sandbox, quick());
    let p = producer(&redis).await;
    let two_attempts = EnqueueOptions {
        max_attempts: Some(2),
        ..Default::default()
    };
    let id = p.enqueue(&user(1), &two_attempts).await.unwrap().id;
    let dead = p.wait(&id, WAIT).await.unwrap();
    assert_eq!(dead.state, JobState::Dead, "{dead:?}");
    assert_eq!(dead.attempts, 2);

    let listed = cli(
        &redis.url(),
        &["--json", "dead", "list", "--kind", "register-user"],
    );
    let (o, e) = text(&listed);
    assert!(listed.status.success(), "{o}{e}");
    assert!(o.contains(&id), "{o}");

    sandbox.set_faults(serde_json::json!({}));
    let retried = cli(&redis.url(), &["dead", "retry", &id]);
    let (o, e) = text(&retried);
    assert!(retried.status.success(), "{o}{e}");
    let done = p.wait(&id, WAIT).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(
        sandbox.stats()["creates"]["polyv_users"]["user1@example.com"],
        1
    );

    // Retrying a job that is not dead names its state and changes nothing.
    let again = cli(&redis.url(), &["dead", "retry", &id]);
    let (_, e) = text(&again);
    assert_eq!(again.status.code(), Some(1), "{e}");
    assert!(e.contains("succeeded"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_command_lines_are_invalid_input_and_enqueue_nothing() {
    let redis = RedisServer::start();
    let url = redis.url();
    let unknown_flag = cli(&url, &["enqueue", "create-customer", "--customer-idd", "x"]);
    assert_eq!(
        unknown_flag.status.code(),
        Some(1),
        "{}",
        text(&unknown_flag).1
    );
    // No password anywhere: refused before anything is written, naming the ways to give one.
    let no_password = cli(
        &url,
        &[
            "enqueue",
            "create-account",
            "--account-type",
            "personal",
            "--mail",
            "a@example.com",
            "--phone-num",
            "55501234",
            "--country-code",
            "852",
            "--area",
            "HK",
        ],
    );
    let (_, err) = text(&no_password);
    assert_eq!(no_password.status.code(), Some(1), "{err}");
    assert!(err.contains("--password-stdin"), "{err}");
    let invalid = cli(
        &url,
        &[
            "enqueue",
            "create-customer",
            "--customer-id",
            "no spaces",
            "--country-code",
            "86",
            "--phone-number",
            "1",
        ],
    );
    let (_, err) = text(&invalid);
    assert_eq!(invalid.status.code(), Some(1), "{err}");
    assert!(err.contains("customer_id"), "{err}");
    assert_eq!(total_jobs(&redis).await, 0);
}
