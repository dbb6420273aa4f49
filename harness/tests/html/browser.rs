//! The page in a real headless Chromium, driven over WebDriver
//! (chromedriver): it loads with no console error, a click on the failing
//! case shows its ladder and its failing step, a sweep cell opens its
//! case's ladder with one arrow per captured segment, the status filter
//! hides the passing cases, and a case opens by keyboard. Screenshots of
//! each view are written to `HANGUP_SCREENSHOTS` (a folder; CI keeps it
//! as an artifact), else to the test's temp folder.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hangup::record::EventKind;
use hangup::report::format::Report;
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;

/// The failing case of the run, and one sweep cell, as the page names them.
const FAILING: &str = "state_within::server_never_releases";
const CELL: &str = "sweep_slow::while_it_works::request_sent::abort";
/// A case opened by keyboard.
const KEYBOARD: &str = "s02_read_timeout_mid_stream::client_times_out_then_server_write_fails";

/// A chromedriver of our own, on a port of the host's loopback it picked,
/// in a process group of its own with the browsers it starts: dropped,
/// the whole group is killed, so that a test that panics mid-session
/// leaves no browser behind.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver and waits for the line that names its port;
    /// `None` when the machine has none. It and the browsers it starts
    /// keep their temporary files in `tmp` (`TMPDIR`): a browser killed
    /// mid-cleanup leaves its scratch folders there, not in the machine's
    /// temp folder.
    fn start(tmp: &Path) -> Option<Driver> {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .env("TMPDIR", tmp)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take().expect("piped stdout");
        // "ChromeDriver was started successfully on port 46631."
        let port = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("ChromeDriver was started successfully on port ")
                    .and_then(|rest| rest.trim_end_matches('.').parse().ok())
            });
        match port {
            Some(port) => Some(Driver { child, port }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver started but never said its port");
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)`).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// chromedriver's log of the browser's console (`goog:loggingPrefs`), as
/// Selenium reads it: not in the W3C protocol, so not in fantoccini's API.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// What to check of a page.
pub enum Page<'a> {
    /// A run's page, against the run's JSON report.
    Run(&'a Report<'a>),
    /// A run that compared two versions of a sweep's program, which found
    /// `differences` in one cell.
    Versions { differences: usize },
}

/// Drives `page` in Chromium, checking what `what` says it shows.
/// Without chromium and chromedriver it says so and returns, except
/// under `CI`, which must have them.
pub fn check_the_page(page: &Path, what: Page<'_>, scratch: &Path) {
    let browser = browser();
    let tmp = scratch.join("browser-tmp");
    std::fs::create_dir_all(&tmp).expect("the browser's temp folder");
    let driver = if browser.is_some() {
        Driver::start(&tmp)
    } else {
        None
    };
    let (Some(browser), Some(driver)) = (browser, driver) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium and chromedriver for this test"
        );
        eprintln!("no chromium or chromedriver here: the browser half of this test did not run");
        return;
    };
    let shots = std::env::var_os("HANGUP_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.join("screenshots"));
    std::fs::create_dir_all(&shots).expect("the screenshots' folder");
    let profile = scratch.join("profile");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": browser,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session");
        let outcome = match what {
            Page::Run(report) => drive(&client, page, report, &shots).await,
            Page::Versions { differences } => {
                drive_versions(&client, page, differences, &shots).await
            }
        };
        let _ = client.close().await;
        if let Err(e) = outcome {
            panic!("{e}");
        }
    });
    drop(driver);
}

/// The first Chromium on `PATH`: Debian's `chromium`, or Google's build
/// (as GitHub's runners have it).
fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| {
            Command::new(candidate)
                .arg("--version")
                .output()
                .is_ok_and(|out| out.status.success())
        })
}

/// What the page must do, step by step; an error names the step.
async fn drive(
    client: &Client,
    page: &Path,
    report: &Report<'_>,
    shots: &Path,
) -> Result<(), String> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: fantoccini::error::CmdError| format!("{what}: {e}")
    };
    client
        .goto(&format!("file://{}", page.display()))
        .await
        .map_err(fail("open the page"))?;
    shot(client, shots, "1-summary.png").await?;

    // The failing case is the table's first row; its link opens it.
    let first = client
        .find(Locator::Css("#case-table tbody tr"))
        .await
        .map_err(fail("the table's first row"))?;
    let link = first
        .find(Locator::Css("a"))
        .await
        .map_err(fail("its link"))?;
    assert_eq!(link.text().await.map_err(fail("its name"))?, FAILING);
    link.click().await.map_err(fail("click the failing case"))?;
    let case = opened(client, FAILING).await?;
    let failure = case
        .find(Locator::Css(".failure"))
        .await
        .map_err(fail("the failure box"))?;
    assert!(failure.is_displayed().await.map_err(fail("shown"))?);
    let text = failure.text().await.map_err(fail("its text"))?;
    assert!(
        text.contains("expected") && text.contains("server gone within 300 ms"),
        "{text}"
    );
    let failing = case
        .find_all(Locator::Css("svg.ladder g.failing"))
        .await
        .map_err(fail("the failing step on the ladder"))?;
    assert!(!failing.is_empty(), "no step highlighted on the ladder");
    assert!(failing[0].is_displayed().await.map_err(fail("shown"))?);
    // Beside the failing step, what it expected and what it observed.
    let mut said = Vec::new();
    for row in case
        .find_all(Locator::Css("svg.ladder g.verdict"))
        .await
        .map_err(fail("the failing step's verdict rows"))?
    {
        assert!(row.is_displayed().await.map_err(fail("shown"))?);
        said.push(row.text().await.map_err(fail("its text"))?);
    }
    assert_eq!(
        said,
        [
            "expected server gone within 300 ms",
            "observed server CLOSE_WAIT"
        ]
    );
    arrows_match(&case, report, FAILING).await?;
    text_fits(client, FAILING).await?;
    shot_of(&case, shots, "2-failing-case.png").await?;

    // A sweep cell opens its case, its ladder drawn.
    let cell = client
        .find(Locator::Css(&format!(
            "table.matrix a[href=\"#case-{CELL}\"]"
        )))
        .await
        .map_err(fail("the sweep cell"))?;
    let matrix = client
        .find(Locator::Css("table.matrix"))
        .await
        .map_err(fail("the matrix"))?;
    shot_of(&matrix, shots, "3-matrix.png").await?;
    cell.click().await.map_err(fail("click the cell"))?;
    let case = opened(client, CELL).await?;
    arrows_match(&case, report, CELL).await?;
    text_fits(client, CELL).await?;
    shot_of(&case, shots, "4-sweep-cell.png").await?;

    // The status filter hides the passing cases.
    client
        .find(Locator::Css("#filter-status"))
        .await
        .map_err(fail("the status filter"))?
        .select_by_value("failed")
        .await
        .map_err(fail("choose failed"))?;
    let rows = client
        .find_all(Locator::Css("#case-table tbody tr"))
        .await
        .map_err(fail("the rows"))?;
    let mut shown = Vec::new();
    for row in &rows {
        if row.is_displayed().await.map_err(fail("a row"))? {
            shown.push(row.attr("data-name").await.map_err(fail("its name"))?);
        }
    }
    assert_eq!(
        shown,
        [Some(FAILING.to_string())],
        "rows left by the filter"
    );
    let said = client
        .find(Locator::Id("shown"))
        .await
        .map_err(fail("the count shown"))?
        .text()
        .await
        .map_err(fail("its text"))?;
    assert_eq!(said, format!("1 of {} cases shown", rows.len()));
    shot(client, shots, "5-filtered.png").await?;

    // The key to the ladder's notation opens, and says what a call's
    // number is (the first thing a reader new to hangup asked).
    client
        .find(Locator::Css("details.legend > summary"))
        .await
        .map_err(fail("the ladder's key"))?
        .click()
        .await
        .map_err(fail("open it"))?;
    let key = client
        .find(Locator::Css("details.legend dl"))
        .await
        .map_err(fail("its list"))?;
    assert!(key.is_displayed().await.map_err(fail("shown"))?);
    let said = key.text().await.map_err(fail("its text"))?;
    assert!(said.contains("counted in that side's list"), "{said}");

    contrast_suffices(client).await?;

    // By keyboard alone: Enter on a closed case's summary opens it, its
    // ladder put in place.
    let closed = client
        .find(Locator::Css(&format!(
            "details.case[id=\"case-{KEYBOARD}\"] > summary"
        )))
        .await
        .map_err(fail("a closed case's summary"))?;
    closed
        .send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
        .await
        .map_err(fail("Enter on it"))?;
    opened(client, KEYBOARD).await?;

    console_is_clean(client).await
}

/// Every status word, count, matrix cell and ladder text shown has a
/// contrast of at least 4.5:1 (WCAG AA for text) against the background
/// it is drawn on, as the browser computes their colours.
async fn contrast_suffices(client: &Client) -> Result<(), String> {
    let script = r#"
        function rgb(c) { return (c.match(/[\d.]+/g) || []).map(Number); }
        function lum(c) {
            const [r, g, b] = rgb(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        }
        function background(el) {
            for (let e = el; e; e = e.parentElement) {
                const c = getComputedStyle(e).backgroundColor;
                const parts = rgb(c);
                if (parts.length === 3 || (parts.length === 4 && parts[3] > 0)) return c;
            }
            return 'rgb(255, 255, 255)';
        }
        const out = [];
        let checked = 0;
        const items = document.querySelectorAll(
            '.status, .count, table.matrix td a, details.case[open] svg.ladder text, .muted');
        for (const el of items) {
            if (!el.getClientRects().length) continue;
            const style = getComputedStyle(el);
            const fg = el instanceof SVGElement ? style.fill : style.color;
            const a = lum(fg), b = lum(background(el));
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            checked += 1;
            if (ratio < 4.5) out.push(el.textContent.slice(0, 40) + ': ' + fg + ' on ' + background(el) + ' = ' + ratio.toFixed(2));
        }
        return { checked: checked, low: out };
    "#;
    let found = client
        .execute(script, vec![])
        .await
        .map_err(|e| format!("the contrast: {e}"))?;
    assert!(
        found["checked"].as_u64().is_some_and(|n| n > 20),
        "too few texts checked: {found}"
    );
    assert_eq!(found["low"], json!([]), "texts below 4.5:1");
    Ok(())
}

/// Nothing went wrong on the console so far: no error, no warning.
async fn console_is_clean(client: &Client) -> Result<(), String> {
    let log = client
        .issue_cmd(BrowserLog)
        .await
        .map_err(|e| format!("the console's log: {e}"))?;
    let errors: Vec<&serde_json::Value> = log
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
                .collect()
        })
        .unwrap_or_default();
    assert!(errors.is_empty(), "the console: {errors:#?}");
    Ok(())
}

/// The versions' section: the changed sweep cell links to its case,
/// which opens to its differences and its two versions' ladders side by
/// side, the steps whose observations changed highlighted in each.
async fn drive_versions(
    client: &Client,
    page: &Path,
    differences: usize,
    shots: &Path,
) -> Result<(), String> {
    let fail = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");
    client
        .goto(&format!("file://{}", page.display()))
        .await
        .map_err(fail("open the page"))?;
    let changed = client
        .find_all(Locator::Css("#versions table.matrix.changes td.verdict a"))
        .await
        .map_err(fail("the changed cells"))?;
    assert_eq!(changed.len(), 1, "one cell changed verdict");
    assert_eq!(
        changed[0].text().await.map_err(fail("its word"))?,
        "ok->FAILED"
    );
    let target = changed[0]
        .attr("href")
        .await
        .map_err(fail("its link"))?
        .and_then(|h| h.strip_prefix("#case-").map(str::to_string))
        .ok_or("the cell links nowhere")?;
    let table = client
        .find(Locator::Css("#versions table.matrix.changes"))
        .await
        .map_err(fail("the matrix"))?;
    shot_of(&table, shots, "6-versions-matrix.png").await?;
    changed[0].click().await.map_err(fail("click the cell"))?;
    let case = opened(client, &target).await?;
    let rows = case
        .find_all(Locator::Css("table.differences tbody tr"))
        .await
        .map_err(fail("the differences"))?;
    assert_eq!(rows.len(), differences, "a row per difference");
    let sides = case
        .find_all(Locator::Css(".versions .version"))
        .await
        .map_err(fail("the two versions"))?;
    assert_eq!(sides.len(), 2);
    // Side by side: the new version's column right of the base's.
    let (bx, by, bw, _) = sides[0].rectangle().await.map_err(fail("base's box"))?;
    let (nx, ny, _, _) = sides[1].rectangle().await.map_err(fail("new's box"))?;
    assert!(nx >= bx + bw && (ny - by).abs() < 1.0, "not side by side");
    for side in &sides {
        let marked = side
            .find_all(Locator::Css("svg.ladder g.changed"))
            .await
            .map_err(fail("the changed steps"))?;
        assert!(!marked.is_empty(), "no changed step highlighted");
    }
    shot_of(&case, shots, "7-versions-side-by-side.png").await?;
    console_is_clean(client).await
}

/// The case `name`'s section once it is open and its ladder in place.
async fn opened(client: &Client, name: &str) -> Result<Element, String> {
    let css = format!("details.case[id=\"case-{name}\"][open] svg.ladder");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&css))
        .await
        .map_err(|e| format!("{name} did not open with its ladder: {e}"))?;
    let case = client
        .find(Locator::Css(&format!("details.case[id=\"case-{name}\"]")))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let ladder = case
        .find(Locator::Css("svg.ladder"))
        .await
        .map_err(|e| format!("{name}'s ladder: {e}"))?;
    assert!(
        ladder.is_displayed().await.map_err(|e| e.to_string())?,
        "{name}'s ladder is not shown"
    );
    Ok(case)
}

/// One arrow on the case's ladder per segment its JSON report captured
/// (folded ones are drawn, hidden).
async fn arrows_match(case: &Element, report: &Report<'_>, name: &str) -> Result<(), String> {
    let segments = report
        .last_round()
        .iter()
        .find(|c| c.name == name)
        .map(|c| {
            c.timeline
                .events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Packet { .. }))
                .count()
        })
        .ok_or_else(|| format!("{name} is not in the JSON report"))?;
    let arrows = case
        .find_all(Locator::Css("svg.ladder g.segment"))
        .await
        .map_err(|e| format!("{name}'s arrows: {e}"))?
        .len();
    assert!(segments > 0, "{name} captured nothing: a check of nothing");
    assert_eq!(arrows, segments, "{name}: arrows against captured segments");
    Ok(())
}

/// Every text drawn on the case's ladder (but the times) lies right of
/// the time column and inside the picture, as laid out by this browser's
/// fonts: none cut off, none written over the times.
async fn text_fits(client: &Client, name: &str) -> Result<(), String> {
    let script = r#"
        const svg = document.getElementById(arguments[0]).querySelector('svg.ladder');
        const width = svg.viewBox.baseVal.width;
        const times = Math.max(...Array.from(svg.querySelectorAll('text.time'),
            t => t.getBBox().x + t.getBBox().width));
        const out = [];
        for (const t of svg.querySelectorAll('text')) {
            if (t.closest('.folded') || t.classList.contains('time')) continue;
            const b = t.getBBox();
            if (b.x < times || b.x + b.width > width) {
                out.push(t.textContent + ' at ' + Math.round(b.x) + '..' + Math.round(b.x + b.width));
            }
        }
        return { width: width, times: times, out: out };
    "#;
    let found = client
        .execute(script, vec![json!(format!("case-{name}"))])
        .await
        .map_err(|e| format!("{name}'s texts: {e}"))?;
    assert_eq!(
        found["out"],
        json!([]),
        "{name}: texts outside the margins (time column ends at {}, picture {} wide)",
        found["times"],
        found["width"]
    );
    Ok(())
}

async fn shot(client: &Client, dir: &Path, file: &str) -> Result<(), String> {
    let png = client
        .screenshot()
        .await
        .map_err(|e| format!("screenshot {file}: {e}"))?;
    std::fs::write(dir.join(file), png).map_err(|e| format!("write {file}: {e}"))
}

async fn shot_of(element: &Element, dir: &Path, file: &str) -> Result<(), String> {
    let png = element
        .screenshot()
        .await
        .map_err(|e| format!("screenshot {file}: {e}"))?;
    std::fs::write(dir.join(file), png).map_err(|e| format!("write {file}: {e}"))
}
