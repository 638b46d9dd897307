//! End-to-end harness: the real server (in this process, on a loopback
//! port, serving the release bundle from `dist/`), a misbehaving proxy per
//! browser ([`proxy`]), and real headless Chromium driven through
//! chromedriver with fantoccini. Elements are found by role and accessible
//! name (`../shared/UI.md`), the way a screen reader finds them.

pub mod proxy;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use server::config::Config;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub use proxy::Proxy;

/// One test at a time drives browsers, even when the harness runs tests
/// in parallel: two cores do not run four Chromiums and a server in time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the other tests' browsers to be gone; hold it for the test.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// How long a test waits for the page to reach a state before failing:
/// more than the app's longest reconnect delay (15 s, ±25 %) with room to
/// spare on a slow machine.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// The WebDriver "Enter" key.
pub const ENTER: &str = "\u{E007}";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Where every run leaves its screenshots.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("screenshots")
}

/// The server under test, with its data in a temporary directory.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
    _data: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// Starts with the configuration changed by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Server {
        let dist = repo_root().join("dist");
        assert!(
            dist.join("index.html").is_file(),
            "no web bundle in {}: build it first (trunk build --release)",
            dist.display()
        );
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data.path().to_path_buf(),
            static_dir: dist,
            snapshot_every: 10,
            ..Config::default()
        };
        tune(&mut config);
        let backends = server::open_backends(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::run_with(config, backends, listener, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signs in through the API (for checks behind the browsers' backs).
    pub async fn token(&self, user: &str, password: &str) -> String {
        let r: Value = reqwest::Client::new()
            .post(self.url("/api/sessions"))
            .json(&json!({"userId": user, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"].as_str().expect("a token").to_owned()
    }

    /// The room's messages as the server has them (newest page).
    pub async fn messages(&self, token: &str, room: &str) -> Vec<Value> {
        let r: Value = reqwest::Client::new()
            .get(self.url(&format!("/api/rooms/{room}/messages")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the room's messages on the server pass `check`.
    pub async fn wait_for_messages(
        &self,
        token: &str,
        room: &str,
        check: impl Fn(&[Value]) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let messages = self.messages(token, room).await;
            if check(&messages) {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the server's messages of {room} never got there: {messages:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs a user up through the API (one who acts behind the browsers'
    /// backs).
    pub async fn sign_up(&self, user: &str, password: &str) {
        let r = reqwest::Client::new()
            .post(self.url("/api/users"))
            .json(&json!({"userId": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Appends one event through the API (`eventId` added); must be accepted.
    pub async fn post_event(&self, token: &str, room: &str, mut event: Value) {
        event["eventId"] = json!(uuid::Uuid::new_v4());
        let r = reqwest::Client::new()
            .post(self.url(&format!("/api/rooms/{room}/events")))
            .bearer_auth(token)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Sends messages through the API (for rooms with a history).
    pub async fn post_messages(
        &self,
        token: &str,
        room: &str,
        texts: impl IntoIterator<Item = String>,
    ) {
        for text in texts {
            self.post_event(
                token,
                room,
                json!({"eventType": "MESSAGE_SENT", "content": text}),
            )
            .await;
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

/// A chromedriver process on a free port; killed when dropped.
pub struct Driver {
    port: u16,
    child: Child,
}

impl Driver {
    pub async fn start() -> Driver {
        // rustls finds both ring and aws-lc-rs enabled in this process and
        // will not choose: ring it is (an error only says it was chosen).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, so that its browsers go with it.
        let child = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver on PATH (apt-get install chromium-driver)");
        let status = format!("http://127.0.0.1:{port}/status");
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(&status).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(start.elapsed() < PATIENCE, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { port, child }
    }

    /// A new browser (its own profile, so its own local storage) of the
    /// given window size.
    pub async fn browser(&self, test: &str, width: u32, height: u32) -> Browser {
        // A failure's screenshot is of this run, never an older one.
        let _ = std::fs::remove_file(screenshot_dir().join(format!("FAILED-{test}.png")));
        let profile = tempfile::tempdir().unwrap();
        let binary = std::env::var("CHROME_BINARY").unwrap_or_else(|_| {
            ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .unwrap_or("chromium")
                .to_owned()
        });
        let mut options = json!({
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--window-size={},{height}", width.max(500)),
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        // Chromium's windows are at least 500 px wide: a phone's screen is
        // emulated (viewport, device pixels, touch).
        if width < 500 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 3.0, "touch": true}
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session");
        Browser {
            client,
            test: test.to_owned(),
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the Chromiums it started (a failed test leaves
        // its sessions open).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's browser.
pub struct Browser {
    pub client: Client,
    test: String,
    _profile: tempfile::TempDir,
}

/// XPath string literal (the names used here have no quotes of both kinds).
fn lit(s: &str) -> String {
    if s.contains('\'') {
        format!("\"{s}\"")
    } else {
        format!("'{s}'")
    }
}

/// A message as the page shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: String,
    pub state: String,
    pub text: String,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// A text box by its label (`<label for>` or `aria-label`).
    pub async fn field(&self, label: &str) -> Element {
        let n = lit(label);
        self.find(&format!(
            "//*[self::input or self::textarea][@aria-label={n} or @id=//label[normalize-space(.)={n}]/@for]"
        ))
        .await
    }

    /// Waits for an element by XPath.
    pub async fn find(&self, xpath: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(e) => e,
            Err(e) => self.fail(&format!("no element {xpath}: {e}")).await,
        }
    }

    /// Clicks a button by its accessible name (its text or `aria-label`).
    pub async fn click(&self, button: &str) {
        let n = lit(button);
        self.click_at(&format!(
            "//button[normalize-space(.)={n} or @aria-label={n}]"
        ))
        .await;
    }

    /// Clicks the element at `xpath`, found again if the app re-rendered
    /// it between the find and the click (a message's reaction buttons are
    /// rebuilt whenever its reactions change).
    pub async fn click_at(&self, xpath: &str) {
        let start = Instant::now();
        loop {
            match self.find(xpath).await.click().await {
                Ok(_) => return,
                Err(e) if e.is_stale_element_reference() && start.elapsed() < PATIENCE => {}
                Err(e) => self.fail(&format!("could not click {xpath}: {e}")).await,
            }
        }
    }

    /// Moves the mouse pointer onto the element at `xpath`.
    pub async fn hover(&self, xpath: &str) {
        use fantoccini::actions::{InputSource, MouseActions, PointerAction};
        let element = self.find(xpath).await;
        let to = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        if let Err(e) = self.client.perform_actions(to).await {
            self.fail(&format!("could not hover {xpath}: {e}")).await;
        }
    }

    pub async fn type_into(&self, label: &str, text: &str) {
        let f = self.field(label).await;
        f.clear().await.unwrap();
        f.send_keys(text).await.unwrap();
    }

    /// Runs a script (its body, with `return`) and gives its value.
    pub async fn js(&self, body: &str) -> Value {
        self.client.execute(body, vec![]).await.unwrap()
    }

    /// Waits until the script returns true.
    pub async fn wait_for(&self, what: &str, predicate: &str) {
        let start = Instant::now();
        loop {
            if self.client.execute(predicate, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if start.elapsed() > PATIENCE {
                self.fail(&format!("timed out waiting for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot under `target/screenshots/`.
    pub async fn screenshot(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Fails the test, leaving a screenshot of the page as it was.
    pub async fn fail(&self, why: &str) -> ! {
        self.screenshot(&format!("FAILED-{}", self.test)).await;
        let body = self
            .client
            .execute(
                "return location.href + '\\n' + document.body.innerText",
                vec![],
            )
            .await
            .unwrap_or_default();
        panic!("{why}\n--- the page said:\n{}", body.as_str().unwrap_or(""));
    }

    /// Signs up through the form and waits for the signed-in screen.
    pub async fn sign_up(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/")).await;
        self.type_into("User id", user).await;
        self.type_into("Password", password).await;
        self.click("Sign up").await;
        self.find("//*[@role='status']").await;
        self.find("//button[normalize-space(.)='Sign out']").await;
    }

    /// Creates a room through the form; the app opens it.
    pub async fn create_room(&self, id: &str, name: &str) {
        self.type_into("Room id", id).await;
        self.type_into("Room name", name).await;
        self.click("Create room").await;
        self.wait_for_room(id).await;
    }

    /// Opens a room by its link in the room list.
    pub async fn open_room(&self, id: &str, name: &str) {
        let n = lit(name);
        self.click_at(&format!(
            "//nav[@aria-label='Rooms']//a[contains(normalize-space(.), {n})]"
        ))
        .await;
        self.wait_for_room(id).await;
    }

    /// Waits until the room is open and live (its socket up: `Online`).
    pub async fn wait_for_room(&self, id: &str) {
        self.wait_for(
            &format!("room {id} open"),
            &format!("return location.pathname === '/rooms/{id}' && !!document.querySelector('[role=log]')"),
        )
        .await;
        self.wait_for_status("Online").await;
    }

    pub async fn wait_for_status(&self, word: &str) {
        self.wait_for(
            &format!("the status to say {word}"),
            &format!(
                "const s = document.querySelectorAll('[role=status]'); \
                 return s.length === 1 && s[0].innerText.includes({})",
                json!(word)
            ),
        )
        .await;
    }

    pub async fn status(&self) -> String {
        self.js("const s = document.querySelector('[role=status]'); return s ? s.innerText : ''")
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Types a message into the composer and sends it with Enter.
    pub async fn send(&self, text: &str) {
        let f = self.field("Message").await;
        f.send_keys(text).await.unwrap();
        f.send_keys(ENTER).await.unwrap();
    }

    /// The messages shown in the conversation, oldest first.
    pub async fn messages(&self) -> Vec<Shown> {
        let v = self
            .js(
                "return Array.from(document.querySelectorAll('[role=log] article'))\
                 .map(a => [a.dataset.id || '', a.dataset.state || '', a.innerText])",
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| Shown {
                id: m[0].as_str().unwrap().to_owned(),
                state: m[1].as_str().unwrap().to_owned(),
                text: m[2].as_str().unwrap().to_owned(),
            })
            .collect()
    }

    /// Waits until a message holding `text` is shown with this `data-state`.
    pub async fn wait_for_message(&self, text: &str, state: &str) {
        self.wait_for(
            &format!("message {text:?} to be {state}"),
            &format!(
                "return Array.from(document.querySelectorAll('[role=log] article'))\
                 .some(a => a.dataset.state === {} && a.innerText.includes({}))",
                json!(state),
                json!(text)
            ),
        )
        .await;
    }

    /// Waits until no message holds `text`.
    pub async fn wait_for_no_message(&self, text: &str) {
        self.wait_for(
            &format!("message {text:?} to be gone"),
            &format!(
                "return !Array.from(document.querySelectorAll('[role=log] article'))\
                 .some(a => a.innerText.includes({}))",
                json!(text)
            ),
        )
        .await;
    }

    /// The `<article>` of the message holding `text`.
    pub async fn article(&self, text: &str) -> Element {
        self.find(&format!(
            "//*[@role='log']//article[contains(., {})]",
            lit(text)
        ))
        .await
    }

    /// Clicks the button named `button` (text or `aria-label`) inside the
    /// article of the message holding `text`.
    pub async fn click_in_message(&self, text: &str, button: &str) {
        let b = lit(button);
        self.click_at(&format!(
            "//*[@role='log']//article[contains(., {})]//button[normalize-space(.)={b} or @aria-label={b}]",
            lit(text)
        ))
        .await;
    }

    /// The texts of the `role="alert"` elements shown.
    pub async fn alerts(&self) -> Vec<String> {
        let v = self
            .js("return Array.from(document.querySelectorAll('[role=alert]')).map(a => a.innerText)")
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap_or("").to_owned())
            .collect()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
