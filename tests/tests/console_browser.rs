//! The operator console (issue 17) in a real browser: Debian's `chromium` driven over
//! WebDriver by the harness's [`Browser`], against the real stack (a private redis-server,
//! the sandbox, a worker and `onboard-producer serve` with one operator and one app token).
//! Written against the page contract (element ids, routes, `data-action` forms). Every page
//! the browser shows is checked for the secrets the test used (passwords, verify codes, the
//! providers' app secrets, the tokens), and each page's screenshot is saved under
//! `target/console-screenshots/`. The first two tests are the harness's own, on a trivial
//! page: the browser is driven, and nothing of it outlives the test, even a failing one.

use onboard_harness::browser::thirtyfour::prelude::{By, Cookie, WebDriver, WebElement};
use onboard_harness::browser::{Browser, BrowserError};
use onboard_producer::Producer;
use onboard_shared::config::Config;
use onboard_shared::jobs::{CreateCustomerJob, Job, JobKind};
use onboard_shared::queue::{EnqueueOptions, JobState, JobStatus};
use onboard_tests::api::{ApiServer, TokenSpec};
use onboard_tests::fixtures::{account, producer, quick, user};
use onboard_tests::{RedisServer, Sandbox, Worker};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a job, a page or a live update gets.
const WAIT: Duration = Duration::from_secs(30);

/// The processes of one browser: chromedriver, and every Chromium process naming its
/// private profile directory.
fn browser_processes(profile: &std::path::Path, chromedriver: u32) -> Vec<String> {
    let profile = profile.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if pid == chromedriver && !cmdline.is_empty() || cmdline.contains(&profile) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Waits (polling /proc) until none of the browser's processes is left.
fn assert_all_gone(profile: &std::path::Path, chromedriver: u32) {
    let start = std::time::Instant::now();
    loop {
        let left = browser_processes(profile, chromedriver);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running after the browser was dropped: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A page that changes its own text after a moment, as the console's live cells do.
const LIVE_PAGE: &str = "data:text/html,<main data-page=\"harness\"><p id=\"state\">queued</p></main>\
<script>setTimeout(function(){document.getElementById('state').textContent='succeeded'},300)</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_drives_chromium_and_leaves_nothing_behind() {
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    let (profile, pid) = (browser.profile_dir(), browser.chromedriver_pid());
    let running = browser_processes(&profile, pid);
    assert!(
        running.iter().any(|p| p.contains("chromium")) && running.len() > 1,
        "chromedriver and chromium run: {running:#?}"
    );
    let driver = browser.driver();
    let size = driver.get_window_rect().await.expect("window rect");
    assert_eq!((size.width, size.height), (1280, 900));
    driver.goto(LIVE_PAGE).await.expect("open the page");
    let text = browser
        .wait_text(
            "#state",
            "the text to change in place",
            Duration::from_secs(10),
            |t| t == "succeeded",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, "succeeded");
    // An element that never shows up is a timeout naming it, not a hang.
    let missing = browser
        .wait_text("#nowhere", "never", Duration::from_millis(200), |_| true)
        .await;
    assert!(
        matches!(&missing, Err(BrowserError::Timeout { last: None, .. })),
        "{missing:?}"
    );
    let shot = browser
        .screenshot("harness-live-page")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
    assert!(
        shot.ends_with("console-screenshots/harness-live-page.png"),
        "{}",
        shot.display()
    );
    browser.quit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_all_gone(&profile, pid);
}

#[test]
fn a_panicking_test_leaves_no_browser_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
            tx.send((browser.profile_dir(), browser.chromedriver_pid()))
                .expect("send");
            browser
                .driver()
                .goto(LIVE_PAGE)
                .await
                .expect("open the page");
            panic!("a test fails while its browser is open");
        })
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let (profile, pid) = rx.recv().expect("the browser had started");
    assert_all_gone(&profile, pid);
}

// ---------------------------------------------------------------------------------------
// The console on the real stack.

fn ops() -> TokenSpec {
    TokenSpec::new("ops", "operator")
}

fn app() -> TokenSpec {
    TokenSpec::new("app1", "app")
}

