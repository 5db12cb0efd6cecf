//! The web UI in a real headless Chromium (issue 10): `tests/ui/ui.test.mjs`,
//! run with node's test runner, drives Debian's `chromium` through
//! Playwright (`playwright-core`, no browser download) against a server
//! started here, scans pages with axe-core, and writes the screenshots
//! in `docs/ui/`.
//!
//! `.ci/run` installs Chromium and runs `npm ci` in `tests/ui`; without
//! them the test skips locally, and fails under `CI=true`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{ADMIN_KEY, Server, sqlite};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The browser: `VEXIL_CHROMIUM`, else Debian's.
fn chromium() -> PathBuf {
    std::env::var("VEXIL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/chromium"))
}

#[tokio::test]
async fn the_web_ui_works_in_a_real_browser() {
    let _exclusive = crate::support::exclusive().await;
    let dir = root().join("tests/ui");
    let browser = chromium();
    let missing: Vec<String> = [
        (
            dir.join("node_modules/playwright-core"),
            "npm ci in tests/ui",
        ),
        (dir.join("node_modules/axe-core"), "npm ci in tests/ui"),
        (browser.clone(), "chromium"),
    ]
    .into_iter()
    .filter(|(p, _)| !p.exists())
    .map(|(p, what)| format!("{} ({what})", p.display()))
    .collect();
    if !missing.is_empty() {
        assert!(!on_ci(), "the browser tests need: {}", missing.join(", "));
        eprintln!("skipping: missing {}", missing.join(", "));
        return;
    }
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let out = tokio::task::spawn_blocking({
        let base = s.base.clone();
        move || {
            Command::new("node")
                .arg("--test")
                .arg("--test-concurrency=1")
                .arg("ui.test.mjs")
                .current_dir(&dir)
                .env("VEXIL_URL", base)
                .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
                .env("VEXIL_CHROMIUM", browser)
                .envs(
                    std::env::var_os("VEXIL_UI_SCREENSHOTS")
                        .map(|_| ("VEXIL_SCREENSHOTS", root().join("docs/ui"))),
                )
                .output()
                .expect("run node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
