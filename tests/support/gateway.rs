//! Runs the real `freellmapi` binary in a fresh data directory, waits until it listens, captures its log, and
//! stops it (SIGTERM or kill) when asked or dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The unified key every test gateway uses.
pub const TOKEN: &str = "freellmapi-0123456789abcdef0123456789abcdef0123456789abcdef";
/// The ENCRYPTION_KEY every test gateway uses unless a test overrides it.
pub const ENCRYPTION_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates the directory.
    pub fn new() -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("freellmapi-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running gateway process.
pub struct Gateway {
    child: Option<Child>,
    dir: Arc<TempDir>,
    env: Vec<(String, String)>,
    base: String,
    logs: Arc<Mutex<String>>,
}

/// Runs the binary with `args` in `cwd` and the test environment plus `env`; returns (status, stdout, stderr).
/// A command still running after 30 s is killed (its status then has no exit code), so a `serve` that should
/// have refused to start fails its test instead of hanging it.
pub fn run_cli(
    cwd: &Path,
    env: &[(String, String)],
    args: &[&str],
) -> (ExitStatus, String, String) {
    let mut child = command(cwd, env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

fn command(cwd: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_freellmapi"));
    cmd.current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The environment every test gateway starts with; `extra` entries override.
pub fn base_env(dir: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let db = dir.join("data").join("freellmapi.db");
    let mut env: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("DATABASE_URL".into(), db.display().to_string()),
        ("FREELLMAPI_API_KEY".into(), TOKEN.into()),
        ("ENCRYPTION_KEY".into(), ENCRYPTION_KEY.into()),
        ("HEALTH_CHECK_INTERVAL_SECS".into(), "0".into()),
        ("UPSTREAM_TIMEOUT_SECS".into(), "5".into()),
        ("UPSTREAM_CONNECT_TIMEOUT_SECS".into(), "2".into()),
        ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS".into(), "3".into()),
        ("RUST_LOG".into(), "info".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

impl Gateway {
    /// Starts a gateway in a fresh directory with the test environment plus `extra`.
    pub fn start(extra: &[(&str, &str)]) -> Gateway {
        let dir = Arc::new(TempDir::new());
        let env = base_env(&dir.0, extra);
        Gateway::spawn(dir, env).unwrap_or_else(|logs| panic!("gateway did not start:\n{logs}"))
    }

    /// Starts the binary and waits for its `listening on` line; `Err` carries the log if it exited instead.
    fn spawn(dir: Arc<TempDir>, env: Vec<(String, String)>) -> Result<Gateway, String> {
        let mut child = command(&dir.0, &env)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(addr);
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Gateway {
                    child: Some(child),
                    dir,
                    env,
                    base: format!("http://{addr}"),
                    logs,
                });
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(logs.lock().unwrap().clone());
            }
        }
    }

    /// An absolute URL on this gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Everything the process logged so far, including the runs before each restart.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The environment the process runs with.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it to go.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM without waiting, so a test can watch in-flight work finish.
    pub fn signal_stop(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// Stops and starts again on the same data directory, with `overrides` applied to the environment; the log
    /// carries on. `Err` holds the new run's log when it does not start.
    pub fn restart_with(&mut self, overrides: &[(&str, &str)]) -> Result<(), String> {
        self.stop();
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let earlier = self.logs();
        let next = Gateway::spawn(self.dir.clone(), env)?;
        next.logs.lock().unwrap().insert_str(0, &earlier);
        *self = next;
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
