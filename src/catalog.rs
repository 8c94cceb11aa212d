//! The model catalog: which platform serves which model, with its context window, capabilities and
//! published free-tier limits. The data lives in `catalog.json` (embedded) so a limit change is one line; a
//! user's file (`CATALOG_PATH`) is merged over it. It only parses and merges: it never reads a file itself, except
//! at startup through [`Catalog::load`], and never decides routing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::day_window::DayWindow;
use crate::platform::Platform;

/// One of the four windows a provider limits a key by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Requests per minute.
    Rpm,
    /// Requests per day.
    Rpd,
    /// Tokens per minute.
    Tpm,
    /// Tokens per day.
    Tpd,
}

impl Window {
    /// Every window, in the order `/api/budgets` lists them.
    pub const ALL: [Window; 4] = [Window::Rpm, Window::Rpd, Window::Tpm, Window::Tpd];

    /// The window's name in the API (`rpm`, `rpd`, `tpm`, `tpd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Rpm => "rpm",
            Window::Rpd => "rpd",
            Window::Tpm => "tpm",
            Window::Tpd => "tpd",
        }
    }

    /// Whether it is a daily window (else per minute).
    pub fn per_day(self) -> bool {
        matches!(self, Window::Rpd | Window::Tpd)
    }

    /// Whether it counts tokens (else requests).
    pub fn counts_tokens(self) -> bool {
        matches!(self, Window::Tpm | Window::Tpd)
    }

    /// What this window counts out of a (requests, tokens) pair.
    pub fn count_of(self, (requests, tokens): (u64, u64)) -> u64 {
        if self.counts_tokens() {
            tokens
        } else {
            requests
        }
    }

    /// A (requests, tokens) pair with `counted` where this window counts and `other` in the other place.
    pub fn pair(self, counted: u64, other: u64) -> (u64, u64) {
        if self.counts_tokens() {
            (other, counted)
        } else {
            (counted, other)
        }
    }
}

/// Published per-key budgets; `None` where the provider publishes none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u32>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u32>,
    /// When the daily windows reset; the catalog fills it from the platform where a model does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_window: Option<DayWindow>,
}

impl Limits {
    /// The limit of one window.
    pub fn get(&self, window: Window) -> Option<u32> {
        match window {
            Window::Rpm => self.rpm,
            Window::Rpd => self.rpd,
            Window::Tpm => self.tpm,
            Window::Tpd => self.tpd,
        }
    }

    /// Sets the limit of one window.
    pub fn set(&mut self, window: Window, limit: Option<u32>) {
        let slot = match window {
            Window::Rpm => &mut self.rpm,
            Window::Rpd => &mut self.rpd,
            Window::Tpm => &mut self.tpm,
            Window::Tpd => &mut self.tpd,
        };
        *slot = limit;
    }

    /// These limits with every window no looser than `other`'s (a window only one of them limits keeps that limit).
    pub fn tightened_by(mut self, other: &Limits) -> Limits {
        for window in Window::ALL {
            let limit = match (self.get(window), other.get(window)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.set(window, limit);
        }
        self
    }

    /// When the daily windows reset.
    pub fn day_window(&self) -> DayWindow {
        self.day_window.unwrap_or_default()
    }
}

/// What is true of every model of one platform unless a model says otherwise.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
struct PlatformDefaults {
    #[serde(default)]
    day_window: Option<DayWindow>,
    /// Limits a key shares across all its models on this platform (OpenRouter's free models, NVIDIA's key).
    #[serde(default)]
    key_limits: Option<Limits>,
}

/// What a model does: answer chats or turn text into vectors. Neither ever serves the other's requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Chat completions (and every front door built on them).
    #[default]
    Chat,
    /// Embeddings.
    Embedding,
}

impl ModelKind {
    /// The kind's name in the API (`chat`, `embedding`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
        }
    }
}

/// What a chat model can do beyond text in, text out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Calls the tools it is offered.
    pub tools: bool,
    /// Reads images.
    pub vision: bool,
    /// Honours `response_format` `json_object` / `json_schema`.
    pub json: bool,
    /// Reasons before it answers.
    pub reasoning: bool,
}

