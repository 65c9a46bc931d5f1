//! The status page at `/`, loaded by a real headless Chromium from the real daemon: the DOM
//! after parsing shows the probes, the open incident's timeline, the mode and the resolved
//! incident's post-mortem link; the screenshot is kept as a test artifact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use astreinte::testbed::chromium::Chromium;
use support::scenario::Scenario;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn chromium_renders_probes_incidents_and_decisions() {
    // A third probe whose detail carries markup: it must show as text, never run.
    let s = Scenario::start_with(|target| {
        format!(
            "\n[[probe]]\nid = \"web\"\nkind = \"http\"\nurl = \"{}\"\n\
             body_regex = \"<script>alert(1)</script>\"\ninterval = \"1s\"\ntimeout = \"800ms\"\n",
            target.url("/ok")
        )
    })
    .await;
    // Served as HTML that may not run scripts, never cached.
    let response = s.client.get(s.daemon.url("/")).send().await.unwrap();
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("cache-control"), "no-store");
    assert!(header("content-security-policy").starts_with("default-src 'none'"));

    let browser_dir = tempfile::tempdir().unwrap();
    let mut chromium = Chromium::new(browser_dir.path()).unwrap();
    let page = s.daemon.url("/");

    let dom = chromium.dump_dom(&page).await.unwrap();
    let has = |needle: &str| {
        assert!(dom.contains(needle), "the DOM lacks {needle:?}:\n{dom}");
    };
    has("<title>astreinte · 2 open incidents, worst P1</title>");
    has("id=\"banner\">2 open incidents, worst P1</div>");
    has("id=\"mode\">dry-run</span>");
    has("id=\"leader\">yes</b>");
    // Every probe, coloured by its level.
    has("class=\"row-P1\" id=\"probe-api\"");
    has("class=\"row-ok\" id=\"probe-cache\"");
    // The open incident with its timeline, and its anchor.
    has(&format!("id=\"incident-{}\"", s.open_id));
    has("P1 detected: connection_refused");
    // The dry-run decision of the rule, with its one-line reason.
    has("restart-api");
    let decisions = s.json("/decisions").await.unwrap();
    let line = decisions[0]["line"].as_str().unwrap();
    has(&astreinte::web::escape(line));
    // The resolved incident links to its post-mortem, which the daemon serves.
    let postmortem = format!("/incidents/{}/postmortem", s.resolved_id);
    has(&format!("href=\"{postmortem}\""));
    let md = s
        .client
        .get(s.daemon.url(&postmortem))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.starts_with("# Post-Mortem Incident #"), "{md}");
    // The markup in the probe's detail is text; no script anywhere (the page needs none).
    has("body does not match /&lt;script&gt;alert(1)&lt;/script&gt;/");
    assert!(!dom.contains("<script"), "{dom}");

    let png = artifacts().join("status-page.png");
    let _ = std::fs::remove_file(&png);
    chromium.screenshot(&page, &png, 1280, 1600).await.unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(PNG_SIGNATURE),
        "not a PNG: {}",
        png.display()
    );
    assert!(
        bytes.len() > 10 * 1024,
        "{} is only {} bytes: a blank page?",
        png.display(),
        bytes.len()
    );
    // IHDR: the width asked for.
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1280);
    println!("screenshot: {}", png.display());
}
