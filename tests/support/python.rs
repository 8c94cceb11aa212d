//! A Python script under `tests/sdk/` that drives the gateway through an official client SDK (pinned in
//! `.ci/run`): one JSON case per line in, one JSON answer per line out, the process kept for a whole test.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

/// One running script.
pub struct SdkScript {
    name: &'static str,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl SdkScript {
    /// Starts `tests/sdk/<name>` with python3.
    pub fn start(name: &'static str) -> SdkScript {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sdk")
            .join(name);
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("python3 is needed for the SDK tests ({e}); .ci/run installs it")
            });
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        SdkScript {
            name,
            child,
            input,
            output,
        }
    }

    /// Sends one case and answers what the script printed for it.
    pub fn ask(&mut self, case: &Value) -> Value {
        writeln!(self.input, "{case}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "{} said {line:?} ({e}); is its SDK installed? (.ci/run pins it)",
                self.name
            )
        })
    }
}

impl Drop for SdkScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
