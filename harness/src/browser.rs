//! A headless Chromium driven over WebDriver, for the operator console's browser tests.
//!
//! [`Browser::start`] finds Debian's `chromedriver` and `chromium` (packages
//! `chromium-driver` and `chromium`; `.ci/run` installs them), starts `chromedriver` on a
//! free port in a process group of its own, awaits its readiness by polling its `/status`
//! (no fixed sleep), and opens a headless session with the `thirtyfour` crate in a 1280x900
//! window with a private profile. Screenshots go to `<target>/console-screenshots/<name>.png`
//! ([`screenshot_dir`]). Dropping the [`Browser`] (also while a test panics) ends the session
//! and kills the whole process group: `chromedriver` and every Chromium process it started.
//! A missing program is an error naming the Debian packages, never a silent skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use thirtyfour;

/// How long chromedriver gets to answer `/status` with `"ready": true`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The window every page is shown (and captured) in.
pub const WINDOW: (u32, u32) = (1280, 900);

/// Why the browser could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// A program is not installed.
    #[error(
        "{program} is not installed (not found in PATH): the browser tests need Debian's \
         `chromium` and `chromium-driver` packages (`apt-get install chromium chromium-driver`; \
         .ci/run installs them)"
    )]
    Missing {
        /// `chromium` or `chromedriver`.
        program: &'static str,
    },
    /// A program could not be spawned, or its log file created.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// What was started.
        program: String,
        /// Why not.
        source: std::io::Error,
    },
    /// chromedriver ended before it was ready.
    #[error("chromedriver exited ({status}) before it was ready; its log:\n{log}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// chromedriver never reported ready.
    #[error("chromedriver did not report ready on /status within {timeout:?}; its log:\n{log}")]
    NotReady {
        /// How long it was given.
        timeout: Duration,
        /// The end of its log.
        log: String,
    },
    /// A WebDriver command failed.
    #[error("webdriver: {0}")]
    WebDriver(Box<WebDriverError>),
    /// A screenshot could not be written.
    #[error("screenshot {}: {source}", path.display())]
    Screenshot {
        /// Where it was to go.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// An element did not reach the awaited state in time.
    #[error("after {timeout:?}, {selector:?} was {last:?}, not what was awaited: {what}")]
    Timeout {
        /// The CSS selector polled.
        selector: String,
        /// What was awaited.
        what: String,
        /// How long it was polled.
        timeout: Duration,
        /// Its last text (`None`: no such element).
        last: Option<String>,
    },
}

impl From<WebDriverError> for BrowserError {
    fn from(e: WebDriverError) -> Self {
        BrowserError::WebDriver(Box::new(e))
    }
}

/// Where screenshots go: `$CARGO_TARGET_DIR/console-screenshots` when set (relative to
/// the workspace root if relative), else the workspace's `target/console-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                crate::binaries::workspace_root().join(dir)
            }
        }
        None => crate::target_dir(),
    };
    target.join("console-screenshots")
}

/// `program` in `PATH`, if installed.
fn find_program(program: &'static str) -> Result<PathBuf, BrowserError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or(BrowserError::Missing { program })
}

/// `chromedriver` in a process group of its own, killed with that group on drop.
struct DriverProcess {
    child: Child,
    log: PathBuf,
}