/// One model one platform serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Platform that serves it.
    pub platform: Platform,
    /// Model id as the platform names it.
    pub model: String,
    /// Chat or embedding.
    #[serde(default, rename = "type")]
    pub kind: ModelKind,
    /// Context window in tokens (for an embedding model: the most tokens of one input).
    pub context: u32,
    /// An embedding model's default vector length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Where the entry's facts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether it accepts `tools`.
    #[serde(default)]
    pub tools: bool,
    /// Whether it accepts image input.
    #[serde(default)]
    pub vision: bool,
    /// Whether it honours structured output (`json_object` / `json_schema`).
    #[serde(default)]
    pub json: bool,
    /// Whether it reasons before answering.
    #[serde(default)]
    pub reasoning: bool,
    /// The most output tokens it writes on this platform, where published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u32>,
    /// The provider-neutral id of an open model several platforms serve under their own ids (`gpt-oss-120b`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// Published budgets.
    #[serde(default)]
    pub limits: Limits,
}

impl ModelEntry {
    /// What the model can do.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            tools: self.tools,
            vision: self.vision,
            json: self.json,
            reasoning: self.reasoning,
        }
    }
}

#[derive(Deserialize)]
struct CatalogFile {
    #[serde(default)]
    platforms: HashMap<Platform, PlatformDefaults>,
    models: Vec<ModelEntry>,
}

impl CatalogFile {
    /// Parses one catalog file, rejecting duplicates and `custom` entries (custom models come from keys);
    /// errors start with `name`.
    fn read(json: &str, name: &str) -> Result<CatalogFile, String> {
        let file: CatalogFile = serde_json::from_str(json).map_err(|e| format!("{name}: {e}"))?;
        let mut seen: HashMap<(Platform, &str), ()> = HashMap::new();
        for entry in &file.models {
            if entry.platform == Platform::Custom {
                return Err(format!("{name}: '{}' uses platform custom", entry.model));
            }
            if seen.insert((entry.platform, &entry.model), ()).is_some() {
                return Err(format!(
                    "{name}: duplicate entry {}/{}",
                    entry.platform, entry.model
                ));
            }
        }
        Ok(file)
    }

    /// This file with `over` merged on top: an entry of the same platform and model replaces this one in place,
    /// new entries join at the end, and a platform's defaults in `over` replace this file's.
    fn merged_with(mut self, over: CatalogFile) -> CatalogFile {
        self.platforms.extend(over.platforms);
        let mut at: HashMap<(Platform, String), usize> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, e)| ((e.platform, e.model.clone()), i))
            .collect();
        for entry in over.models {
            match at.get(&(entry.platform, entry.model.clone())) {
                Some(&i) => self.models[i] = entry,
                None => {
                    at.insert((entry.platform, entry.model.clone()), self.models.len());
                    self.models.push(entry);
                }
            }
        }
        self
    }
}

/// The catalog in force (embedded, with the user's file merged over it), indexed for lookups; catalog order is
/// the default fallback chain.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
    /// Limits each key of a platform shares across its models, by platform.
    key_limits: HashMap<Platform, Limits>,
    /// Entry positions by platform, then model: looked up per request, so no key is built to find one.
    index: HashMap<Platform, HashMap<String, usize>>,
}

const CATALOG_JSON: &str = include_str!("catalog.json");

impl Catalog {
    /// Parses the catalog embedded in the binary.
    pub fn embedded() -> Result<Catalog, String> {
        Catalog::parse(CATALOG_JSON)
    }

    /// Parses catalog JSON, rejecting duplicates and `custom` entries (custom models come from keys).
    pub fn parse(json: &str) -> Result<Catalog, String> {
        Ok(Catalog::from_file(CatalogFile::read(json, "catalog.json")?))
    }

    /// The embedded catalog with `json` (a user's file, named `name` in errors) merged over it.
    pub fn embedded_with(json: &str, name: &str) -> Result<Catalog, String> {
        let base = CatalogFile::read(CATALOG_JSON, "catalog.json")?;
        Ok(Catalog::from_file(
            base.merged_with(CatalogFile::read(json, name)?),
        ))
    }

