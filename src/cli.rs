//! The command line: `serve` (default), `gen-key`, `token`, `keys add|list|remove`, `rotate-encryption-key`,
//! `healthcheck`, `--help`, `--version`.
//! Key commands work on the database directly and are safe while a server runs (it notices within seconds).

use std::process::ExitCode;

use crate::actors::discovery::discover_models;
use crate::actors::provider::LocalProvider;
use crate::catalog::Catalog;
use crate::config::{parse_encryption_key, settings_help, Config};
use crate::crypto::generate_key;
use crate::key_admin::{self, CustomModel, NewKey};
use crate::provider_key::KeyId;
use crate::providers::connector;
use crate::redact::Redactor;
use crate::{encryption_key_rotation, healthcheck, hex, server, startup_secrets, store};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Print a fresh ENCRYPTION_KEY.
    GenKey,
    /// Print the unified API key.
    Token,
    /// Add a provider key.
    KeysAdd {
        /// Platform id.
        platform: String,
        /// The key.
        key: String,
        /// Optional label.
        label: Option<String>,
        /// Custom keys: base URL.
        base_url: Option<String>,
        /// Custom keys: model ids.
        models: Vec<String>,
    },
    /// List provider keys, masked.
    KeysList,
    /// Remove a provider key.
    KeysRemove(i64),
    /// Re-seal every stored secret under a new ENCRYPTION_KEY (given as 64 hex chars, or generated).
    RotateEncryptionKey(Option<String>),
    /// Ask a running server's `/healthz` (for container health checks).
    Healthcheck,
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

const USAGE: &str = "Usage:
  freellmapi [serve]                 run the gateway (API + dashboard)
  freellmapi gen-key                 print a fresh 64-hex ENCRYPTION_KEY
  freellmapi token                   print the unified API key (creating one if none exists)
  freellmapi keys add PLATFORM KEY [--label L] [--base-url URL [--model ID...]]
                                     (custom without --model: the models URL/models lists)
  freellmapi keys list
  freellmapi keys remove ID
  freellmapi rotate-encryption-key [--new-key HEX]
                                     re-encrypt the stored keys under a new ENCRYPTION_KEY (server stopped)
  freellmapi healthcheck             exit 0 if the server at HOST:PORT answers /healthz with ok, else 1
  freellmapi --help | --version";

