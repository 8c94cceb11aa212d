//! Which (platform, model, key) candidates may serve a request, in the order they are tried.
//!
//! The route table is rebuilt whenever keys or the chain change; resolving a request against it allocates only
//! the candidate list.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::{Capabilities, Catalog, Limits, ModelKind};
use crate::key_admin::CustomModel;
use crate::platform::Platform;
use crate::provider_key::KeyId;
use crate::routing::needs::Needs;

/// What the route table needs to know about one provider key.
#[derive(Debug, Clone)]
pub struct KeyOffer {
    /// Database id.
    pub id: KeyId,
    /// Its platform.
    pub platform: Platform,
    /// Enabled and not known to be invalid.
    pub usable: bool,
    /// For custom keys: the models it serves, with their budgets and kinds.
    pub custom_models: Vec<CustomModel>,
}

/// One routable (platform, model) and the keys able to serve it.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Platform that serves it.
    pub platform: Platform,
    /// Model id as the platform names it.
    pub model: Arc<str>,
    /// Whether `auto` may use it (an enabled chain entry of a chat model).
    pub in_auto: bool,
    /// Chat or embedding: a request only goes to offers of its own kind.
    pub kind: ModelKind,
    /// What the model can do, for requests that need tools, images or JSON.
    pub capabilities: Capabilities,
    /// The most output tokens it writes, where the catalog says.
    pub max_output: Option<u32>,
    /// Usable keys, in id order.
    pub keys: Vec<KeyId>,
    /// The model's context window from the catalog (custom models carry theirs per key).
    pub context: Option<u32>,
}

/// Why a request cannot be routed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unroutable {
    /// No platform offers the model.
    UnknownModel,
    /// Offered, but no enabled, healthy key can serve it.
    NoKeys,
    /// Offered only as the other kind (an embedding model asked to chat, or the reverse).
    WrongKind(ModelKind),
    /// Offered, but no offer can serve what the request needs; what the offers lacked.
    NotCapable(Vec<&'static str>),
}

/// Every routable offer: the chain first (its order is priority), then everything else reachable by name.
#[derive(Debug, Default)]
pub struct RouteTable {
    offers: Vec<Offer>,
    /// User aliases: name → targets (`platform/model` or model ids), tried in order.
    aliases: HashMap<String, Vec<String>>,
    /// The provider-neutral ids of open models, as `by_model` knows them.
    canonical: Vec<Arc<str>>,
    by_model: HashMap<Arc<str>, Vec<usize>>,
    by_pair: HashMap<(Platform, Arc<str>), usize>,
    limits: HashMap<(Platform, Arc<str>, KeyId), Limits>,
}

impl RouteTable {
    /// Builds the table from the chain (platform, model, enabled), the catalog and the keys.
    /// `supported` says which platforms have an adapter; others are left out.
    pub fn build(
        chain: &[(Platform, String, bool)],
        catalog: &Catalog,
        keys: &[KeyOffer],
        supported: impl Fn(Platform) -> bool,
    ) -> RouteTable {
        let mut table = RouteTable::default();
        table.add_offers(chain, catalog, keys, supported);
        table.add_canonical_ids(catalog);
        table
    }

    /// The same table with user `aliases` (name, targets) added.
    pub fn with_aliases(
        mut self,
        aliases: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        self.aliases = aliases.into_iter().collect();
        self
    }

    /// Every open model's provider-neutral id names each offer of it, on whatever platform and under whatever id.
    fn add_canonical_ids(&mut self, catalog: &Catalog) {
        for index in 0..self.offers.len() {
            let offer = &self.offers[index];
            let Some(canonical) = catalog
                .get(offer.platform, &offer.model)
                .and_then(|entry| entry.canonical.as_deref())
            else {
                continue;
            };
            let canonical: Arc<str> = Arc::from(canonical);
            if !self.canonical.contains(&canonical) {
                self.canonical.push(canonical.clone());
            }
            let named = self.by_model.entry(canonical).or_default();
            if !named.contains(&index) {
                named.push(index);
            }
        }
    }