    /// The catalog at startup: the embedded one, merged with the file at `path` when one is set. A file that is
    /// missing or does not parse is an error naming it.
    pub fn load(path: Option<&Path>) -> Result<Catalog, String> {
        let Some(path) = path else {
            return Catalog::embedded();
        };
        let json = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "CATALOG_PATH {} cannot be read: {e}. Create it (the format of src/catalog.json) or unset \
                 CATALOG_PATH.",
                path.display()
            )
        })?;
        Catalog::embedded_with(&json, &format!("CATALOG_PATH {}", path.display()))
    }

    /// Fills platform defaults in and indexes a file already checked by [`CatalogFile::read`].
    fn from_file(mut file: CatalogFile) -> Catalog {
        let mut index: HashMap<Platform, HashMap<String, usize>> = HashMap::new();
        for (i, entry) in file.models.iter_mut().enumerate() {
            let platform_default = file.platforms.get(&entry.platform).copied();
            entry.limits.day_window = entry
                .limits
                .day_window
                .or(platform_default.and_then(|d| d.day_window));
            index
                .entry(entry.platform)
                .or_default()
                .insert(entry.model.clone(), i);
        }
        let key_limits = file
            .platforms
            .iter()
            .filter_map(|(platform, defaults)| {
                let mut limits = defaults.key_limits?;
                limits.day_window = limits.day_window.or(defaults.day_window);
                Some((*platform, limits))
            })
            .collect();
        Catalog {
            entries: file.models,
            key_limits,
            index,
        }
    }

    /// Every entry in catalog order.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// The limits each key of `platform` shares across its models; none where the platform counts per model only.
    pub fn key_limits(&self, platform: Platform) -> Limits {
        self.key_limits.get(&platform).copied().unwrap_or_default()
    }

    /// The entry for one platform's model.
    pub fn get(&self, platform: Platform, model: &str) -> Option<&ModelEntry> {
        let &i = self.index.get(&platform)?.get(model)?;
        Some(&self.entries[i])
    }
}

/// The catalog every reader shares; a watched `CATALOG_PATH` edit swaps it for all of them at once. Readers take
/// the current one per use and never hold the lock across an await.
#[derive(Clone, Debug)]
pub struct SharedCatalog(Arc<RwLock<Arc<Catalog>>>);

impl SharedCatalog {
    /// Shares `catalog`.
    pub fn new(catalog: Catalog) -> SharedCatalog {
        SharedCatalog(Arc::new(RwLock::new(Arc::new(catalog))))
    }

    /// The catalog in force now.
    pub fn current(&self) -> Arc<Catalog> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `catalog` in force for every reader.
    pub fn replace(&self, catalog: Arc<Catalog>) {
        match self.0.write() {
            Ok(mut guard) => *guard = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }

    /// The entry for one platform's model in the catalog in force now.
    pub fn get(&self, platform: Platform, model: &str) -> Option<ModelEntry> {
        self.current().get(platform, model).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_and_has_limits() {
        let c = Catalog::embedded().unwrap();
        assert!(!c.entries().is_empty());
        let groq = c.get(Platform::Groq, "llama-3.3-70b-versatile").unwrap();
        assert_eq!(groq.limits.rpm, Some(30));
        assert!(groq.context >= 8192);
    }

    #[test]
    fn keys_share_the_platforms_key_limits() {
        let c = Catalog::embedded().unwrap();
        let openrouter = c.key_limits(Platform::Openrouter);
        assert_eq!((openrouter.rpm, openrouter.rpd), (Some(20), Some(50)));
        assert_eq!(openrouter.day_window, Some(DayWindow::MidnightUtc));
        assert_eq!(c.key_limits(Platform::Nvidia).rpm, Some(40));
        assert_eq!(c.key_limits(Platform::Groq), Limits::default());
    }

    #[test]
    fn day_windows_come_from_the_platform_unless_the_model_says() {
        let json = r#"{"platforms":{"google":{"day_window":"midnight-pacific"}},"models":[
            {"platform":"google","model":"a","context":1},
            {"platform":"google","model":"b","context":1,"limits":{"day_window":"rolling-24h"}},
            {"platform":"groq","model":"c","context":1}]}"#;
        let c = Catalog::parse(json).unwrap();
        let window = |p, m| c.get(p, m).unwrap().limits.day_window();
        assert_eq!(window(Platform::Google, "a"), DayWindow::MidnightPacific);
        assert_eq!(window(Platform::Google, "b"), DayWindow::Rolling24h);
        assert_eq!(window(Platform::Groq, "c"), DayWindow::Rolling24h);
        let embedded = Catalog::embedded().unwrap();
        let gemini = embedded.get(Platform::Google, "gemini-2.5-flash").unwrap();
        assert_eq!(gemini.limits.day_window(), DayWindow::MidnightPacific);
    }

