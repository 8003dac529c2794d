//! `--timeline FILE.html`: one self-contained page (nothing fetched from
//! anywhere), which headless Chromium renders with one lane per thread and
//! no script error. Chromium is Debian's `chromium` (`.ci/run` installs it
//! when missing); without it the rendering half says so and stops.

use std::path::{Path, PathBuf};
use std::process::Command;

fn timeline_of(script: &str, schedule: &str) -> (PathBuf, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::env::temp_dir().join(format!(
        "conc-timeline-{}-{}.html",
        std::process::id(),
        script.replace('/', "_")
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_conc"))
        .args(["--sched", schedule, "--timeline"])
        .arg(&page)
        .arg(root.join(script))
        .output()
        .expect("conc runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&page).expect("the timeline was written");
    (page, text)
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The page's DOM after its scripts ran.
fn rendered(browser: &str, page: &Path) -> String {
    let profile = std::env::temp_dir().join(format!("conc-chromium-{}", std::process::id()));
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_timeline_draws_a_lane_per_thread() {
    let (page, text) = timeline_of("scripts/15_producer_consumer.conc", "random:7");
    for outside in ["http://", "https://", " src=", "<link", "@import"] {
        assert!(
            !text.contains(outside),
            "the page reaches outside: {outside}"
        );
    }
    assert_eq!(
        text.matches("<script").count(),
        2,
        "the trace and the drawing"
    );
    let Some(browser) = chromium() else {
        eprintln!("skipped the rendering: no chromium here (.ci/run installs Debian's chromium)");
        let _ = std::fs::remove_file(&page);
        return;
    };
    let dom = rendered(browser, &page);
    let _ = std::fs::remove_file(&page);
    assert!(!dom.contains("data-error"), "a script error: {dom}");
    // main, three producers and two consumers.
    assert!(dom.contains("data-lanes=\"6\""), "{dom}");
    assert_eq!(dom.matches("class=\"lane\"").count(), 6);
    for name in ["consumer-0", "consumer-1", "main"] {
        assert!(dom.contains(&format!(">{name}<")), "no lane for {name}");
    }
    assert!(
        !dom.contains("data-flows=\"0\""),
        "arrows for spawn, put -> get ..."
    );
}