    fn add_offers(
        &mut self,
        chain: &[(Platform, String, bool)],
        catalog: &Catalog,
        keys: &[KeyOffer],
        supported: impl Fn(Platform) -> bool,
    ) {
        let table = self;
        let catalog_pairs = catalog
            .entries()
            .iter()
            .map(|e| (e.platform, e.model.as_str()));
        let custom_pairs = keys.iter().flat_map(|k| {
            k.custom_models
                .iter()
                .map(move |m| (k.platform, m.id.as_str()))
        });
        let chain_pairs = chain
            .iter()
            .map(|(p, m, enabled)| (*p, m.as_str(), *enabled));
        let rest = catalog_pairs
            .chain(custom_pairs)
            .map(|(p, m)| (p, m, false));
        for (platform, model, in_auto) in chain_pairs.chain(rest) {
            if !supported(platform) || table.by_pair.contains_key(&(platform, Arc::from(model))) {
                continue;
            }
            let entry = catalog.get(platform, model);
            let known = platform == Platform::Custom || entry.is_some();
            let custom = keys
                .iter()
                .flat_map(|k| &k.custom_models)
                .find(|m| m.id == model);
            if !known || (platform == Platform::Custom && custom.is_none()) {
                continue;
            }
            let (kind, capabilities) = match (entry, custom) {
                (Some(entry), _) => (entry.kind, entry.capabilities()),
                (None, Some(custom)) => (custom.kind, custom.capabilities()),
                (None, None) => (ModelKind::Chat, Capabilities::default()),
            };
            let model: Arc<str> = Arc::from(model);
            let mut offer_keys = Vec::new();
            for key in keys.iter().filter(|k| k.platform == platform) {
                let limits = if platform == Platform::Custom {
                    match key.custom_models.iter().find(|m| *m.id == *model) {
                        Some(custom) => custom.limits,
                        None => continue,
                    }
                } else {
                    entry.map(|e| e.limits).unwrap_or_default()
                };
                table
                    .limits
                    .insert((platform, model.clone(), key.id), limits);
                if key.usable {
                    offer_keys.push(key.id);
                }
            }
            let index = table.offers.len();
            table.by_model.entry(model.clone()).or_default().push(index);
            table.by_pair.insert((platform, model.clone()), index);
            table.offers.push(Offer {
                platform,
                model,
                in_auto: in_auto && kind == ModelKind::Chat,
                kind,
                capabilities,
                max_output: entry.and_then(|e| e.max_output),
                keys: offer_keys,
                context: entry
                    .map(|e| e.context)
                    .or_else(|| custom.and_then(|c| c.context)),
            });
        }
    }

    /// The offer at an index returned by `resolve`.
    pub fn offer(&self, index: usize) -> &Offer {
        &self.offers[index]
    }

    /// The budgets of one (platform, model, key).
    /// `None` when the table does not know the triple.
    pub fn limits(&self, platform: Platform, model: &Arc<str>, key: KeyId) -> Option<Limits> {
        self.limits.get(&(platform, model.clone(), key)).copied()
    }

    /// Every (platform, model, key) the table knows, for budget listings.
    pub fn triples(&self) -> impl Iterator<Item = (Platform, &Arc<str>, KeyId)> {
        self.limits.keys().map(|(p, m, k)| (*p, m, *k))
    }

    /// The offers of model ids that have at least one usable key, in priority order, one per model id.
    pub fn servable_models(&self) -> Vec<&Offer> {
        let mut seen = std::collections::HashSet::new();
        self.offers
            .iter()
            .filter(|o| !o.keys.is_empty() && seen.insert(o.model.clone()))
            .collect()
    }

    /// The offers a requested model name may use, in priority order.
    ///
    /// `auto` is the enabled chain; `platform/model` pins one offer; anything else is a model id served by every
    /// platform offering it. A name like `groq/compound` that is itself a model id still resolves. Only offers of
    /// `kind` are kept, and, unless one offer is pinned, only those that can serve what the request `needs`.
    pub fn resolve(
        &self,
        requested: &str,
        kind: ModelKind,
        needs: &Needs,
    ) -> Result<Vec<usize>, Unroutable> {
        let mut pinned = false;
        let offers: Vec<usize> = if let Some(targets) = self.aliases.get(requested) {
            self.alias_offers(targets)
        } else if requested == "auto" {
            (0..self.offers.len())
                .filter(|&i| self.offers[i].in_auto)
                .collect()
        } else if let Some(i) = self.pinned(requested) {
            pinned = true;
            vec![i]
        } else {
            match self.by_model.get(requested) {
                Some(found) => found.clone(),
                None => return Err(Unroutable::UnknownModel),
            }
        };
        let named = offers.first().map(|&i| self.offers[i].kind);
        let offers: Vec<usize> = offers
            .into_iter()
            .filter(|&i| self.offers[i].kind == kind)
            .collect();
        if let (true, Some(other)) = (offers.is_empty(), named) {
            return Err(Unroutable::WrongKind(other));
        }
        let offers = if pinned {
            offers
        } else {
            self.capable(offers, needs)?
        };
        if offers.iter().all(|&i| self.offers[i].keys.is_empty()) {
            return Err(Unroutable::NoKeys);
        }
        Ok(offers)
    }

