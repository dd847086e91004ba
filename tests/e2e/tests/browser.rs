//! The browser client (issue #9) in real headless Chromium: `tests/browser/client.test.mjs`
//! (node's test runner, playwright-core driving Debian's chromium, axe-core) against two whole
//! apps this test starts, each with its own Redis and localstripe: one holding orders for the
//! default window, one whose orders expire after five seconds. Screenshots of every page, at
//! desktop and phone width, land in `target/screenshots/`.
//!
//! `scripts/test` installs chromium, node and the test's npm packages (`ensure_browser_tools`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{repository_root, start_with_stripe};

/// The whole run of the browser tests, beyond which they are stopped and failed.
const BROWSER_DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn the_client_works_in_a_real_browser() {
    let root = repository_root();
    let tests = root.join("tests/browser");
    assert!(
        tests.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run scripts/test (it runs `npm ci` there)"
    );
    let (shop, _stripe, _redis) = start_with_stripe(&[]);
    let (short, _short_stripe, _short_redis) =
        start_with_stripe(&[("SPIN_VARIABLE_ORDER_WINDOW_SECONDS", "5")]);
    let screenshots = root.join("target/screenshots");

    let mut node = Command::new("node");
    node.arg("--test").arg("--test-reporter=spec");
    // BROWSER_TESTS=<pattern> runs only the tests whose names match, while working on them.
    if let Ok(pattern) = std::env::var("BROWSER_TESTS") {
        node.arg(format!("--test-name-pattern={pattern}"));
    }
    let mut node = node
        .arg("client.test.mjs")
        .current_dir(&tests)
        .env("BASE_URL", &shop.base)
        .env("SHORT_WINDOW_URL", &short.base)
        .env("SCREENSHOTS", &screenshots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (scripts/test installs it)");
    let mut stdout = node.stdout.take().expect("stdout");
    let mut stderr = node.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).ok();
        text
    });

    let start = Instant::now();
    let status = loop {
        if let Some(status) = node.try_wait().expect("wait for node") {
            break Some(status);
        }
        if start.elapsed() > BROWSER_DEADLINE {
            node.kill().ok();
            node.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    println!("{output}");
    println!("screenshots: {}", screenshots.display());
    let status = status.unwrap_or_else(|| {
        panic!(
            "the browser tests ran over {BROWSER_DEADLINE:?}\n{output}\nhost:\n{}",
            shop.output.text()
        )
    });
    assert!(
        status.success(),
        "the browser tests failed ({status})\n{output}\nhost:\n{}\nshort-window host:\n{}",
        shop.output.text(),
        short.output.text()
    );
}
