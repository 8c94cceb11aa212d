//! The platform ids of the external contract and what is fixed about each one.
//!
//! Everything else about a provider (wire quirks, error shapes) lives in `providers/`; this module only names
//! platforms and knows their default base URLs, so config, catalog and store can share one vocabulary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One upstream platform, as named in interface.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Google,
    Groq,
    Cerebras,
    Sambanova,
    Nvidia,
    Mistral,
    Openrouter,
    Github,
    Huggingface,
    Cohere,
    Cloudflare,
    Zhipu,
    Moonshot,
    Minimax,
    Custom,
}

impl Platform {
    /// Every platform, in the order interface.md lists them.
    pub const ALL: [Platform; 15] = [
        Platform::Google,
        Platform::Groq,
        Platform::Cerebras,
        Platform::Sambanova,
        Platform::Nvidia,
        Platform::Mistral,
        Platform::Openrouter,
        Platform::Github,
        Platform::Huggingface,
        Platform::Cohere,
        Platform::Cloudflare,
        Platform::Zhipu,
        Platform::Moonshot,
        Platform::Minimax,
        Platform::Custom,
    ];

    /// The lower-case id used in the API, the database and `platform/model` names.
    pub const fn id(self) -> &'static str {
        match self {
            Platform::Google => "google",
            Platform::Groq => "groq",
            Platform::Cerebras => "cerebras",
            Platform::Sambanova => "sambanova",
            Platform::Nvidia => "nvidia",
            Platform::Mistral => "mistral",
            Platform::Openrouter => "openrouter",
            Platform::Github => "github",
            Platform::Huggingface => "huggingface",
            Platform::Cohere => "cohere",
            Platform::Cloudflare => "cloudflare",
            Platform::Zhipu => "zhipu",
            Platform::Moonshot => "moonshot",
            Platform::Minimax => "minimax",
            Platform::Custom => "custom",
        }
    }

    /// The provider's real base URL (providers.md); `None` for `custom`, whose keys carry their own.
    pub const fn default_base_url(self) -> Option<&'static str> {
        Some(match self {
            Platform::Google => "https://generativelanguage.googleapis.com/v1beta",
            Platform::Groq => "https://api.groq.com/openai/v1",
            Platform::Cerebras => "https://api.cerebras.ai/v1",
            Platform::Sambanova => "https://api.sambanova.ai/v1",
            Platform::Nvidia => "https://integrate.api.nvidia.com/v1",
            Platform::Mistral => "https://api.mistral.ai/v1",
            Platform::Openrouter => "https://openrouter.ai/api/v1",
            Platform::Github => "https://models.github.ai/inference",
            Platform::Huggingface => "https://router.huggingface.co/v1",
            Platform::Cohere => "https://api.cohere.com",
            Platform::Cloudflare => "https://api.cloudflare.com/client/v4",
            Platform::Zhipu => "https://open.bigmodel.cn/api/paas/v4",
            Platform::Moonshot => "https://api.moonshot.ai/v1",
            Platform::Minimax => "https://api.minimax.io/v1",
            Platform::Custom => return None,
        })
    }

    /// Name of the environment variable that overrides this platform's base URL.
    pub fn base_url_env(self) -> String {
        format!("FREELLMAPI_BASE_URL_{}", self.id().to_ascii_uppercase())
    }

    /// The environment variable that sets this platform's time-to-first-token limit.
    pub fn first_byte_timeout_env(self) -> String {
        format!(
            "FREELLMAPI_FIRST_BYTE_TIMEOUT_{}",
            self.id().to_ascii_uppercase()
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Returned when a string names no platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlatform(pub String);

impl fmt::Display for UnknownPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = Platform::ALL.iter().map(|p| p.id()).collect();
        write!(
            f,
            "unknown platform '{}'; expected one of: {}",
            self.0,
            ids.join(", ")
        )
    }
}

impl std::error::Error for UnknownPlatform {}

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.id() == s)
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.id().parse::<Platform>(), Ok(p));
        }
        assert!("openai".parse::<Platform>().is_err());
    }

    #[test]
    fn env_names_are_upper_case() {
        assert_eq!(Platform::Groq.base_url_env(), "FREELLMAPI_BASE_URL_GROQ");
    }
}