    /// The offers an alias's targets name, in target order, each once; targets that name nothing (a model since
    /// removed) are passed over.
    fn alias_offers(&self, targets: &[String]) -> Vec<usize> {
        let mut offers = Vec::new();
        for target in targets {
            let named = match self.pinned(target) {
                Some(index) => vec![index],
                None => self
                    .by_model
                    .get(target.as_str())
                    .cloned()
                    .unwrap_or_default(),
            };
            for index in named {
                if !offers.contains(&index) {
                    offers.push(index);
                }
            }
        }
        offers
    }

    /// The one offer a `platform/model` name pins, if it is one.
    fn pinned(&self, requested: &str) -> Option<usize> {
        let (platform, model) = requested.split_once('/')?;
        let platform = platform.parse::<Platform>().ok()?;
        self.by_pair.get(&(platform, Arc::from(model))).copied()
    }

    /// Whether `name` already means something as a model: a model id, a provider-neutral id or a pinned
    /// `platform/model` (aliases may not shadow one).
    pub fn names_a_model(&self, name: &str) -> bool {
        self.by_model.contains_key(name) || self.pinned(name).is_some()
    }

    /// Names that stand for several offers, each with the `platform/model` ids it reaches through a usable key:
    /// the provider-neutral ids of open models, then the user's aliases.
    pub fn shared_names(&self) -> Vec<(String, Vec<String>)> {
        let reached = |offers: &[usize]| -> Vec<String> {
            offers
                .iter()
                .map(|&i| &self.offers[i])
                .filter(|o| !o.keys.is_empty())
                .map(|o| format!("{}/{}", o.platform, o.model))
                .collect()
        };
        let canonical = self.canonical.iter().map(|name| {
            let offers = self
                .by_model
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            (name.to_string(), reached(offers))
        });
        let aliases = self
            .aliases
            .iter()
            .map(|(name, targets)| (name.clone(), reached(&self.alias_offers(targets))));
        canonical
            .chain(aliases)
            .filter(|(_, reached)| !reached.is_empty())
            .collect()
    }

