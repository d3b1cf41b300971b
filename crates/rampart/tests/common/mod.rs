//! Shared harness: start the real `rampart` binary on a free loopback port
//! with a given configuration, and in-process test upstreams.

#![allow(dead_code)]

pub mod site;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_testkit::MockServer;

/// A running `rampart serve`, killed when dropped.
pub struct Rampart {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub stderr: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

/// The embedding model's directory, fetched by scripts/test (`rampart model fetch-embedding`).
pub fn embedding_model() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(
        path.join("model.safetensors").exists(),
        "{} is missing: run scripts/test, which fetches it",
        path.display()
    );
    path
}

/// The default model, fetched by scripts/test (`rampart model fetch-default`).
pub fn default_model() -> PathBuf {
    let path = std::env::var_os("RAMPART_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run `rampart model fetch-default --dir models` (scripts/test does)",
        path.display()
    );
    path
}

impl Rampart {
    /// Starts rampart with `config`, in which `{port}` stands for the listen port.
    pub async fn start(config: &str) -> Self {
        Self::start_with(config, "http").await
    }

    pub async fn start_with(config: &str, scheme: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = dir.path().join("rampart.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(config.replace("{port}", &port.to_string()).as_bytes())
            .unwrap();
        Self::start_file(&path, port, dir, scheme).await
    }

    /// Starts rampart with the configuration file at `path`, which listens on `port`;
    /// its log goes into `dir`.
    pub async fn start_file(path: &Path, port: u16, dir: tempfile::TempDir, scheme: &str) -> Self {
        let stderr = dir.path().join("stderr.log");
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("rampart starts");
        let mut rampart = Self { child, port, dir, stderr };
        rampart.wait_alive(scheme).await;
        rampart
    }

    async fn wait_alive(&mut self, scheme: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rampart exited with {status}: {}", self.logs());
            }
            if client.get(format!("{scheme}://127.0.0.1:{}/healthz", self.port)).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rampart did not come up: {}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until /readyz says ready.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(self.url("/readyz")).await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rampart never became ready");
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An in-process test upstream on a free port.
pub async fn mock(name: &str) -> (MockServer, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (rampart_testkit::spawn(listener, name), addr)
}

/// `[server]` for plain HTTP on loopback.
pub fn server_section(extra: &str) -> String {
    format!("[server]\nlisten = \"127.0.0.1:{{port}}\"\ninsecure_dev = true\n{extra}\n")
}

/// A `[[backends]]` entry.
pub fn backend(name: &str, addr: SocketAddr, models: &[&str], extra: &str) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "\n[[backends]]\nname = \"{name}\"\nurl = \"http://{addr}/v1\"\nmodels = [{}]\n{extra}\n",
        models.join(", ")
    )
}

/// Runs the `rampart` command line with `args`; fails the test with its error output unless it succeeds.
pub fn cli(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    let output = Command::new(binary()).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The `[[sites]] key_sha256` pin of the certificate at `cert`, as `rampart site pin` prints it.
pub fn site_pin(cert: &Path) -> String {
    String::from_utf8(cli(&[&"site", &"pin", &cert]).stdout).unwrap().trim().to_owned()
}

/// The published entries of the audit log in `dir`, as `rampart audit show --json` prints them.
pub fn audit_entries(dir: &Path) -> Vec<rampart_audit::entry::Entry> {
    let output = cli(&[&"audit", &"show", &"--json", &dir]);
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().map(|line| rampart_audit::entry::Entry::decode(line.as_bytes()).unwrap()).collect()
}

/// Polls `check` until it holds or `seconds` pass.
pub async fn eventually(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).map(str::to_owned).collect()
}

pub fn chat_body(model: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}
