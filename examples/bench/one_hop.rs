//! The limit rows of the bench: what one L7 hop costs when it does nothing else. An nginx upstream answers a fixed
//! chat completion; in front of it, Debian's nginx (one worker) as a bare reverse proxy, the bare actix-web + awc
//! relay (`relay.rs`, the floor of the crates the gateway is built on), and the gateway (a custom key on that
//! upstream, no budget) are loaded by wrk with one connection and with 64, in alternating rounds whose medians
//! are kept, so a neighbour's burst does not land on one system only. nginx and wrk come from Debian's packages,
//! installed here as root when missing; without them the rows say so and the bench goes on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{free_ports, wait_listening, Proc, TOKEN};

/// The fixed answer the nginx upstream gives every request.
const COMPLETION: &str = r#"{"id":"chatcmpl-fixed","object":"chat.completion","created":1700000000,"model":"mn","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}"#;

/// What wrk measured at one load.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
}

/// The four systems at the two loads (medians over the rounds).
pub struct OneHop {
    pub direct: [Load; 2],
    pub nginx: [Load; 2],
    pub relay: [Load; 2],
    pub gateway: [Load; 2],
}

/// Rounds each system is measured in, alternating with the others.
pub const ROUNDS: usize = 3;

/// Whether Debian's nginx and wrk are here (installing them as root when missing).
fn tools_ready() -> bool {
    let have = |tool: &str| {
        Command::new("sh")
            .args([
                "-c",
                &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have("nginx") && have("wrk") {
        return true;
    }
    let installed = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "nginx",
            "wrk",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    installed && have("nginx") && have("wrk")
}

/// An nginx with `server` as its only server block, one worker, its files in `dir`.
fn nginx(dir: &Path, name: &str, server: &str) -> Proc {
    let conf = dir.join(format!("{name}.conf"));
    let temp = dir.join(format!("{name}-temp"));
    std::fs::create_dir_all(&temp).expect("nginx temp dir");
    let t = temp.display();
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {dir}/{name}.pid;\nerror_log {dir}/{name}-error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n access_log off;\n client_body_temp_path {t}/body;\n proxy_temp_path {t}/proxy;\n\
             fastcgi_temp_path {t}/fastcgi;\n uwsgi_temp_path {t}/uwsgi;\n scgi_temp_path {t}/scgi;\n{server}\n}}\n",
            dir = dir.display()
        ),
    )
    .expect("nginx conf");
    let nginx = if Path::new("/usr/sbin/nginx").exists() {
        PathBuf::from("/usr/sbin/nginx")
    } else {
        PathBuf::from("nginx")
    };
    let child = Command::new(nginx)
        .args(["-e", "stderr", "-c"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    Proc { child }
}

/// wrk's requests/s and median at `connections` against `url`, posting a chat request for `model`.
fn wrk(dir: &Path, url: &str, model: &str, connections: u32, seconds: u64) -> Load {
    let script = dir.join(format!("{model}.lua"));
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Say hello in one short sentence.\"}}]}}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {TOKEN}\"\n"
        ),
    )
    .expect("wrk script");
    let threads = connections.min(2);
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p50_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .map_or(0.0, |v| duration_ms(v.trim()));
    Load { rps, p50_ms }
}

/// wrk's durations: `133.00us`, `1.20ms`, `2.00s`.
fn duration_ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().unwrap_or(0.0);
    match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => 0.0,
    }
}

/// The median of each field over `loads`.
fn median(loads: &[Load]) -> Load {
    let middle = |field: fn(&Load) -> f64| {
        let mut values: Vec<f64> = loads.iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Load {
        rps: middle(|l| l.rps),
        p50_ms: middle(|l| l.p50_ms),
    }
}

/// Measures the four systems; `None` when nginx or wrk cannot be had. `add_key` gives the gateway a custom key
/// on a base URL serving model `mn`; `gateway_url` is its chat completions URL.
pub fn measure(
    dir: &Path,
    seconds: u64,
    add_key: impl Fn(&str, &str, &str),
    gateway_url: &str,
) -> Option<OneHop> {
    if !tools_ready() {
        eprintln!(
            "  nginx or wrk missing (Debian's packages nginx, wrk): the one-hop rows are skipped"
        );
        return None;
    }
    std::fs::create_dir_all(dir).expect("bench dir");
    let [up, proxy, relay] = free_ports();
    let _upstream = nginx(
        dir,
        "upstream",
        &format!(
            " server {{ listen 127.0.0.1:{up}; location / {{ default_type application/json; return 200 '{COMPLETION}'; }} }}"
        ),
    );
    let _proxy = nginx(
        dir,
        "proxy",
        &format!(
            " upstream backend {{ server 127.0.0.1:{up}; keepalive 64; }}\n\
             server {{ listen 127.0.0.1:{proxy}; location / {{ proxy_pass http://backend; proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\"; }} }}"
        ),
    );
    let path = "/v1/chat/completions";
    let direct_url = format!("http://127.0.0.1:{up}{path}");
    let _relay = Proc {
        child: Command::new(std::env::current_exe().expect("the bench's own path"))
            .args(["--relay", &relay.to_string(), &direct_url])
            .spawn()
            .expect("the bare relay"),
    };
    wait_listening(up);
    wait_listening(proxy);
    wait_listening(relay);
    add_key("kn", &format!("http://127.0.0.1:{up}/v1"), "mn");
    let proxy_url = format!("http://127.0.0.1:{proxy}{path}");
    let relay_url = format!("http://127.0.0.1:{relay}{path}");
    let urls = [direct_url.as_str(), &proxy_url, &relay_url, gateway_url];
    // Warm every path (connections, pools, caches) before measuring.
    for url in urls {
        wrk(dir, url, "mn", 4, 1);
    }
    let mut runs: [Vec<[Load; 2]>; 4] = Default::default();
    for _ in 0..ROUNDS {
        for (url, runs) in urls.iter().zip(&mut runs) {
            runs.push([
                wrk(dir, url, "mn", 1, seconds),
                wrk(dir, url, "mn", 64, seconds),
            ]);
        }
    }
    let [direct, nginx, relay, gateway] = runs.map(|runs| {
        let at = |load: usize| median(&runs.iter().map(|r| r[load]).collect::<Vec<_>>());
        [at(0), at(1)]
    });
    Some(OneHop {
        direct,
        nginx,
        relay,
        gateway,
    })
}

#[cfg(test)]
mod tests {
    use super::{duration_ms, median, Load};

    #[test]
    fn reads_wrk_durations() {
        assert!((duration_ms("133.00us") - 0.133).abs() < 1e-9);
        assert!((duration_ms("1.20ms") - 1.2).abs() < 1e-9);
        assert!((duration_ms("2.00s") - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn keeps_each_fields_median() {
        let load = |rps, p50_ms| Load { rps, p50_ms };
        let m = median(&[load(3.0, 0.2), load(1.0, 0.9), load(2.0, 0.1)]);
        assert_eq!((m.rps, m.p50_ms), (2.0, 0.2));
    }
}
