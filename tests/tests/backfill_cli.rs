//! `onboard-producer backfill` and the exit codes, as a user and an adversary would use
//! them, against a real redis-server: any input stream read once, rows that share a key,
//! reruns after a change, `--skip-invalid` round trips, secrets kept out of every message,
//! the password variables, and exit codes 1 and 3.

use onboard_shared::jobs::*;
use onboard_shared::queue::*;
use onboard_tests::fixtures::*;
use onboard_tests::{bin, RedisServer};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// Jobs ever enqueued, all queues.
async fn total_jobs(redis: &RedisServer) -> u64 {
    let p = producer(redis).await;
    let stats = p.stats().await.unwrap();
    stats.iter().map(|q| q.enqueued_total).sum()
}

/// `onboard-producer <args>` on the sandbox profile with `input` on its standard input.
fn cli_stdin(redis_url: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(bin("onboard-producer"))
        .args(args)
        .env("ONBOARD_PROFILE", "sandbox")
        .env("ONBOARD_REDIS_URL", redis_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn customers(ids: std::ops::Range<u32>) -> Vec<u8> {
    let mut out = b"customer_id,country_code,phone_number\n".to_vec();
    for i in ids {
        out.extend(format!("s{i},86,139{i:08}\n").bytes());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn any_stream_is_read_once_and_enqueued() {
    let redis = RedisServer::start();
    let url = redis.url();
    let kind = ["--kind", "create-customer", "--format", "csv"];
    // A pipe on standard input, as `-` and as /dev/stdin.
    for (n, path) in [(0, "-"), (1, "/dev/stdin")] {
        let args = [&["backfill", path][..], &kind[..]].concat();
        let out = cli_stdin(&url, &args, &customers(n * 10..n * 10 + 10));
        let (o, e) = text(&out);
        assert!(out.status.success(), "{path}: {o}{e}");
        assert!(o.contains("10 new job(s)"), "{path}: {o}");
    }
    assert_eq!(total_jobs(&redis).await, 20);

    // A process substitution and a FIFO.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.csv", &customers(20..30));
    let script = format!(
        "{} backfill <(cat {file}) --kind create-customer --format csv",
        bin("onboard-producer").display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("ONBOARD_PROFILE", "sandbox")
        .env("ONBOARD_REDIS_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let fifo = dir.path().join("f.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let (fifo, rows) = (fifo.clone(), customers(30..40));
        std::thread::spawn(move || std::fs::write(fifo, rows).unwrap())
    };
    let out = cli(
        &url,
        &[
            "backfill",
            fifo.to_str().unwrap(),
            "--kind",
            "create-customer",
        ],
    );
    writer.join().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        total_jobs(&redis).await,
        40,
        "every row of every stream, once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_row_per_device_binds_every_device_of_the_customer() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "devices.csv",
        b"customer_id,country_code,phone_number,devices\n\
          c1,86,13900000001,1|P1/d1|lamp\n\
          c1,86,13900000001,2|P1/d2|plug\n\
          c2,86,13900000002,3|P1/d3|lamp\n",
    );
    let out = cli(
        &redis.url(),
        &["backfill", &file, "--kind", "onboard-customer"],
    );
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(o.contains("1 merged into their customer"), "{o}");
    assert_eq!(total_jobs(&redis).await, 4, "two customers, two binds");

    // Let the customers succeed; their binds become ready and show what they carry.
    let s = producer(&redis).await.store().clone();
    let claimed = s.fetch(JobKind::CreateCustomer, 10, "t").await.unwrap();
    for job in &claimed.jobs {
        s.ack(
            JobKind::CreateCustomer,
            &job.id,
            &job.token,
            &Ack::Succeeded(serde_json::json!({})),
        )
        .await
        .unwrap();
    }
    let binds = s.fetch(JobKind::BindDevices, 10, "t").await.unwrap();
    let mut devices: Vec<(String, usize)> = binds
        .jobs
        .iter()
        .map(|j| match &j.job {
            Job::BindDevices(b) => (b.customer_id.clone(), b.devices.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    devices.sort();
    assert_eq!(devices, [("c1".to_string(), 2), ("c2".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_rows_are_one_job_reported_as_duplicates() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "twice.csv",
        b"customer_id,country_code,phone_number\nc1,86,139\n\nc1 , 086 ,139\n",
    );
    let out = cli(
        &redis.url(),
        &["backfill", &file, "--kind", "create-customer"],
    );
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(o.contains("line 4 repeats line 2"), "{o}");
    assert!(!o.contains("earlier run enqueued"), "{o}");
    assert_eq!(total_jobs(&redis).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_that_share_a_key_and_differ_are_invalid_naming_both_lines() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let phones = write(
        dir.path(),
        "phones.csv",
        b"customer_id,country_code,phone_number,devices\nc1,86,139,1|P/d1|x\nc1,86,138,2|P/d2|y\n",
    );
    let out = cli(
        &redis.url(),
        &["backfill", &phones, "--kind", "onboard-customer"],
    );
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("line 2, field phone_number: conflicts with line 3"),
        "{e}"
    );
    assert!(
        e.contains("line 3, field phone_number: conflicts with line 2"),
        "{e}"
    );

    let mails = write(
        dir.path(),
        "mails.jsonl",
        b"{\"account_type\":\"personal\",\"mail\":\"a@example.com\",\"password\":\"Secret!One1\",\"phone_num\":\"5\",\"country_code\":\"852\",\"area\":\"HK\"}\n\
          {\"account_type\":\"personal\",\"mail\":\"a@example.com\",\"password\":\"Secret!Two2\",\"phone_num\":\"5\",\"country_code\":\"852\",\"area\":\"HK\"}\n",
    );
    let out = cli(
        &redis.url(),
        &["backfill", &mails, "--kind", "create-account"],
    );
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("field password: conflicts with line 2"), "{e}");
    assert!(!format!("{o}{e}").contains("Secret!"), "{e}");
    assert_eq!(total_jobs(&redis).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_a_correction_enqueues_nothing_and_names_the_changed_rows() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let first = b"customer_id,country_code,phone_number\nc1,86,13900000001\nc2,86,13900000002\n";
    let file = write(dir.path(), "c.csv", first);
    let out = cli(
        &redis.url(),
        &["backfill", &file, "--kind", "create-customer"],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    // c2's phone corrected, c3 added.
    write(
        dir.path(),
        "c.csv",
        b"customer_id,country_code,phone_number\nc1,86,13900000001\nc2,86,13900000009\nc3,86,13900000003\n",
    );
    let out = cli(
        &redis.url(),
        &["backfill", &file, "--kind", "create-customer"],
    );
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("1 row(s) of"), "{e}");
    assert!(
        e.contains("(1 unchanged, 1 new); nothing was enqueued"),
        "{e}"
    );
    assert!(
        e.contains("line 3, field -: changed since an earlier run"),
        "{e}"
    );
    assert!(e.contains("(queued)"), "names the first job's state: {e}");
    assert_eq!(total_jobs(&redis).await, 2, "nothing enqueued, c3 included");

    // --skip-invalid enqueues the new row and rejects the changed one.
    let rejects = dir.path().join("r.csv");
    let out = cli(
        &redis.url(),
        &[
            "--json",
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
    let summary: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(
        (
            &summary["new_jobs"],
            &summary["unchanged_rows"],
            &summary["rejected_rows"]
        ),
        (&1.into(), &1.into(), &1.into())
    );
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        "customer_id,country_code,phone_number\nc2,86,13900000009\n"
    );
    assert_eq!(total_jobs(&redis).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_invalid_round_trip_through_the_rejects_file() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "users.jsonl",
        b"{\"email\":\"a@example.com\",\"mobile\":\"1\",\"passwd\":\"pass-a\"}\n\
          {\"email\":\"b@example.com\",\"mobile\":\"1\",\"passwd\":1234567}\n\
          {\"email\":\"c@example\",\"mobile\":\"1\",\"passwd\":\"pass-c\"}\n",
    );
    let out = cli(
        &redis.url(),
        &[
            "backfill",
            &file,
            "--kind",
            "register-user",
            "--skip-invalid",
        ],
    );
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(!format!("{o}{e}").contains("1234567"), "{o}{e}");
    let rejects = dir.path().join("users.rejects.jsonl");
    let rows = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(
        rows.starts_with("{\"email\":\"b@example.com\""),
        "unchanged: {rows}"
    );
    let errors = std::fs::read_to_string(dir.path().join("users.rejects.jsonl.errors")).unwrap();
    assert!(
        errors.contains("line 1 (input line 2), field passwd"),
        "{errors}"
    );
    assert!(
        errors.contains("line 2 (input line 3), field email"),
        "{errors}"
    );
    assert!(!errors.contains("1234567"), "{errors}");
    assert_eq!(total_jobs(&redis).await, 1);

    // Fixed, the rejects file is an input like any other.
    let fixed = rows
        .replace("1234567", "\"pass-b\"")
        .replace("c@example\"", "c@example.com\"");
    std::fs::write(&rejects, fixed).unwrap();
    let out = cli(
        &redis.url(),
        &[
            "backfill",
            rejects.to_str().unwrap(),
            "--kind",
            "register-user",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(total_jobs(&redis).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_invalid_still_fails_on_io_errors_and_on_no_valid_row() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder.csv");
    std::fs::create_dir(&folder).unwrap();
    let out = cli(
        &redis.url(),
        &[
            "backfill",
            folder.to_str().unwrap(),
            "--kind",
            "create-customer",
            "--skip-invalid",
        ],
    );
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("cannot read"), "{e}");
    let bad = write(
        dir.path(),
        "bad.csv",
        b"customer_id,country_code,phone_number\nbad id,86,1\nok,0,1\n",
    );
    let out = cli(
        &redis.url(),
        &[
            "backfill",
            &bad,
            "--kind",
            "create-customer",
            "--skip-invalid",
        ],
    );
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("no valid row"), "{e}");
    assert_eq!(total_jobs(&redis).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_ids_and_timed_out_waits_have_their_exit_codes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let customer_args = [
        "create-customer",
        "--customer-id",
        "x1",
        "--country-code",
        "86",
        "--phone-number",
        "1",
    ];
    for parent in ["garbage", "cust_01M8V8TPSNBQBPKYW7AG20RYVT"] {
        let args = [&["enqueue", "--depends-on", parent][..], &customer_args[..]].concat();
        let out = cli(&url, &args);
        assert_eq!(out.status.code(), Some(1), "{parent}: {:?}", text(&out));
    }
    // The same idempotency key for another payload: refused, naming the first job.
    let keyed = |phone: &str| {
        let args = [
            "enqueue",
            "--idempotency-key",
            "k1",
            "create-customer",
            "--customer-id",
            "k1",
            "--country-code",
            "86",
            "--phone-number",
            phone,
        ];
        cli(&url, &args)
    };
    let first = keyed("1");
    assert!(first.status.success(), "{:?}", text(&first));
    let first_id = text(&first).0.trim().to_string();
    let again = keyed("2");
    let (_, e) = text(&again);
    assert_eq!(again.status.code(), Some(1), "{e}");
    assert!(e.contains(&first_id) && e.contains("(queued)"), "{e}");
    assert_eq!(total_jobs(&redis).await, 1);

    let out = cli(&url, &["events", "--from", "garbage"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(
        total_jobs(&redis).await,
        1,
        "nothing enqueued but k1's first job"
    );

    // No worker: the job stays queued and the wait runs out.
    let id = producer(&redis)
        .await
        .enqueue(&customer(1), &Default::default())
        .await
        .unwrap()
        .id;
    let out = cli(&url, &["wait", &id, "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));

    let help = cli(&url, &["--help"]);
    let (o, _) = text(&help);
    assert!(o.contains("Exit codes:") && o.contains("3  a wait"), "{o}");
}

/// `enqueue` with the password in `var`.
fn enqueue_with_password(url: &str, var: &str, args: &[&str]) -> Output {
    Command::new(bin("onboard-producer"))
        .arg("enqueue")
        .args(args)
        .env("ONBOARD_PROFILE", "sandbox")
        .env("ONBOARD_REDIS_URL", url)
        .env(var, "Passw0rd!x")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_password_variable_works() {
    let redis = RedisServer::start();
    let out = enqueue_with_password(
        &redis.url(),
        "ONBOARD_ACCOUNT_PASSWORD",
        &[
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
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(total_jobs(&redis).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_password_variable_works() {
    let redis = RedisServer::start();
    let out = enqueue_with_password(
        &redis.url(),
        "ONBOARD_USER_PASSWORD",
        &[
            "register-user",
            "--email",
            "u@example.com",
            "--mobile",
            "1380000",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(total_jobs(&redis).await, 1);
}