    /// Whether `name` may be an alias of `targets`: a name of 1 to 128 visible characters that is not `auto`, a
    /// platform or a model (an alias never shadows one), and targets that each name a model (`platform/model`, a
    /// model id or a provider-neutral id; aliases do not nest). The error says what is wrong.
    pub fn check_alias(&self, name: &str, targets: &[String]) -> Result<(), String> {
        if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "alias name '{name}' must be 1 to 128 visible characters without spaces"
            ));
        }
        if name == "auto" || name.parse::<Platform>().is_ok() {
            return Err(format!("'{name}' is reserved and cannot be an alias"));
        }
        if self.names_a_model(name) {
            return Err(format!(
                "'{name}' already names a model; an alias may not shadow one"
            ));
        }
        if targets.is_empty() {
            return Err(format!("alias '{name}' needs at least one target"));
        }
        match targets
            .iter()
            .find(|t| self.pinned(t).is_none() && !self.by_model.contains_key(t.as_str()))
        {
            Some(unknown) => Err(format!(
                "alias '{name}': target '{unknown}' names no model (use platform/model or a model id from \
                 GET /v1/models)"
            )),
            None => Ok(()),
        }
    }

    /// The offers that can serve `needs`. When none of those with a usable key can, what they lacked (each reason
    /// once, in order): capable models the user has no key for are no answer.
    fn capable(&self, offers: Vec<usize>, needs: &Needs) -> Result<Vec<usize>, Unroutable> {
        let mut lacked: Vec<&'static str> = Vec::new();
        let able: Vec<usize> = offers
            .into_iter()
            .filter(|&i| {
                let offer = &self.offers[i];
                let unmet = needs.unmet(offer.capabilities, offer.context);
                if !offer.keys.is_empty() {
                    for reason in &unmet {
                        if !lacked.contains(reason) {
                            lacked.push(reason);
                        }
                    }
                }
                unmet.is_empty()
            })
            .collect();
        let reachable = able.iter().any(|&i| !self.offers[i].keys.is_empty());
        if !reachable && !lacked.is_empty() {
            return Err(Unroutable::NotCapable(lacked));
        }
        Ok(able)
    }

    /// Expands offers into (offer, key) candidates, lazily so a caller taking the first few never walks every
    /// key: the sticky offer first, keys rotated by `rotation` so load spreads over a platform's keys, and `skip`
    /// keys left out.
    pub fn candidates<'a>(
        &'a self,
        offers: &'a [usize],
        sticky: Option<usize>,
        rotation: usize,
        skip: impl Fn(KeyId) -> bool + 'a,
    ) -> impl Iterator<Item = (usize, KeyId)> + 'a {
        let sticky = sticky.filter(|s| offers.contains(s));
        let ordered = sticky
            .into_iter()
            .chain(offers.iter().copied().filter(move |&i| Some(i) != sticky));
        ordered
            .flat_map(move |index| {
                let keys = &self.offers[index].keys;
                let n = keys.len();
                (0..n).map(move |j| (index, keys[(j + rotation) % n]))
            })
            .filter(move |&(_, key)| !skip(key))
    }

    /// The offer serving exactly this (platform, model), if any.
    pub fn find(&self, platform: Platform, model: &str) -> Option<usize> {
        self.by_pair.get(&(platform, Arc::from(model))).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"models":[
            {"platform":"groq","model":"llama","context":8192,"limits":{"rpm":30}},
            {"platform":"cerebras","model":"llama","context":8192},
            {"platform":"groq","model":"compound","context":8192},
            {"platform":"groq","model":"groq/compound","context":8192},
            {"platform":"mistral","model":"small","context":8192}]}"#,
        )
        .unwrap()
    }

    fn key(id: i64, platform: Platform) -> KeyOffer {
        KeyOffer {
            id: KeyId(id),
            platform,
            usable: true,
            custom_models: vec![],
        }
    }

    fn chain() -> Vec<(Platform, String, bool)> {
        vec![
            (Platform::Mistral, "small".into(), true),
            (Platform::Groq, "llama".into(), true),
            (Platform::Cerebras, "llama".into(), false),
        ]
    }

    fn table(keys: &[KeyOffer]) -> RouteTable {
        RouteTable::build(&chain(), &catalog(), keys, |_| true)
    }

    fn names(t: &RouteTable, offers: &[usize]) -> Vec<String> {
        offers
            .iter()
            .map(|&i| format!("{}/{}", t.offer(i).platform, t.offer(i).model))
            .collect()
    }

    #[test]
    fn auto_walks_enabled_chain_in_order() {
        let t = table(&[
            key(1, Platform::Groq),
            key(2, Platform::Mistral),
            key(3, Platform::Cerebras),
        ]);
        assert_eq!(
            names(
                &t,
                &t.resolve("auto", ModelKind::Chat, &Needs::default())
                    .unwrap()
            ),
            ["mistral/small", "groq/llama"]
        );
    }

    #[test]
    fn model_id_tries_every_platform_and_pin_picks_one() {
        let t = table(&[key(1, Platform::Groq), key(3, Platform::Cerebras)]);
        assert_eq!(
            names(
                &t,
                &t.resolve("llama", ModelKind::Chat, &Needs::default())
                    .unwrap()
            ),
            ["groq/llama", "cerebras/llama"]
        );
        assert_eq!(
            names(
                &t,
                &t.resolve("cerebras/llama", ModelKind::Chat, &Needs::default())
                    .unwrap()
            ),
            ["cerebras/llama"]
        );
        assert_eq!(
            names(
                &t,
                &t.resolve("groq/compound", ModelKind::Chat, &Needs::default())
                    .unwrap()
            ),
            ["groq/compound"]
        );
        assert_eq!(
            names(
                &t,
                &t.resolve("groq/groq/compound", ModelKind::Chat, &Needs::default())
                    .unwrap()
            ),
            ["groq/groq/compound"]
        );
    }

    #[test]
    fn unknown_model_differs_from_model_without_keys() {
        let t = table(&[key(1, Platform::Groq)]);
        assert_eq!(
            t.resolve("gpt-9", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::UnknownModel)
        );
        assert_eq!(
            t.resolve("small", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::NoKeys)
        );
        assert_eq!(
            table(&[]).resolve("auto", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::NoKeys)
        );
    }

    #[test]
    fn unusable_keys_are_not_offered() {
        let mut k = key(1, Platform::Groq);
        k.usable = false;
        assert_eq!(
            table(&[k]).resolve("llama", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::NoKeys)
        );
    }

    #[test]
    fn sticky_goes_first_and_keys_rotate() {
        let t = table(&[
            key(1, Platform::Groq),
            key(2, Platform::Groq),
            key(3, Platform::Mistral),
        ]);
        let offers = t
            .resolve("auto", ModelKind::Chat, &Needs::default())
            .unwrap();
        let groq = t.find(Platform::Groq, "llama");
        assert_eq!(
            t.candidates(&offers, groq, 0, |_| false)
                .map(|(offer, key)| (offer, key.0))
                .collect::<Vec<_>>(),
            [(1, 1), (1, 2), (0, 3)]
        );
        assert_eq!(
            t.candidates(&offers, None, 1, |_| false)
                .map(|(offer, key)| (offer, key.0))
                .collect::<Vec<_>>(),
            [(0, 3), (1, 2), (1, 1)]
        );
        assert_eq!(
            t.candidates(&offers, None, 0, |k| k == KeyId(2))
                .map(|(offer, key)| (offer, key.0))
                .collect::<Vec<_>>(),
            [(0, 3), (1, 1)]
        );
    }

    #[test]
    fn custom_keys_offer_their_models_with_their_limits() {
        let limits = Limits {
            rpm: Some(2),
            ..Limits::default()
        };
        let custom = KeyOffer {
            id: KeyId(9),
            platform: Platform::Custom,
            usable: true,
            custom_models: vec![CustomModel {
                limits,
                ..CustomModel::named("m1".into())
            }],
        };
        let t = table(&[custom]);
        assert_eq!(
            names(
                &t,
                &t.resolve("m1", ModelKind::Chat, &Needs::default()).unwrap()
            ),
            ["custom/m1"]
        );
        assert_eq!(
            names(
                &t,
                &t.resolve("custom/m1", ModelKind::Chat, &Needs::default())
                    .unwrap()
            ),
            ["custom/m1"]
        );
        assert_eq!(
            t.limits(Platform::Custom, &Arc::from("m1"), KeyId(9)),
            Some(limits)
        );
        assert_eq!(
            t.resolve("auto", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::NoKeys),
            "custom models join auto only through the chain"
        );
    }

    #[test]
    fn chat_and_embedding_models_never_serve_each_other() {
        let catalog = Catalog::parse(
            r#"{"models":[
            {"platform":"groq","model":"llama","context":8192},
            {"platform":"mistral","model":"mistral-embed","type":"embedding","context":8192}]}"#,
        )
        .unwrap();
        let chain = vec![
            (Platform::Groq, "llama".into(), true),
            (Platform::Mistral, "mistral-embed".into(), true),
        ];
        let keys = [key(1, Platform::Groq), key(2, Platform::Mistral)];
        let t = RouteTable::build(&chain, &catalog, &keys, |_| true);
        let auto = t
            .resolve("auto", ModelKind::Chat, &Needs::default())
            .unwrap();
        assert_eq!(names(&t, &auto), ["groq/llama"], "auto never embeds");
        let embed = t
            .resolve("mistral-embed", ModelKind::Embedding, &Needs::default())
            .unwrap();
        assert_eq!(names(&t, &embed), ["mistral/mistral-embed"]);
        assert_eq!(
            t.resolve("mistral-embed", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::WrongKind(ModelKind::Embedding))
        );
        assert_eq!(
            t.resolve("groq/llama", ModelKind::Embedding, &Needs::default()),
            Err(Unroutable::WrongKind(ModelKind::Chat))
        );
        let custom = KeyOffer {
            id: KeyId(3),
            platform: Platform::Custom,
            usable: true,
            custom_models: vec![CustomModel {
                kind: ModelKind::Embedding,
                ..CustomModel::named("e5".into())
            }],
        };
        let t = table(&[custom]);
        assert_eq!(
            names(
                &t,
                &t.resolve("e5", ModelKind::Embedding, &Needs::default())
                    .unwrap()
            ),
            ["custom/e5"]
        );
        assert_eq!(
            t.resolve("e5", ModelKind::Chat, &Needs::default()),
            Err(Unroutable::WrongKind(ModelKind::Embedding))
        );
    }

    #[test]
    fn requests_go_only_to_offers_that_can_serve_them_unless_pinned() {
        let lacking = KeyOffer {
            id: KeyId(5),
            platform: Platform::Custom,
            usable: true,
            custom_models: vec![CustomModel {
                tools: Some(false),
                vision: Some(false),
                context: Some(2048),
                ..CustomModel::named("plain".into())
            }],
        };
        let chain = vec![(Platform::Custom, "plain".to_owned(), true)];
        let t = RouteTable::build(
            &chain,
            &Catalog::parse(r#"{"models":[]}"#).unwrap(),
            &[lacking],
            |_| true,
        );
        let needs = Needs {
            tools: true,
            vision: true,
            json: false,
            prompt_tokens: 10,
        };
        assert_eq!(
            t.resolve("auto", ModelKind::Chat, &needs),
            Err(Unroutable::NotCapable(vec!["tools", "image input"]))
        );
        assert_eq!(
            t.resolve("plain", ModelKind::Chat, &needs),
            Err(Unroutable::NotCapable(vec!["tools", "image input"]))
        );
        assert!(
            t.resolve("custom/plain", ModelKind::Chat, &needs).is_ok(),
            "pinned"
        );
        let long = Needs {
            prompt_tokens: 5000,
            ..Needs::default()
        };
        assert_eq!(
            t.resolve("auto", ModelKind::Chat, &long),
            Err(Unroutable::NotCapable(vec!["a larger context window"]))
        );
        assert!(t
            .resolve("auto", ModelKind::Chat, &Needs::default())
            .is_ok());
    }

    #[test]
    fn aliases_try_their_targets_in_order_and_open_models_answer_to_one_id() {
        let catalog = Catalog::parse(
            r#"{"models":[
            {"platform":"groq","model":"openai/gpt-oss-120b","context":8192,"canonical":"gpt-oss-120b"},
            {"platform":"cerebras","model":"gpt-oss-120b","context":8192,"canonical":"gpt-oss-120b"},
            {"platform":"openrouter","model":"openai/gpt-oss-120b:free","context":8192,"canonical":"gpt-oss-120b"},
            {"platform":"mistral","model":"small","context":8192}]}"#,
        )
        .unwrap();
        let keys = [
            key(1, Platform::Groq),
            key(2, Platform::Cerebras),
            key(3, Platform::Openrouter),
            key(4, Platform::Mistral),
        ];
        let t = RouteTable::build(&[], &catalog, &keys, |_| true).with_aliases([(
            "fast".to_owned(),
            vec!["mistral/small".to_owned(), "gpt-oss-120b".to_owned()],
        )]);
        let none = Needs::default();
        assert_eq!(
            names(
                &t,
                &t.resolve("gpt-oss-120b", ModelKind::Chat, &none).unwrap()
            ),
            [
                "cerebras/gpt-oss-120b",
                "groq/openai/gpt-oss-120b",
                "openrouter/openai/gpt-oss-120b:free"
            ],
            "the one id tries every platform serving the model"
        );
        assert_eq!(
            names(&t, &t.resolve("fast", ModelKind::Chat, &none).unwrap()),
            [
                "mistral/small",
                "cerebras/gpt-oss-120b",
                "groq/openai/gpt-oss-120b",
                "openrouter/openai/gpt-oss-120b:free"
            ]
        );
        let targets = vec!["small".to_owned()];
        assert!(t.check_alias("my-alias", &targets).is_ok());
        for taken in [
            "auto",
            "groq",
            "gpt-oss-120b",
            "groq/openai/gpt-oss-120b",
            "small",
            "a b",
            "",
        ] {
            assert!(t.check_alias(taken, &targets).is_err(), "{taken}");
        }
        assert!(t.check_alias("x", &[]).is_err());
        assert!(t.check_alias("x", &["nope".to_owned()]).is_err());
        assert!(t.check_alias("x", &["groq/nope".to_owned()]).is_err());
    }
}