/// `create-customer` for `customer_id`, with the key backfills give it
/// (`create-customer:<customer id>`), which the console finds it by.
fn keyed_customer(customer_id: &str, max_attempts: Option<u32>) -> (Job, EnqueueOptions) {
    let job = Job::CreateCustomer(CreateCustomerJob {
        customer_id: customer_id.into(),
        country_code: "86".into(),
        phone_number: "13900000001".into(),
    });
    let opts = EnqueueOptions {
        idempotency_key: Some(format!("create-customer:{customer_id}")),
        max_attempts,
        ..Default::default()
    };
    (job, opts)
}

/// A CSS attribute selector value, quoted.
fn q(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The whole stack and a browser on it. Every page the browser shows goes through
/// [`Stack::checked`]: its DOM must hold none of `secrets`.
struct Stack {
    // Dropped first: the browser, then the server, the worker, the sandbox, Redis.
    browser: Browser,
    server: ApiServer,
    _worker: Worker,
    sandbox: Sandbox,
    producer: Producer,
    _redis: RedisServer,
    /// What must never reach a page: (what it is, its value).
    secrets: Mutex<Vec<(String, String)>>,
    /// The pages checked so far.
    pages: Mutex<Vec<String>>,
}

impl Stack {
    async fn start() -> Stack {
        let redis = RedisServer::start();
        let sandbox = Sandbox::start(&["--no-rate-limits"]);
        let worker = Worker::start(&redis, &sandbox, quick());
        let server = ApiServer::start(&redis, &[ops(), app()], "");
        let producer = producer(&redis).await;
        let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
        // The secrets of the test configuration (the worker's provider credentials).
        let cfg = Config::for_sandbox(sandbox.url(), &redis.url());
        let secrets = vec![
            (
                "the IoT app secret",
                cfg.iot.app_secret.expose().to_string(),
            ),
            (
                "the POLYV app secret",
                cfg.polyv.app_secret.expose().to_string(),
            ),
            (
                "the Tencent Cloud secret key",
                cfg.tencentcloud.secret_key.expose().to_string(),
            ),
            ("the operator token", ops().token),
            ("the app token", app().token),
        ];
        Stack {
            browser,
            server,
            _worker: worker,
            sandbox,
            producer,
            _redis: redis,
            secrets: Mutex::new(secrets.into_iter().map(|(w, v)| (w.into(), v)).collect()),
            pages: Mutex::new(Vec::new()),
        }
    }

    fn driver(&self) -> &WebDriver {
        self.browser.driver()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Adds a value no page may show.
    fn secret(&self, what: &str, value: &str) {
        assert!(!value.is_empty(), "{what} is empty");
        self.secrets
            .lock()
            .unwrap()
            .push((what.to_string(), value.to_string()));
    }

    /// The page shown now: its DOM, checked for every secret; returns the DOM.
    async fn checked(&self) -> String {
        let url = self.driver().current_url().await.expect("current url");
        let dom = self.driver().source().await.expect("page source");
        for (what, value) in self.secrets.lock().unwrap().iter() {
            assert!(
                !dom.contains(value.as_str()),
                "{what} is in the DOM of {url}"
            );
        }
        self.pages.lock().unwrap().push(url.to_string());
        dom
    }

    /// Opens `path` and checks it.
    async fn visit(&self, path: &str) -> String {
        self.driver()
            .goto(self.url(path))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        self.checked().await
    }

    /// The path (and query) of the page shown now.
    async fn path(&self) -> String {
        let url = self.driver().current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The element `css` on the page shown now (it is server-rendered: no waiting).
    async fn el(&self, css: &str) -> WebElement {
        match self.driver().find(By::Css(css)).await {
            Ok(el) => el,
            Err(e) => {
                let dom = self.driver().source().await.unwrap_or_default();
                panic!(
                    "no {css} on {}: {e}\n{}",
                    self.path().await,
                    &dom[..dom.len().min(3_000)]
                )
            }
        }
    }

    /// The text of `css`.
    async fn text(&self, css: &str) -> String {
        self.el(css)
            .await
            .text()
            .await
            .expect("text")
            .trim()
            .to_string()
    }

    /// Whether `css` is on the page.
    async fn has(&self, css: &str) -> bool {
        !self
            .driver()
            .find_all(By::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// Submits `form` with its button, waits for the next page (the old one gone stale,
    /// the new one loaded) and checks it.
    async fn submit(&self, form: &WebElement) -> String {
        let old = self.driver().find(By::Tag("html")).await.expect("html");
        form.find(By::Css("button[type=submit]"))
            .await
            .expect("the form has a submit button")
            .click()
            .await
            .expect("click");
        let start = Instant::now();
        while old.is_present().await.unwrap_or(false) {
            assert!(start.elapsed() < WAIT, "the form's answer never came");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            let state = self
                .driver()
                .execute("return document.readyState", Vec::new())
                .await
                .ok()
                .and_then(|r| r.json().as_str().map(str::to_string));
            if state.as_deref() == Some("complete") {
                break;
            }
            assert!(start.elapsed() < WAIT, "the next page never loaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.checked().await
    }

    /// Submits the form `css` (a `data-action` form: it must carry its csrf value).
    async fn act(&self, css: &str) -> String {
        let form = self.el(css).await;
        assert_eq!(
            form.attr("method").await.expect("attr").as_deref(),
            Some("post"),
            "{css} posts"
        );
        assert!(
            form.find(By::Css("input[type=hidden][name=csrf]"))
                .await
                .is_ok(),
            "{css} carries a csrf value"
        );
        self.submit(&form).await
    }

    /// Logs in with `token` on `/console/login`; returns the page that answered.
    async fn log_in(&self, token: &str) -> String {
        self.visit("/console/login").await;
        let form = self.el("form#login").await;
        assert_eq!(
            (
                form.attr("method").await.unwrap().as_deref(),
                form.attr("action").await.unwrap().as_deref()
            ),
            (Some("post"), Some("/console/login"))
        );
        let input = form
            .find(By::Css("input[name=token]"))
            .await
            .expect("a token field");
        assert_eq!(
            input.attr("type").await.unwrap().as_deref(),
            Some("password")
        );
        input.send_keys(token).await.expect("type the token");
        self.submit(&form).await
    }

    /// Logs in as the operator and lands on the overview.
    async fn log_in_as_operator(&self) {
        self.log_in(&ops().token).await;
        self.assert_on_overview().await;
    }

    /// The page shown now is the overview.
    async fn assert_on_overview(&self) {
        assert_eq!(self.path().await, "/console");
        assert_eq!(
            self.el("main")
                .await
                .attr("data-page")
                .await
                .unwrap()
                .as_deref(),
            Some("overview")
        );
    }

    /// The session cookie, if the browser holds one.
    async fn session_cookie(&self) -> Option<String> {
        self.driver()
            .get_named_cookie("onboard_console")
            .await
            .ok()
            .map(|c| c.value)
    }

    /// Waits until `css`'s text (polled in place, no reload) satisfies `ok`.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.browser
            .wait_text(css, what, WAIT, ok)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Saves the page shown now as `<name>.png`.
    async fn screenshot(&self, name: &str) {
        let path = self
            .browser
            .screenshot(name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("screenshot: {}", path.display());
    }

    async fn wait_state(&self, id: &str, state: JobState) -> JobStatus {
        let status = self
            .producer
            .wait_until(id, WAIT, |s| s.state == state || s.state.is_final())
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(status.state, state, "{status:?}");
        status
    }

    async fn enqueue(&self, job: Job, opts: EnqueueOptions) -> String {
        self.producer
            .enqueue(&job, &opts)
            .await
            .expect("enqueue")
            .id
    }

    /// A create-account job awaiting its code; returns its id and the code texted. Its
    /// password and the code are secrets from now on.
    async fn awaiting_account(&self, i: usize) -> (String, String) {
        let job = account(i);
        let Job::CreateAccount(fields) = &job else {
            unreachable!()
        };
        self.secret("a create-account password", fields.password.expose());
        let phone = format!("{}{}", fields.country_code, fields.phone_num);
        let id = self.enqueue(job, EnqueueOptions::default()).await;
        self.wait_state(&id, JobState::AwaitingCode).await;
        let code = self.sandbox.latest_code(&phone).expect("a code was texted");
        self.secret("a verify code", &code);
        (id, code)
    }

    /// A create-customer job for `customer_id` dead after two attempts the sandbox failed;
    /// the faults are then cleared. Returns its id and error code.
    async fn dead_customer(&self, customer_id: &str) -> (String, String) {
        self.sandbox.set_faults(
            json!({"seed": 1, "error_rate": 1.0, "actions": ["ServiceCreateCustomer"]}),
        );
        let (job, opts) = keyed_customer(customer_id, Some(2));
        let id = self.enqueue(job, opts).await;
        let dead = self.wait_state(&id, JobState::Dead).await;
        self.sandbox.set_faults(json!({}));
        let code = dead.last_error.expect("a dead job has an error").code;
        (id, code)
    }

    /// `POST /v1/batches?kind=<kind>` with the app token; returns the batch id.
    async fn upload_batch(&self, kind: &str, lines: &[Value]) -> String {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let resp = reqwest::Client::new()
            .post(self.url(&format!("/v1/batches?kind={kind}")))
            .bearer_auth(app().token)
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("upload a batch");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let answer: Value = resp.json().await.expect("json");
        assert_eq!(answer["new_jobs"], lines.len(), "{answer}");
        answer["batch"].as_str().expect("a batch id").to_string()
    }

    /// `GET /v1/batches/<id>` with the operator token.
    async fn batch_status(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(self.url(&format!("/v1/batches/{id}")))
            .bearer_auth(ops().token)
            .send()
            .await
            .expect("batch status")
            .json()
            .await
            .expect("json")
    }
}

/// `register-user` `i` with its own password (a secret of `stack`).
fn secret_user(stack: &Stack, i: usize) -> Value {
    let passwd = format!("batch-pass-{i:04}");
    stack.secret("a register-user password", &passwd);
    json!({"email": format!("batch{i}@example.com"), "mobile": format!("137{i:08}"), "passwd": passwd})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_every_page_and_no_page_holds_a_secret() {
    let s = Stack::start().await;
    // Something on every page: a user who succeeded (with the app secret POLYV returned),
    // a dead customer, an account awaiting its code, a batch held by a paused queue.
    let done = s.enqueue(user(1), EnqueueOptions::default()).await;
    s.wait_state(&done, JobState::Succeeded).await;
    let result = s.producer.status(&done, true).await.unwrap().result;
    let app_secret = result
        .as_ref()
        .and_then(|r| r["app_secret"].as_str())
        .unwrap_or_else(|| panic!("register-user's result has an app secret: {result:?}"));
    s.secret("a user's app secret", app_secret);
    s.secret("a register-user password", "secret-pass-1");
    let (dead, code) = s.dead_customer("tour_dead_1").await;
    let (awaiting, _) = s.awaiting_account(1).await;
    s.producer
        .store()
        .pause_kind(JobKind::RegisterUser, true)
        .await
        .unwrap();
    let lines: Vec<Value> = (0..3).map(|i| secret_user(&s, i)).collect();
    let batch = s.upload_batch("register-user", &lines).await;

    // Logged out, every page sends the browser to the login form.
    s.visit("/console/jobs").await;
    assert_eq!(s.path().await, "/console/login");
    s.screenshot("login").await;
    s.log_in_as_operator().await;
    let cookie = s
        .driver()
        .get_named_cookie("onboard_console")
        .await
        .expect("a session cookie");
    assert_eq!(cookie.http_only, Some(true), "{cookie:?}");
    assert_eq!(cookie.path.as_deref(), Some("/console"), "{cookie:?}");
    assert!(
        format!("{:?}", cookie.same_site).contains("Strict"),
        "{cookie:?}"
    );
    for href in [
        "/console",
        "/console/jobs",
        "/console/dead",
        "/console/batches",
        "/console/awaiting",
    ] {
        assert!(
            s.has(&format!("nav a[href={}]", q(href))).await,
            "nav {href}"
        );
    }
    assert!(
        s.has("form#logout[method=post][action=\"/console/logout\"]")
            .await
    );

    // Overview: one row per kind with every field.
    for kind in JobKind::ALL {
        for field in [
            "waiting",
            "queued",
            "running",
            "scheduled",
            "awaiting",
            "dead",
            "started_per_sec",
            "finished_per_sec",
            "oldest_ready_age",
            "limit_share",
            "paused",
        ] {
            let css = format!(
                "table#overview tr[data-kind={}] td[data-field={}]",
                q(kind.as_str()),
                q(field)
            );
            assert!(s.has(&css).await, "{css}");
        }
    }
    let row = |kind: &str, field: &str| {
        format!(
            "table#overview tr[data-kind={}] td[data-field={}]",
            q(kind),
            q(field)
        )
    };
    assert_eq!(s.text(&row("register-user", "paused")).await, "paused");
    assert_eq!(s.text(&row("create-customer", "paused")).await, "running");
    assert_eq!(s.text(&row("create-customer", "dead")).await, "1");
    assert_eq!(s.text(&row("create-account", "awaiting")).await, "1");
    s.screenshot("overview").await;

    // Jobs: the queued users of the batch, each linked to its page.
    s.visit(&format!(
        "/console/jobs?kind=register-user&state=queued&batch={batch}"
    ))
    .await;
    assert!(s.has("form#filters").await && s.has("form#find").await);
    let rows = s
        .driver()
        .find_all(By::Css("table#jobs tr[data-job-id]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "the batch's three queued jobs");
    let first = rows[0].attr("data-job-id").await.unwrap().expect("an id");
    s.screenshot("jobs").await;
    rows[0]
        .find(By::Css("a.job-link"))
        .await
        .expect("a link to the job")
        .click()
        .await
        .unwrap();
    s.wait_text("main[data-page=job] #job-state", "the job page", |_| true)
        .await;
    assert_eq!(s.path().await, format!("/console/jobs/{first}"));
    s.checked().await;
    for id in [&done, &awaiting] {
        s.visit(&format!("/console/jobs/{id}")).await;
        assert!(s.has("dl#fields").await, "{id} shows its fields");
    }

    // A dead job: its state, error code, timeline, and its group.
    s.visit(&format!("/console/jobs/{dead}")).await;
    assert_eq!(s.text("#job-state").await, "dead");
    assert!(s.text("#job-error-code").await.contains(&code));
    assert!(s.has("ol#timeline > li").await);
    assert!(s.has("form[data-action=retry]").await);
    s.screenshot("job").await;

    s.visit("/console/dead").await;
    let group = format!(
        "table#dead-groups tr[data-kind=\"create-customer\"][data-code={}]",
        q(&code)
    );
    assert_eq!(s.text(&format!("{group} td.count")).await, "1");
    assert!(
        s.has(&format!("{group} form[data-action=retry-group]"))
            .await
    );
    assert!(
        s.has(&format!("{group} form[data-action=purge-group]"))
            .await
    );
    s.screenshot("dead").await;

    s.visit("/console/batches").await;
    let brow = format!("tr[data-batch-id={}]", q(&batch));
    for cell in ["td.state", "td.progress", "td.eta"] {
        assert!(s.has(&format!("{brow} {cell}")).await, "{cell}");
    }
    assert!(s.has(&format!("{brow} form[data-action=cancel]")).await);
    s.screenshot("batches").await;

    s.visit("/console/awaiting").await;
    let arow = format!("tr[data-job-id={}]", q(&awaiting));
    assert!(!s.text(&format!("{arow} td.time-left")).await.is_empty());
    assert!(
        s.has(&format!("{arow} form[data-action=supply] input[name=code]"))
            .await
    );
    assert!(s.has(&format!("{arow} form[data-action=resend]")).await);
    s.screenshot("awaiting").await;

    // Logging out ends the session: even the old cookie, put back, opens no page.
    s.act("form#logout").await;
    assert_eq!(s.path().await, "/console/login");
    s.visit("/console").await;
    assert_eq!(s.path().await, "/console/login");
    let mut old = Cookie::new("onboard_console", cookie.value.clone());
    old.path = Some("/console".into());
    s.driver()
        .add_cookie(old)
        .await
        .expect("put the old cookie back");
    s.visit("/console").await;
    assert_eq!(
        s.path().await,
        "/console/login",
        "a logged-out session still works"
    );
    let pages = s.pages.lock().unwrap().len();
    assert!(pages >= 12, "{pages} pages checked for secrets");
}

/// The console's Content-Security-Policy, as the contract states it.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// A client that sees redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_and_an_app_token_are_refused() {
    let s = Stack::start().await;
    for (token, status) in [("not-a-configured-token", 401), (&*app().token, 403)] {
        s.log_in(token).await;
        assert!(
            !s.text("p.error").await.is_empty(),
            "{status}: an error is shown"
        );
        assert_eq!(s.session_cookie().await, None, "{status}: no session");
        s.visit("/console").await;
        assert_eq!(s.path().await, "/console/login", "{status}");
        // The same over HTTP: the status, and no cookie set.
        let resp = no_redirects()
            .post(s.url("/console/login"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        assert!(resp.headers().get("set-cookie").is_none());
    }
    // Every console answer carries the contract's Content-Security-Policy; the two static
    // files are served from the console itself.
    for path in [
        "/console/login",
        "/console/static/console.js",
        "/console/static/console.css",
    ] {
        let resp = no_redirects().get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(
            resp.headers()
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok()),
            Some(CSP),
            "{path}"
        );
    }
    // A cookie nobody issued opens nothing either.
    let resp = no_redirects()
        .get(s.url("/console"))
        .header("Cookie", "onboard_console=forged-session-value")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/console/login");
    // The operator's token opens a session: 303 to /console with the cookie as promised.
    let resp = no_redirects()
        .post(s.url("/console/login"))
        .form(&[("token", ops().token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/console");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in [
        "onboard_console=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
    ] {
        assert!(set.contains(part), "{set}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_its_csrf_value_is_refused() {
    let s = Stack::start().await;
    s.log_in_as_operator().await;
    let cookie = s.session_cookie().await.expect("a session");
    let form = s
        .el("table#overview tr[data-kind=\"register-user\"] form[data-action=pause]")
        .await;
    let action = form.attr("action").await.unwrap().expect("an action");
    let mut fields = Vec::new();
    for input in form.find_all(By::Css("input[type=hidden]")).await.unwrap() {
        let name = input.attr("name").await.unwrap().unwrap_or_default();
        fields.push((name, input.value().await.unwrap().unwrap_or_default()));
    }
    assert!(
        fields.iter().any(|(n, v)| n == "csrf" && !v.is_empty()),
        "{fields:?}"
    );
    let post = |fields: Vec<(String, String)>| {
        no_redirects()
            .post(s.url(&action))
            .header("Cookie", format!("onboard_console={cookie}"))
            .form(&fields)
            .send()
    };
    let without: Vec<_> = fields
        .iter()
        .filter(|(n, _)| n != "csrf")
        .cloned()
        .collect();
    let mut wrong = without.clone();
    wrong.push(("csrf".into(), "not-the-csrf-value".into()));
    for (what, body) in [("no csrf", without), ("a wrong csrf", wrong)] {
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what}");
        let paused = s.producer.stats().await.unwrap();
        assert!(
            paused.iter().all(|q| !q.paused),
            "{what}: nothing was paused"
        );
    }
    // The same form with its csrf value does what it says.
    let resp = post(fields).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let stats = s.producer.stats().await.unwrap();
    let ru = stats
        .iter()
        .find(|q| q.kind == JobKind::RegisterUser)
        .unwrap();
    assert!(ru.paused, "the pause with its csrf value took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_found_by_customer_id_succeeds_live_after_its_group_is_retried() {
    let s = Stack::start().await;
    let (id, code) = s.dead_customer("dead_cust_7").await;
    s.sandbox
        .set_faults(json!({"seed": 2, "error_rate": 1.0, "actions": ["ServiceCreateCustomer"]}));
    s.log_in_as_operator().await;

    // Not found: the jobs page with an error.
    s.visit("/console/jobs").await;
    let find = s.el("form#find").await;
    find.find(By::Css("input[name=q]"))
        .await
        .unwrap()
        .send_keys("no_such_customer")
        .await
        .unwrap();
    s.submit(&find).await;
    assert!(!s.text("p.error").await.is_empty());
    // Found by the customer id: its page, dead.
    let find = s.el("form#find").await;
    find.find(By::Css("input[name=q]"))
        .await
        .unwrap()
        .send_keys("dead_cust_7")
        .await
        .unwrap();
    s.submit(&find).await;
    assert_eq!(s.path().await, format!("/console/jobs/{id}"));
    assert_eq!(s.text("#job-state").await, "dead");
    assert!(s.text("#job-error-code").await.contains(&code));

    // Its dead group, one job in it.
    let link = s.el("a#dead-group").await;
    let href = link.attr("href").await.unwrap().expect("href");
    assert!(
        href.ends_with(&format!("/console/dead?kind=create-customer&code={code}")),
        "{href}"
    );
    link.click().await.unwrap();
    let group = format!(
        "table#dead-groups tr[data-kind=\"create-customer\"][data-code={}]",
        q(&code)
    );
    s.wait_text(&format!("{group} td.count"), "the dead group", |_| true)
        .await;
    s.checked().await;
    assert_eq!(s.text(&format!("{group} td.count")).await, "1");

    // The job's page stays open in a second window, marked so a reload would show.
    let console = s.driver().window().await.unwrap();
    let job_window = s.driver().new_window().await.unwrap();
    s.driver()
        .switch_to_window(job_window.clone())
        .await
        .unwrap();
    s.visit(&format!("/console/jobs/{id}")).await;
    assert_eq!(s.text("#job-state").await, "dead");
    s.driver()
        .execute("window.notReloaded = true;", Vec::new())
        .await
        .unwrap();

    // The fault gone, the group is retried from the dead-letter page.
    s.sandbox.set_faults(json!({}));
    s.driver().switch_to_window(console).await.unwrap();
    s.act(&format!("{group} form[data-action=retry-group]"))
        .await;
    assert!(
        !s.text("p.flash").await.is_empty(),
        "the retry says what it did"
    );

    // Back on the job's page: the state turns to succeeded in place.
    s.driver().switch_to_window(job_window).await.unwrap();
    s.wait_text("#job-state", "the job to succeed, live", |t| {
        t == "succeeded"
    })
    .await;
    let still = s
        .driver()
        .execute("return window.notReloaded === true;", Vec::new())
        .await
        .unwrap();
    assert_eq!(still.json(), &json!(true), "the page was not reloaded");
    s.checked().await;
    let status = s.producer.status(&id, false).await.unwrap();
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(
        s.sandbox.stats()["creates"]["customers"]["dead_cust_7"],
        1,
        "created once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_supplied_on_the_awaiting_page_lets_the_job_succeed() {
    let s = Stack::start().await;
    let (id, code) = s.awaiting_account(3).await;
    s.log_in_as_operator().await;
    s.visit(&format!("/console/jobs/{id}")).await;
    // The state as the API and the events name it (the contract's example reads
    // `awaiting-code`; the page shows `JobState::as_str`, as its live updates do).
    assert_eq!(s.text("#job-state").await, JobState::AwaitingCode.as_str());
    s.visit("/console/awaiting").await;
    let row = format!("tr[data-job-id={}]", q(&id));
    assert!(!s.text(&format!("{row} td.time-left")).await.is_empty());
    let form = format!("{row} form[data-action=supply]");
    s.el(&format!("{form} input[name=code]"))
        .await
        .send_keys(&code)
        .await
        .unwrap();
    s.act(&form).await;
    assert!(!s.text("p.flash").await.is_empty());
    s.visit(&format!("/console/jobs/{id}")).await;
    s.wait_text("#job-state", "the job to succeed", |t| t == "succeeded")
        .await;
    s.checked().await;
    let status = s.producer.status(&id, false).await.unwrap();
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_paused_on_the_overview_holds_its_jobs_until_resumed() {
    let s = Stack::start().await;
    s.log_in_as_operator().await;
    let row = "table#overview tr[data-kind=\"create-customer\"]";
    let cell = |f: &str| format!("{row} td[data-field={}]", q(f));
    assert_eq!(s.text(&cell("paused")).await, "running");
    s.act(&format!("{row} form[data-action=pause]")).await;
    assert_eq!(s.text(&cell("paused")).await, "paused");
    assert!(s.has(&format!("{row} form[data-action=resume]")).await);

    // A customer enqueued now stays queued while a user enqueued after it runs to the end,
    // and the overview counts it without a reload.
    let (job, opts) = keyed_customer("paused_cust_1", None);
    let held = s.enqueue(job, opts).await;
    let other = s.enqueue(user(5), EnqueueOptions::default()).await;
    s.wait_state(&other, JobState::Succeeded).await;
    let status = s.producer.status(&held, false).await.unwrap();
    assert_eq!(status.state, JobState::Queued, "{status:?}");
    s.wait_text(&cell("queued"), "the queued count to rise live", |t| {
        t == "1"
    })
    .await;

    s.act(&format!("{row} form[data-action=resume]")).await;
    assert_eq!(s.text(&cell("paused")).await, "running");
    s.wait_state(&held, JobState::Succeeded).await;
    s.wait_text(&cell("queued"), "the queued count to fall live", |t| {
        t == "0"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cancelled_on_the_batches_page_cancels_its_jobs() {
    let s = Stack::start().await;
    s.producer
        .store()
        .pause_kind(JobKind::RegisterUser, true)
        .await
        .unwrap();
    let lines: Vec<Value> = (10..14).map(|i| secret_user(&s, i)).collect();
    let batch = s.upload_batch("register-user", &lines).await;
    s.log_in_as_operator().await;

    // Its jobs, listed by batch before the cancel.
    s.visit(&format!(
        "/console/jobs?kind=register-user&state=queued&batch={batch}"
    ))
    .await;
    let mut ids = Vec::new();
    for row in s
        .driver()
        .find_all(By::Css("table#jobs tr[data-job-id]"))
        .await
        .unwrap()
    {
        ids.push(row.attr("data-job-id").await.unwrap().unwrap());
    }
    assert_eq!(ids.len(), 4, "{ids:?}");

    s.visit("/console/batches").await;
    let row = format!("tr[data-batch-id={}]", q(&batch));
    assert!(!s
        .text(&format!("{row} td.state"))
        .await
        .contains("cancelled"));
    s.act(&format!("{row} form[data-action=cancel]")).await;
    assert!(!s.text("p.flash").await.is_empty());
    assert!(s
        .text(&format!("{row} td.state"))
        .await
        .contains("cancelled"));
    assert!(!s.has(&format!("{row} form[data-action=cancel]")).await);
    for id in &ids {
        let status = s.producer.status(id, false).await.unwrap();
        assert_eq!(status.state, JobState::Cancelled, "{status:?}");
    }
    assert_eq!(s.batch_status(&batch).await["cancelled"], 4);
}

/// Runs `onboard-producer console-link <name> --json` with the server's configuration;
/// the exit code and what it printed (the link's path on success).
fn console_link(s: &Stack, name: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new(onboard_tests::bin("onboard-producer"))
        .arg("--config")
        .arg(s.server.config_path())
        .args(["--json", "console-link", name])
        .env_remove("ONBOARD_CONFIG")
        .output()
        .expect("run onboard-producer console-link");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(v) => (
            out.status.code(),
            v["path"].as_str().unwrap_or_default().to_string(),
        ),
        Err(_) => (out.status.code(), format!("{stdout}{stderr}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_login_link_opens_one_session_once() {
    let s = Stack::start().await;
    // Only an operator token of the configuration gets a link.
    let (code, said) = console_link(&s, "app1");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("app role"), "{said}");
    let (code, said) = console_link(&s, "nobody");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("no token named nobody"), "{said}");

    let (code, link) = console_link(&s, "ops");
    assert_eq!(code, Some(0), "{link}");
    assert!(link.starts_with("/console/login?once="), "{link}");
    let once = link.trim_start_matches("/console/login?once=").to_string();
    s.secret("the login link's code", &once);

    // The link logs in: the overview, with a session cookie.
    s.visit(&link).await;
    s.assert_on_overview().await;
    assert!(s.session_cookie().await.is_some(), "a session was started");

    // A second use, from a browser without that session, is refused.
    s.driver()
        .delete_all_cookies()
        .await
        .expect("clear cookies");
    s.visit(&link).await;
    assert_eq!(s.path().await, link);
    assert!(s.text("p.error").await.contains("used already"));
    assert_eq!(s.session_cookie().await, None, "no second session");
    s.visit("/console").await;
    assert_eq!(s.path().await, "/console/login");
    // The same over HTTP: 401 and no cookie, for a used link and for a made-up one.
    for path in [
        link.clone(),
        format!("/console/login?once={}", "0".repeat(64)),
    ] {
        let resp = no_redirects().get(s.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(resp.headers().get("set-cookie").is_none(), "{path}");
    }
}
