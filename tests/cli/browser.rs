//! The dashboard in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, with fantoccini). It loads the overview and watches the counts change as a
//! worker runs, watches a running job's page fill with its output, presses Retry on a dead
//! job and sees it complete, and checks that markup in a job's strings never runs.
//!
//! Without `chromium` and `chromedriver` (Debian's `chromium` and `chromium-driver`) the test
//! prints why and passes; with `QUEUECTL_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs
//! them) it fails instead. With `QUEUECTL_SCREENSHOT_DIR=DIR` it saves `dashboard.png` and
//! `dashboard-job.png` there (the README's pictures come from it).
//!
//! chromedriver runs in a process group of its own, with Chromium under it; the group is
//! killed when the test ends however it ends, so no browser outlives it.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::dashboard::{start, Dashboard};
use super::Env;
use crate::support::http::Request;

/// The executable `name` on `$PATH`, if any.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The browser and its driver, or why they cannot be had (a failure when required).
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| on_path(n));
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let missing = [("chromium", c.is_none()), ("chromedriver", d.is_none())]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" and ");
            let required = std::env::var_os("QUEUECTL_REQUIRE_BROWSER").is_some_and(|v| v == "1");
            assert!(
                !required,
                "QUEUECTL_REQUIRE_BROWSER=1 but {missing} is not on PATH \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "skipping the browser test: {missing} not found on PATH \
                 (apt-get install chromium chromium-driver; QUEUECTL_REQUIRE_BROWSER=1 makes this a failure)"
            );
            None
        }
    }
}

/// chromedriver in its own process group, killed with everything it started on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(binary: &PathBuf, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(log).expect("driver log");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port };
        let addr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = std::net::TcpStream::connect(addr).is_ok()
                && Request::get(addr, "/status")
                    .send()
                    .body
                    .contains("\"ready\":true");
            if ready {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let group = nix::unistd::Pid::from_raw(-pid);
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Runs `check` every 100 ms until it returns `true`; panics naming `what` after `timeout`.
/// Errors count as "not yet" (a part replaced while it was read, say).
async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, fantoccini::error::CmdError>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(true) => return,
            Ok(false) => last.clear(),
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what} {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(c: &Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    c.find(Locator::Css(css)).await?.text().await
}

async fn count(c: &Client, state: &str) -> Result<u64, fantoccini::error::CmdError> {
    let t = text(c, &format!("[data-count={state}] .n")).await?;
    Ok(t.trim().parse().unwrap_or(u64::MAX))
}

const HOSTILE_ID: &str = r#""><img src=x onerror="window.__xss=1">"#;

#[test]
fn the_dashboard_in_a_browser_follows_the_queue_and_retries_a_dead_job() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let env = Env::new();
    let marker = env.dir().join("flaky-ran-once");
    let jobs = [
        json!({"id": "mailer-1", "command": "echo sent 1", "queue": "mail"}),
        json!({"id": "mailer-2", "command": "echo sent 2", "queue": "mail"}),
        json!({"id": "mailer-3", "command": "echo sent 3", "queue": "mail"}),
        json!({"id": "resize-1", "command": "sleep 0.4; echo resized 1", "queue": "images"}),
        json!({"id": "resize-2", "command": "sleep 0.4; echo resized 2", "queue": "images"}),
        json!({"id": "resize-3", "command": "sleep 0.4; echo resized 3", "queue": "images"}),
        json!({"id": "resize-4", "command": "sleep 0.4; echo resized 4", "queue": "images"}),
        json!({"id": "flaky", "queue": "reports", "max_retries": 1, "command": format!(
            "test -f '{m}' && echo recovered || {{ touch '{m}'; echo 'first try failed' >&2; exit 3; }}",
            m = marker.display()
        )}),
        json!({"id": HOSTILE_ID, "command": "echo '<script>window.__xss=2</script>'"}),
        json!({"id": "export-42", "queue": "reports", "max_retries": 1,
               "command": "echo 'disk full' >&2; exit 28"}),
        json!({"id": "nightly", "queue": "reports", "run_at": "2999-01-01T00:00:00Z",
               "command": "echo later"}),
        // Runs last (lowest priority) and long enough to be watched.
        json!({"id": "ticker", "queue": "reports", "priority": -1,
               "command": "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.4; done"}),
    ];
    for job in &jobs {
        env.enqueue(&job.to_string());
    }
    let dash = start(&env, &[]);
    let driver = Driver::start(&chromedriver, env.dir().join("chromedriver.log"));
    let profile = env.dir().join("chromium-profile");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-breakpad", "--disable-crash-reporter",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session");
        let result = browse(&client, &env, &dash).await;
        let _ = client.close().await;
        result
    });
    drop(driver);
}

