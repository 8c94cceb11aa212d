//! The model catalog: which platform serves which model, with its context window, capabilities and
//! published free-tier limits. The data lives in `catalog.json` (embedded) so a limit change is one line.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::platform::Platform;

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
}

/// One model one platform serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Platform that serves it.
    pub platform: Platform,
    /// Model id as the platform names it.
    pub model: String,
    /// Context window in tokens.
    pub context: u32,
    /// Whether it accepts `tools`.
    #[serde(default)]
    pub tools: bool,
    /// Whether it accepts image input.
    #[serde(default)]
    pub vision: bool,
    /// Published budgets.
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Deserialize)]
struct CatalogFile {
    models: Vec<ModelEntry>,
}

/// The embedded catalog, indexed for lookups; catalog order is the default fallback chain.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
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
        let file: CatalogFile =
            serde_json::from_str(json).map_err(|e| format!("catalog.json: {e}"))?;
        let mut index: HashMap<Platform, HashMap<String, usize>> = HashMap::new();
        for (i, entry) in file.models.iter().enumerate() {
            if entry.platform == Platform::Custom {
                return Err(format!(
                    "catalog.json: '{}' uses platform custom",
                    entry.model
                ));
            }
            if index
                .entry(entry.platform)
                .or_default()
                .insert(entry.model.clone(), i)
                .is_some()
            {
                return Err(format!(
                    "catalog.json: duplicate entry {}/{}",
                    entry.platform, entry.model
                ));
            }
        }
        Ok(Catalog {
            entries: file.models,
            index,
        })
    }

    /// Every entry in catalog order.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// The entry for one platform's model.
    pub fn get(&self, platform: Platform, model: &str) -> Option<&ModelEntry> {
        let &i = self.index.get(&platform)?.get(model)?;
        Some(&self.entries[i])
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
    fn duplicates_are_rejected() {
        let json = r#"{"models":[{"platform":"groq","model":"a","context":1},{"platform":"groq","model":"a","context":1}]}"#;
        assert!(Catalog::parse(json).unwrap_err().contains("duplicate"));
    }
}
