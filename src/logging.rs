//! Log output: env_logger's human-readable lines, or one JSON object per line (`LOG_FORMAT=json`) for log
//! collectors (Loki, CloudWatch, journald's JSON export) that should not have to parse free text.

use std::io::Write;

use serde_json::json;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `[2026-11-25T10:00:00.123Z INFO  freellmapi::server] message`.
    #[default]
    Text,
    /// `{"ts":"2026-11-25T10:00:00.123Z","level":"INFO","target":"freellmapi::server","message":"…"}`.
    Json,
}

/// `text` or `json`, in any case; the error is only the hint, since the settings table names the variable.
impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("use text or json".to_owned()),
        }
    }
}

/// Installs the logger once per process; later calls (tests starting several servers) keep the first.
pub fn init(filter: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter).format_timestamp_millis();
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = json_line(
                &buf.timestamp_millis().to_string(),
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
            );
            writeln!(buf, "{line}")
        });
    }
    let _ = builder.try_init();
}

/// One JSON log line (without the newline); every string is escaped by serde_json, so a message cannot break
/// the line apart.
fn json_line(ts: &str, level: &str, target: &str, message: &str) -> String {
    json!({"ts": ts, "level": level, "target": target, "message": message}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_refuse_others() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("TEXT".parse(), Ok(LogFormat::Text));
        assert!("yaml"
            .parse::<LogFormat>()
            .unwrap_err()
            .contains("text or json"));
    }

    #[test]
    fn a_json_line_is_one_object_whatever_the_message() {
        let line = json_line(
            "2026-11-25T10:00:00.123Z",
            "WARN",
            "freellmapi::http",
            "bad \"input\"\nsecond line",
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["target"], "freellmapi::http");
        assert_eq!(v["message"], "bad \"input\"\nsecond line");
        assert_eq!(v["ts"], "2026-11-25T10:00:00.123Z");
    }
}