async fn browse(c: &Client, env: &Env, dash: &Dashboard) {
    let base = format!("http://{}", dash.addr);
    let long = Duration::from_secs(30);

    // The overview counts the queue, then follows it without reloading the page.
    c.goto(&format!("{base}/"))
        .await
        .expect("open the overview");
    assert_eq!(count(c, "pending").await.expect("pending"), 12);
    c.execute("window.__stay = 'same page'; return null", vec![])
        .await
        .expect("mark the page");
    let _worker = env.spawn_worker(&["--count", "2", "--poll-interval-ms", "50"]);
    eventually(long, "the counts to show the finished jobs", || async {
        Ok(count(c, "dead").await? == 2 && count(c, "completed").await? >= 8)
    })
    .await;
    let stayed = c
        .execute("return window.__stay", vec![])
        .await
        .expect("read the mark");
    assert_eq!(
        stayed,
        json!("same page"),
        "the counts changed without a reload"
    );

    // A job's page shows its output and keeps itself current until it ends.
    c.goto(&format!("{base}/job?id=ticker"))
        .await
        .expect("open ticker");
    eventually(long, "ticker's output", || async {
        let badge = text(c, ".jobhead .badge").await?;
        let out = text(c, "pre[data-stream=stdout]").await.unwrap_or_default();
        Ok(badge == "completed" && out.contains("tick-6"))
    })
    .await;

    // Retry a dead job from its page: it runs again, and this time succeeds.
    c.goto(&format!("{base}/job?id=flaky"))
        .await
        .expect("open flaky");
    assert_eq!(text(c, ".jobhead .badge").await.expect("badge"), "dead");
    assert!(text(c, "pre[data-stream=stderr]")
        .await
        .expect("stderr")
        .contains("first try failed"));
    c.find(Locator::Css(r#"form[action="/job/retry"] button"#))
        .await
        .expect("the Retry button")
        .click()
        .await
        .expect("press Retry");
    eventually(long, "the retried job to complete", || async {
        let url = c.current_url().await?;
        let badge = text(c, ".jobhead .badge").await?;
        let out = text(c, "pre[data-stream=stdout]").await.unwrap_or_default();
        Ok(
            url.as_str().contains("done=retry")
                && badge == "completed"
                && out.contains("recovered"),
        )
    })
    .await;
    assert!(text(c, ".notice")
        .await
        .expect("notice")
        .contains("Requeued"));
    save_screenshot(c, "dashboard-job.png").await;

    // Markup in a job's id or output is shown as text and never runs.
    let search = format!("{base}/jobs?q=window.__xss");
    c.goto(&search).await.expect("search");
    c.find(Locator::LinkText(HOSTILE_ID))
        .await
        .expect("the hostile job, listed by its id as text")
        .click()
        .await
        .expect("open it");
    eventually(long, "the hostile job's page", || async {
        Ok(text(c, "h1 code").await? == HOSTILE_ID)
    })
    .await;
    assert!(text(c, "pre[data-stream=stdout]")
        .await
        .expect("stdout")
        .contains("<script>window.__xss=2</script>"));
    let xss = c
        .execute("return typeof window.__xss", vec![])
        .await
        .expect("probe");
    assert_eq!(xss, json!("undefined"), "no script of the job ran");
    let images = c
        .execute("return document.querySelectorAll('img').length", vec![])
        .await
        .expect("count images");
    assert_eq!(images, json!(0));

    // Back on the overview, the chart counts every finished attempt: 9 jobs that
    // succeeded at once, flaky's failure and its success, export-42's failure.
    c.goto(&format!("{base}/")).await.expect("overview");
    eventually(long, "the throughput chart", || async {
        let legend = text(c, ".legend").await?;
        Ok(legend.contains("10 completed") && legend.contains("2 failed"))
    })
    .await;
    save_screenshot(c, "dashboard.png").await;
}

/// Saves a PNG of the page to `$QUEUECTL_SCREENSHOT_DIR/NAME`, when that is set.
async fn save_screenshot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("QUEUECTL_SCREENSHOT_DIR") else {
        return;
    };
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(PathBuf::from(dir).join(name), png).expect("write the screenshot");
}