    #[test]
    fn tightening_keeps_the_stricter_limit_of_each_window() {
        let catalog = Limits {
            rpm: Some(30),
            tpm: Some(12_000),
            ..Limits::default()
        };
        let learned = Limits {
            rpm: Some(50),
            tpm: Some(8_000),
            rpd: Some(100),
            ..Limits::default()
        };
        let both = catalog.tightened_by(&learned);
        assert_eq!(
            (both.rpm, both.rpd, both.tpm, both.tpd),
            (Some(30), Some(100), Some(8_000), None)
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let json = r#"{"models":[{"platform":"groq","model":"a","context":1},{"platform":"groq","model":"a","context":1}]}"#;
        assert!(Catalog::parse(json).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn a_users_file_wins_adds_and_merges_platform_defaults() {
        let json = r#"{"platforms":{"groq":{"day_window":"midnight-utc"}},"models":[
            {"platform":"groq","model":"llama-3.3-70b-versatile","context":5,"limits":{"rpm":1}},
            {"platform":"groq","model":"brand-new","context":7}]}"#;
        let embedded = Catalog::embedded().unwrap();
        let merged = Catalog::embedded_with(json, "mine.json").unwrap();
        assert_eq!(merged.entries().len(), embedded.entries().len() + 1);
        let replaced = merged
            .get(Platform::Groq, "llama-3.3-70b-versatile")
            .unwrap();
        assert_eq!((replaced.context, replaced.limits.rpm), (5, Some(1)));
        let position = |c: &Catalog| {
            c.entries()
                .iter()
                .position(|e| e.model == "llama-3.3-70b-versatile")
        };
        assert_eq!(
            position(&merged),
            position(&embedded),
            "a replaced entry keeps its place"
        );
        assert_eq!(merged.entries().last().unwrap().model, "brand-new");
        let groq_default = merged.get(Platform::Groq, "openai/gpt-oss-120b").unwrap();
        assert_eq!(groq_default.limits.day_window(), DayWindow::MidnightUtc);
        let google = merged.get(Platform::Google, "gemini-2.5-flash").unwrap();
        assert_eq!(google.limits.day_window(), DayWindow::MidnightPacific);
    }

    #[test]
    fn a_bad_users_file_is_named_in_the_error() {
        let err = Catalog::embedded_with("{\"models\": [", "mine.json").unwrap_err();
        assert!(err.starts_with("mine.json:"), "{err}");
        let dup = r#"{"models":[{"platform":"groq","model":"a","context":1},{"platform":"groq","model":"a","context":1}]}"#;
        assert!(Catalog::embedded_with(dup, "mine.json")
            .unwrap_err()
            .contains("duplicate"));
        let missing = Catalog::load(Some(Path::new("/nonexistent/catalog.json"))).unwrap_err();
        assert!(missing.contains("/nonexistent/catalog.json"), "{missing}");
    }

    #[test]
    fn a_swap_reaches_every_holder() {
        let shared = SharedCatalog::new(Catalog::parse(r#"{"models":[]}"#).unwrap());
        let reader = shared.clone();
        assert!(reader.get(Platform::Groq, "a").is_none());
        shared.replace(Arc::new(
            Catalog::parse(r#"{"models":[{"platform":"groq","model":"a","context":1}]}"#).unwrap(),
        ));
        assert_eq!(reader.get(Platform::Groq, "a").unwrap().context, 1);
    }
}
