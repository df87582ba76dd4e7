//! A real Chromium for the console's browser tests: Debian's `chromium`, driven over WebDriver by
//! its `chromedriver` (package `chromium-driver`) through fantoccini.
//!
//! Each [`Browser`] starts its own chromedriver on a free port, in a process group of its own,
//! with a headless Chromium of a fixed window size and a fresh profile. Dropping it kills that
//! whole group (chromedriver and every Chromium process under it) and removes the profile.
//!
//! Waits poll the page for an element or a condition with a generous timeout
//! ([`Browser::TIMEOUT`]); no test asserts how long anything took. A machine without the browser
//! fails the test with the packages to install: the browser tests never skip.

// Each test uses a part of it.
#![allow(dead_code)]

use anyhow::{bail, Context as _};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming where screenshots go, relative to the repository: `docs/console` for the
/// README's pictures.
pub const SCREENSHOTS: &str = "JETSAGA_SCREENSHOTS";

/// The window every test sees, so the screenshots in the README have one size.
pub const WINDOW: (u32, u32) = (1600, 1000);

const INSTALL: &str = "the console's browser tests need Chromium and its WebDriver: install \
     chromium and chromium-driver (Debian: apt-get install chromium chromium-driver \
     fonts-dejavu-core; .ci/run does this)";

/// A headless Chromium behind its own chromedriver.
#[derive(Debug)]
pub struct Browser {
    client: Option<Client>,
    driver: Driver,
}

impl Browser {
    /// How long a wait polls before it fails.
    pub const TIMEOUT: Duration = Duration::from_secs(90);
    const POLL: Duration = Duration::from_millis(150);