impl DriverProcess {
    fn start(exe: &Path, port: u16, dir: &Path) -> Result<DriverProcess, BrowserError> {
        use std::os::unix::process::CommandExt;
        let log = dir.join("chromedriver.log");
        let spawn_err = |source| BrowserError::Spawn {
            program: exe.display().to_string(),
            source,
        };
        let out = std::fs::File::create(&log).map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(spawn_err)?;
        Ok(DriverProcess { child, log })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls `GET /status` until it reads `"ready": true`; fails when the process exits
    /// or after [`READY_TIMEOUT`].
    async fn await_ready(&mut self, port: u16) -> Result<(), BrowserError> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BrowserError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            if status_ready(port).await {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(BrowserError::NotReady {
                    timeout: READY_TIMEOUT,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)); Chromium runs in it.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether chromedriver on `port` answers `/status` with `"ready": true` (one plain
/// HTTP/1.1 request, read up to its `Content-Length`: chromedriver keeps the connection
/// open); any failure reads as not ready yet.
async fn status_ready(port: u16) -> bool {
    let ask = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
            if body_complete(&answer) || answer.len() > 64 * 1024 {
                break;
            }
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(2), ask).await {
        Ok(Ok(answer)) => {
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            body.replace(char::is_whitespace, "")
                .contains("\"ready\":true")
        }
        _ => false,
    }
}

/// Whether an HTTP answer holds its whole head and `Content-Length` bytes of body.
fn body_complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|n| body.len() >= n)
}

/// A headless Chromium session and the chromedriver behind it.
pub struct Browser {
    // Fields drop in order: the session first (its DELETE reaches a live chromedriver),
    // then the process group, then the profile directory.
    driver: Option<WebDriver>,
    _process: DriverProcess,
    _dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (see the module doc).
    pub async fn start() -> Result<Browser, BrowserError> {
        let chromedriver = find_program("chromedriver")?;
        let chromium = find_program("chromium")?;
        let dir = tempfile::tempdir().map_err(|source| BrowserError::Spawn {
            program: "a temporary directory".into(),
            source,
        })?;
        let port = crate::free_port();
        let mut process = DriverProcess::start(&chromedriver, port, dir.path())?;
        process.await_ready(port).await?;

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium.display().to_string())?;
        let profile = dir.path().join("profile");
        for arg in [
            "--headless=new",
            // Root (CI, containers) cannot use Chromium's sandbox.
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            &format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            &format!("--user-data-dir={}", profile.display()),
        ] {
            caps.add_arg(arg)?;
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps).await?;
        let browser = Browser {
            driver: Some(driver),
            _process: process,
            _dir: dir,
        };
        browser
            .driver()
            .set_window_rect(0, 0, WINDOW.0, WINDOW.1)
            .await?;
        Ok(browser)
    }

    /// The session.
    pub fn driver(&self) -> &WebDriver {
        self.driver
            .as_ref()
            .expect("the session lives until the browser is quit")
    }

    /// The process id of chromedriver (also its process group's id).
    pub fn chromedriver_pid(&self) -> u32 {
        self._process.child.id()
    }

    /// The private profile directory every Chromium process of this browser names on its
    /// command line.
    pub fn profile_dir(&self) -> PathBuf {
        self._dir.path().join("profile")
    }

    /// Saves a PNG of the window to `<screenshot_dir>/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, BrowserError> {
        let dir = screenshot_dir();
        let path = dir.join(format!("{name}.png"));
        let png = self.driver().screenshot_as_png().await?;
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, png))
            .map_err(|source| BrowserError::Screenshot {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// Polls the text of the first element matching `selector` (every 50 ms, without
    /// reloading the page) until `ok` accepts it; returns that text. `what` says what is
    /// awaited, for the error after `timeout`.
    pub async fn wait_text(
        &self,
        selector: &str,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, BrowserError> {
        let start = Instant::now();
        loop {
            let last = match self.driver().find(By::Css(selector)).await {
                Ok(el) => el.text().await.ok(),
                Err(_) => None,
            };
            if let Some(text) = &last {
                if ok(text) {
                    return Ok(text.clone());
                }
            }
            if start.elapsed() > timeout {
                return Err(BrowserError::Timeout {
                    selector: selector.into(),
                    what: what.into(),
                    timeout,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session cleanly; chromedriver is then killed with its group.
    pub async fn quit(mut self) -> Result<(), BrowserError> {
        if let Some(driver) = self.driver.take() {
            driver.quit().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_the_debian_packages() {
        let err = find_program("onboard-no-such-chromedriver").unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, BrowserError::Missing { .. })
                && text.contains("`chromium`")
                && text.contains("`chromium-driver`"),
            "{text}"
        );
    }

    #[test]
    fn a_status_answer_is_complete_at_its_content_length() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length:14\r\n\r\n";
        assert!(!body_complete(format!("{head}{{\"ready\":").as_bytes()));
        assert!(body_complete(
            format!("{head}{{\"ready\":true}}").as_bytes()
        ));
        assert!(!body_complete(b"HTTP/1.1 200 OK\r\nContent-Le"));
    }
}
