//! `rulesaga serve` as a real process on a free loopback port (it binds port 0 and
//! prints the address it got), called through a real HTTP client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use serde_json::{Value as Json, json};

/// The repository's root (fixtures are read from there, whatever the checkout path).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running server; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub http: reqwest::Client,
    stderr: PathBuf,
}

impl Server {
    /// `rulesaga serve --listen 127.0.0.1:0 ARGS` in `dir`, once it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let stderr = dir.join(format!("serve-{}.err", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rulesaga"))
            .current_dir(dir)
            .env("RUST_LOG", "rulesaga=info")
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "no address: {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .to_string();
        Server {
            child: Some(child),
            base,
            http: reqwest::Client::new(),
            stderr,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `POST path` with a JSON body: status and body.
    pub async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> (u16, Json) {
        answer(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// `GET path`: status and text.
    pub async fn text(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Send a signal (`TERM`, `HUP`) to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Wait for the process to exit.
    pub fn wait(mut self) -> ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Read a saga's events as Server-Sent Events until the stream ends or `until`
    /// holds for one event's type; the event types seen.
    pub async fn follow(&self, id: &str, until: impl Fn(&str) -> bool) -> Vec<String> {
        let mut r = self
            .http
            .get(self.url(&format!("/v1/sagas/{id}/events?follow=true")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let (mut text, mut types) = (String::new(), Vec::new());
        while let Some(chunk) = r.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                if let Some(ty) = frame.lines().find_map(|l| l.strip_prefix("event: ")) {
                    types.push(ty.to_string());
                    if until(ty) {
                        return types;
                    }
                }
            }
        }
        types
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Status and JSON body (`null` when the body is not JSON).
pub async fn answer(r: reqwest::Response) -> (u16, Json) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// A fresh folder with a seeded SQLite database (`demo.db`) and the fixtures.
pub fn world() -> PathBuf {
    let dir = super::cli::temp_dir();
    let out = super::cli::run_in(
        &dir,
        &[
            "saga",
            "seed",
            root().join("sagas/store.json").to_str().unwrap(),
            "--db",
            "demo.db",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    dir
}

/// The arguments that serve the shipped examples and the test sagas from `dir`.
pub fn example_args() -> Vec<String> {
    let r = root();
    vec![
        "--db".into(),
        "demo.db".into(),
        "--rules".into(),
        r.join("specs").display().to_string(),
        "--sagas".into(),
        r.join("sagas").display().to_string(),
        "--sagas".into(),
        r.join("tests/fixtures/serve").display().to_string(),
    ]
}

/// A server in `dir` on the shipped examples and the test sagas, with `extra`.
pub fn serve_examples(dir: &Path, extra: &[&str]) -> Server {
    let mut args = example_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(dir, &args)
}

/// The example order input.
pub fn order() -> Json {
    let text = std::fs::read_to_string(root().join("sagas/inputs/order_ok.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A start of `slow` that sleeps `ms`.
pub fn slow(ms: u64) -> Json {
    json!({"input": {"ms": ms}})
}