    /// Starts chromedriver and a Chromium session.
    pub async fn start() -> anyhow::Result<Self> {
        let chromedriver = find_program(&["chromedriver"])
            .with_context(|| format!("chromedriver is not on PATH: {INSTALL}"))?;
        let chromium = std::env::var_os("JETSAGA_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| find_program(&["chromium", "chromium-browser"]))
            .with_context(|| format!("chromium is not on PATH: {INSTALL}"))?;
        let driver = Driver::start(&chromedriver).await?;
        let (width, height) = WINDOW;
        let profile = driver.profile.display().to_string();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--force-device-scale-factor=1",
                    "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={profile}"),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .with_context(|| format!("starting a Chromium session through {}", driver.url))?;
        client.set_window_size(width, height).await?;
        Ok(Browser {
            client: Some(client),
            driver,
        })
    }

    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until close")
    }

    /// Ends the WebDriver session (Chromium quits); the driver is killed on drop.
    pub async fn close(mut self) -> anyhow::Result<()> {
        if let Some(client) = self.client.take() {
            client.close().await?;
        }
        Ok(())
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client()
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// Opens the console at `base` and signs in with `token`; waits for the header to name
    /// `name`.
    pub async fn sign_in(&self, base: &str, token: &str, name: &str) -> anyhow::Result<()> {
        self.goto(&format!("{base}/#/sagas")).await?;
        self.fill("[data-testid=signin-token]", token).await?;
        self.click("[data-testid=signin-submit]").await?;
        self.wait_text("[data-testid=who-name]", name).await?;
        Ok(())
    }

    /// Goes to a view by its navigation link, e.g. `dead-letters`.
    pub async fn nav(&self, view: &str) -> anyhow::Result<()> {
        self.click(&format!("[data-testid=nav-{view}]")).await?;
        self.wait_for(&format!("main[data-view={view}]")).await?;
        Ok(())
    }

    /// Polls `check` until it answers `Some`, or fails after [`Browser::TIMEOUT`] saying what
    /// it waited for and what the page showed last.
    pub async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let start = Instant::now();
        let mut last = String::from("nothing yet");
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if start.elapsed() > Self::TIMEOUT {
                let mut page = self.page_text().await.unwrap_or_default();
                // What the page heard from /api/live, for a wait that a live update should
                // have ended.
                if let Ok(live) = self
                    .script(
                        "const l = document.getElementById('live'); \
                         return l ? JSON.stringify(l.dataset) + ' ' + l.className : '';",
                        vec![],
                    )
                    .await
                {
                    page.push_str(&format!("\n--- live: {live}"));
                }
                let shot = std::env::temp_dir().join(format!(
                    "jetsaga-console-failure-{}.png",
                    uuid::Uuid::new_v4()
                ));
                let saved = match self.client().screenshot().await {
                    Ok(png) => std::fs::write(&shot, png)
                        .map(|()| format!("screenshot in {}", shot.display()))
                        .unwrap_or_else(|e| format!("no screenshot: {e}")),
                    Err(e) => format!("no screenshot: {e}"),
                };
                bail!(
                    "waited {:?} for {what}; last error: {last}; {saved}\n--- the page showed ---\n{page}",
                    Self::TIMEOUT
                );
            }
            tokio::time::sleep(Self::POLL).await;
        }
    }

    /// The first element that matches `css`, once there is one.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        self.until(&format!("an element {css}"), || async {
            Ok(self.client().find_all(Locator::Css(css)).await?.pop_first())
        })
        .await
    }

    /// Waits until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str) -> anyhow::Result<()> {
        self.until(&format!("no element {css}"), || async {
            Ok(self
                .client()
                .find_all(Locator::Css(css))
                .await?
                .is_empty()
                .then_some(()))
        })
        .await
    }

    /// Waits until exactly `n` elements match `css`.
    pub async fn wait_count(&self, css: &str, n: usize) -> anyhow::Result<()> {
        self.until(&format!("{n} elements {css}"), || async {
            Ok((self.client().find_all(Locator::Css(css)).await?.len() == n).then_some(()))
        })
        .await
    }

    /// Waits until the text of the first element matching `css` contains `text`; returns it.
    pub async fn wait_text(&self, css: &str, text: &str) -> anyhow::Result<String> {
        self.until(&format!("{css} to say {text:?}"), || async {
            let Some(el) = self.client().find_all(Locator::Css(css)).await?.pop_first() else {
                return Ok(None);
            };
            let shown = el.text().await?;
            Ok(shown.contains(text).then_some(shown))
        })
        .await
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> anyhow::Result<usize> {
        Ok(self.client().find_all(Locator::Css(css)).await?.len())
    }

    /// The values of attribute `attr` on every element matching `css` now (read again when a
    /// live refresh re-drew the page while they were being read).
    pub async fn attrs(&self, css: &str, attr: &str) -> anyhow::Result<Vec<String>> {
        self.until(&format!("to read {attr} of {css}"), || async {
            let mut out = Vec::new();
            for el in self.client().find_all(Locator::Css(css)).await? {
                out.extend(el.attr(attr).await?);
            }
            Ok(Some(out))
        })
        .await
    }

    /// Clicks the first element matching `css` once it is there and enabled; a click that
    /// misses because the page re-drew it (a live refresh) is tried again.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.until(&format!("to click {css}"), || async {
            let Some(el) = self.client().find_all(Locator::Css(css)).await?.pop_first() else {
                return Ok(None);
            };
            if !el.is_enabled().await? {
                return Ok(None);
            }
            el.click().await?;
            Ok(Some(()))
        })
        .await
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.until(&format!("to type into {css}"), || async {
            let Some(el) = self.client().find_all(Locator::Css(css)).await?.pop_first() else {
                return Ok(None);
            };
            el.clear().await?;
            el.send_keys(text).await?;
            Ok(Some(()))
        })
        .await
    }

    /// Chooses the local file `path` in the file input matching `css` (Chromium runs on this
    /// machine, so it reads the file itself).
    pub async fn upload(&self, css: &str, path: &Path) -> anyhow::Result<()> {
        let path = path.display().to_string();
        self.until(&format!("to choose {path} in {css}"), || async {
            let Some(el) = self.client().find_all(Locator::Css(css)).await?.pop_first() else {
                return Ok(None);
            };
            el.send_keys(&path).await?;
            Ok(Some(()))
        })
        .await
    }

    /// Chooses the option of value `value` in the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.until(&format!("to choose {value:?} in {css}"), || async {
            let Some(el) = self.client().find_all(Locator::Css(css)).await?.pop_first() else {
                return Ok(None);
            };
            el.select_by_value(value).await?;
            Ok(Some(()))
        })
        .await
    }

    /// Whether the first element matching `css` is enabled, once there is one (asked again when a
    /// live refresh re-drew it in between: a stale element).
    pub async fn is_enabled(&self, css: &str) -> anyhow::Result<bool> {
        self.until(&format!("whether {css} is enabled"), || async {
            let Some(el) = self.client().find_all(Locator::Css(css)).await?.pop_first() else {
                return Ok(None);
            };
            Ok(Some(el.is_enabled().await?))
        })
        .await
    }

    /// Runs `script` in the page (its `arguments` are `args`) and returns what it returned.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        Ok(self.client().execute(script, args).await?)
    }

    /// Reloads the page.
    pub async fn reload(&self) -> anyhow::Result<()> {
        Ok(self.client().refresh().await?)
    }

    /// The text of the whole page, for failure messages.
    pub async fn page_text(&self) -> anyhow::Result<String> {
        let body = self.client().find(Locator::Css("body")).await?;
        Ok(body.text().await?)
    }

    /// Saves what the window shows to `<name>.png`, in the folder [`SCREENSHOTS`] names relative
    /// to the repository (`docs/console` refreshes the README's pictures), else under the build's
    /// temporary folder, so a test run leaves the tree as it was.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        // The whole page, not only the window: grow the window until the page fits (up to
        // 3000 px; the window's height includes what the browser itself takes), then give it
        // its size back.
        let (width, height) = WINDOW;
        let mut grown = false;
        for _ in 0..3 {
            let sizes = self
                .script(
                    "return [document.documentElement.scrollHeight, window.innerHeight]",
                    vec![],
                )
                .await?;
            let (page, inner) = (
                sizes[0].as_u64().unwrap_or(0),
                sizes[1].as_u64().unwrap_or(0),
            );
            let (_, outer) = self.client().get_window_size().await?;
            if page <= inner || outer >= 3000 {
                break;
            }
            let target = u32::try_from(outer + (page - inner))
                .unwrap_or(3000)
                .min(3000);
            self.client().set_window_size(width, target).await?;
            grown = true;
        }
        let png = self.client().screenshot().await;
        if grown {
            self.client().set_window_size(width, height).await?;
        }
        let png = png?;
        let dir = match std::env::var_os(SCREENSHOTS) {
            Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir),
            None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"),
        };
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("screenshot: {}", path.display());
        Ok(path)
    }
}

trait PopFirst<T> {
    fn pop_first(self) -> Option<T>;
}

impl<T> PopFirst<T> for Vec<T> {
    fn pop_first(self) -> Option<T> {
        self.into_iter().next()
    }
}

/// chromedriver on a free port of 127.0.0.1, the leader of its own process group.
#[derive(Debug)]
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    async fn start(program: &Path) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let port = jetsaga_testkit::free_port()?;
        let profile =
            std::env::temp_dir().join(format!("jetsaga-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile)?;
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}: {INSTALL}", program.display()))?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
        };
        let status = format!("{}/status", driver.url);
        let start = Instant::now();
        loop {
            // Only this chromedriver's own answer counts: another process may hold the port.
            let ours = jetsaga_scenarios::listening::listens_on(driver.child.id(), port);
            let ready = reqwest::get(&status)
                .await
                .ok()
                .filter(|r| ours && r.status().is_success());
            if ready.is_some() {
                return Ok(driver);
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("chromedriver did not answer on {status} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started (a session that was not closed
        // leaves its browser running otherwise).
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}
