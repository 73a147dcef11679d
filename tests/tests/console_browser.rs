//! The operator console (issue 17) in a real browser: Debian's `chromium` driven over
//! WebDriver by the harness's [`Browser`], against the real stack (a private redis-server,
//! the sandbox, a worker and `onboard-producer serve` with one operator and one app token).
//! Written against the page contract (element ids, routes, `data-action` forms). Every page
//! visited is checked for the secrets the test used (passwords, verify codes, provider app
//! secrets), and each page's screenshot is saved under `target/console-screenshots/`.

use onboard_harness::browser::{Browser, BrowserError};
use std::time::Duration;

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