/// Parses arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => Ok(Command::Serve),
        ["gen-key"] => Ok(Command::GenKey),
        ["token"] => Ok(Command::Token),
        ["healthcheck"] => Ok(Command::Healthcheck),
        ["-h" | "--help" | "help", ..] => Ok(Command::Help),
        ["-V" | "--version", ..] => Ok(Command::Version),
        ["keys", "list"] => Ok(Command::KeysList),
        ["keys", "remove", id] => id
            .parse()
            .map(Command::KeysRemove)
            .map_err(|_| format!("'{id}' is not a key id (a number from `keys list`)")),
        ["keys", "add", platform, key, rest @ ..] => {
            let (mut label, mut base_url, mut models) = (None, None, Vec::new());
            let mut rest = rest.iter();
            while let Some(flag) = rest.next() {
                let value = rest
                    .next()
                    .ok_or_else(|| format!("{flag} needs a value"))?
                    .to_string();
                match *flag {
                    "--label" => label = Some(value),
                    "--base-url" => base_url = Some(value),
                    "--model" => models.push(value),
                    other => return Err(format!("unknown option '{other}'")),
                }
            }
            Ok(Command::KeysAdd {
                platform: platform.to_string(),
                key: key.to_string(),
                label,
                base_url,
                models,
            })
        }
        ["rotate-encryption-key"] => Ok(Command::RotateEncryptionKey(None)),
        ["rotate-encryption-key", "--new-key", key] => {
            Ok(Command::RotateEncryptionKey(Some(key.to_string())))
        }
        ["rotate-encryption-key", ..] => {
            Err("usage: rotate-encryption-key [--new-key HEX]".to_owned())
        }
        ["keys", ..] => {
            Err("usage: keys add PLATFORM KEY [--label L] | keys list | keys remove ID".to_owned())
        }
        [other, ..] => Err(format!("unknown command '{other}'")),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("freellmapi: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!(
                "freellmapi {} — OpenAI-compatible gateway over free-tier LLM keys\n\n{USAGE}\n",
                env!("CARGO_PKG_VERSION")
            );
            println!("{}", settings_help());
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("freellmapi {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::GenKey => {
            println!("{}", hex::encode(&generate_key()));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let result = Config::from_env()
        .map_err(|e| e.to_string())
        .and_then(|config| run(command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("freellmapi: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A custom key's models as its server lists them, fetched with awc on a short-lived actix System.
fn discover(config: &Config, new: &NewKey) -> Result<Vec<CustomModel>, String> {
    let checked = key_admin::check(new).map_err(|e| e.to_string())?;
    let url = checked
        .base_url
        .ok_or_else(|| "a custom key needs --base-url".to_owned())?;
    let tls = connector::tls_config(config.upstream_ca_file.as_deref())?;
    let redactor = Redactor::default();
    redactor.learn(checked.secret);
    let connect_timeout = config.connect_timeout;
    actix_rt::System::new().block_on(async move {
        let provider = LocalProvider::start(connect_timeout, tls, redactor);
        discover_models(&provider.0, url, checked.secret).await
    })
}

fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Serve => return server::run(config),
        Command::Healthcheck => {
            return healthcheck::check(healthcheck::local_address(config.host, config.port))
        }
        Command::RotateEncryptionKey(new_key) => return rotate_encryption_key(&config, new_key),
        _ => {}
    }
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let mut conn = store::open(&config.database_path).map_err(|e| e.to_string())?;
    let prepared = startup_secrets::prepare(&mut conn, &config, &catalog)?;
    match command {
        Command::Token => println!("{}", prepared.unified_key),
        Command::KeysAdd {
            platform,
            key,
            label,
            base_url,
            models,
        } => {
            let models = models.into_iter().map(CustomModel::named).collect();
            let mut new = NewKey {
                platform,
                key,
                label,
                base_url,
                models,
            };
            if key_admin::wants_discovery(&new) {
                new.models = discover(&config, &new)?;
                let ids: Vec<&str> = new.models.iter().map(|m| m.id.as_str()).collect();
                println!("the server lists {} models: {}", ids.len(), ids.join(", "));
            }
            let view =
                key_admin::add(&mut conn, &prepared.cipher, new).map_err(|e| e.to_string())?;
            println!("added key {} ({} {})", view.id, view.platform, view.masked);
        }
        Command::KeysList => {
            let keys = key_admin::list(&mut conn).map_err(|e| e.to_string())?;
            println!(
                "{:<5} {:<12} {:<20} {:<8} {:<13} ENABLED",
                "ID", "PLATFORM", "LABEL", "KEY", "STATUS"
            );
            for k in keys {
                println!(
                    "{:<5} {:<12} {:<20} {:<8} {:<13} {}",
                    k.id, k.platform, k.label, k.masked, k.status, k.enabled
                );
            }
        }
        Command::KeysRemove(id) => {
            if !key_admin::remove(&mut conn, KeyId(id)).map_err(|e| e.to_string())? {
                return Err(format!("no key with id {id}"));
            }
            println!("removed key {id}");
        }
        Command::Serve
        | Command::GenKey
        | Command::Help
        | Command::Version
        | Command::Healthcheck
        | Command::RotateEncryptionKey(_) => {}
    }
    Ok(())
}

fn rotate_encryption_key(config: &Config, new_key: Option<String>) -> Result<(), String> {
    let new_key = new_key
        .map(|hex| parse_encryption_key(&hex).map_err(|e| format!("--new-key: {e}")))
        .transpose()?;
    let done = encryption_key_rotation::rotate(config, new_key)?;
    match done.key_file {
        Some(file) => println!(
            "re-encrypted {} provider keys; {} now holds the new key (back it up)",
            done.keys,
            file.display()
        ),
        None => println!(
            "re-encrypted {} provider keys; set ENCRYPTION_KEY to the new key before starting the server",
            done.keys
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse(&args("")), Ok(Command::Serve));
        assert_eq!(parse(&args("serve")), Ok(Command::Serve));
        assert_eq!(parse(&args("gen-key")), Ok(Command::GenKey));
        assert_eq!(parse(&args("--version")), Ok(Command::Version));
        assert_eq!(parse(&args("keys list")), Ok(Command::KeysList));
        assert_eq!(parse(&args("keys remove 3")), Ok(Command::KeysRemove(3)));
        assert_eq!(
            parse(&args(
                "keys add custom k --label L --base-url http://x/v1 --model a --model b"
            )),
            Ok(Command::KeysAdd {
                platform: "custom".into(),
                key: "k".into(),
                label: Some("L".into()),
                base_url: Some("http://x/v1".into()),
                models: vec!["a".into(), "b".into()],
            })
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&args("frobnicate")).is_err());
        assert!(parse(&args("keys remove x")).is_err());
        assert!(parse(&args("keys add groq k --label")).is_err());
        assert!(parse(&args("keys add groq k --colour red")).is_err());
        assert!(parse(&args("keys")).is_err());
    }
}
