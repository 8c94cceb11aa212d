//! Which catalog models the fallback chain has been offered: a catalog model joins the chain's end the first time
//! an install sees it (a new release, a `CATALOG_PATH` edit) and never again, so one the user removed stays removed.
//! The record is one setting (`chain_offered`, a JSON list of `platform/model`). It never reorders or removes chain
//! entries and never offers embedding models (they never route by the chain).
//!
//! Upgrades: an install seeded before the record existed (setting `chain_seeded`, no record) starts its record
//! from its chain plus every catalog model in force at that first start, and adds nothing then: the earlier
//! release's catalog is not known, and re-adding a model the user had removed is worse than missing one that is
//! new in that same release (it can be added by hand). Every later release's additions join.

use std::collections::BTreeSet;

use crate::catalog::{Catalog, ModelKind};
use crate::store::{self, chain, settings, Conn, StoreError};

const CHAIN_OFFERED: &str = "chain_offered";
/// Set by releases before the record existed, when they seeded the chain once.
const CHAIN_SEEDED: &str = "chain_seeded";

/// A catalog model as the record names it: `platform/model`.
fn pair_name(platform: &str, model: &str) -> String {
    format!("{platform}/{model}")
}

/// What to do on one start or catalog change: the models to append (catalog order) and the record afterwards.
#[derive(Debug, PartialEq, Eq)]
pub struct Offer {
    /// (platform, model) pairs to append to the chain's end.
    pub append: Vec<(String, String)>,
    /// Every pair offered so far, these included.
    pub offered: BTreeSet<String>,
}

/// Decides the offer. `catalog` is the chat models in catalog order; `record` the stored record (`None` before the
/// first start with it); `seeded` whether an older release seeded the chain; `chain` the chain's pairs now.
pub fn offer(
    catalog: &[(String, String)],
    record: Option<BTreeSet<String>>,
    seeded: bool,
    chain: &[(String, String)],
) -> Offer {
    let mut offered = match record {
        Some(record) => record,
        None if seeded => chain
            .iter()
            .chain(catalog)
            .map(|(p, m)| pair_name(p, m))
            .collect(),
        None => BTreeSet::new(),
    };
    let append = catalog
        .iter()
        .filter(|(p, m)| offered.insert(pair_name(p, m)))
        .cloned()
        .collect();
    Offer { append, offered }
}

/// Appends the catalog's chat models never offered before to the chain's end and records them, in one
/// transaction; returns how many joined. Run at every start and after a catalog change.
pub fn join_chain(conn: &mut Conn, catalog: &Catalog) -> Result<usize, StoreError> {
    let chat: Vec<(String, String)> = catalog
        .entries()
        .iter()
        .filter(|e| e.kind == ModelKind::Chat)
        .map(|e| (e.platform.id().to_owned(), e.model.clone()))
        .collect();
    store::transaction(conn, |conn| {
        let record = settings::get(conn, CHAIN_OFFERED)?
            .map(|json| {
                serde_json::from_str::<BTreeSet<String>>(&json).map_err(|e| {
                    StoreError::Invalid(format!("setting {CHAIN_OFFERED} is unreadable: {e}"))
                })
            })
            .transpose()?;
        let had_record = record.is_some();
        let seeded = settings::get(conn, CHAIN_SEEDED)?.is_some();
        let current: Vec<(String, String)> = chain::list(conn)?
            .into_iter()
            .map(|row| (row.platform, row.model))
            .collect();
        let before = record.as_ref().map(BTreeSet::len);
        let decided = offer(&chat, record, seeded, &current);
        if !decided.append.is_empty() {
            chain::append(conn, &decided.append)?;
        }
        if !had_record || before != Some(decided.offered.len()) {
            let json = serde_json::to_string(&decided.offered)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            settings::set(conn, CHAIN_OFFERED, &json)?;
            settings::set(conn, CHAIN_SEEDED, "1")?;
        }
        Ok(decided.append.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn pairs(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ("groq".to_owned(), (*n).to_owned()))
            .collect()
    }

    fn record(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| pair_name("groq", n)).collect()
    }

    #[test]
    fn a_fresh_install_is_offered_the_whole_catalog() {
        let got = offer(&pairs(&["a", "b"]), None, false, &[]);
        assert_eq!(got.append, pairs(&["a", "b"]));
        assert_eq!(got.offered, record(&["a", "b"]));
    }

    #[test]
    fn only_models_never_offered_join_so_removed_ones_stay_removed() {
        let got = offer(
            &pairs(&["a", "b", "c"]),
            Some(record(&["a", "b"])),
            true,
            &pairs(&["a"]),
        );
        assert_eq!(got.append, pairs(&["c"]), "b was removed by the user");
        assert_eq!(got.offered, record(&["a", "b", "c"]));
    }

    #[test]
    fn an_upgrade_without_a_record_adds_nothing_and_records_chain_and_catalog() {
        let got = offer(&pairs(&["a", "b"]), None, true, &pairs(&["a", "mine"]));
        assert!(got.append.is_empty());
        assert_eq!(got.offered, record(&["a", "b", "mine"]));
    }

    #[test]
    fn joining_appends_new_chat_models_once_and_skips_embeddings() {
        let db = TempDb::new();
        let mut conn = db.conn();
        let first = Catalog::parse(
            r#"{"models":[{"platform":"groq","model":"a","context":1},
            {"platform":"groq","model":"b","context":1}]}"#,
        )
        .unwrap();
        assert_eq!(join_chain(&mut conn, &first).unwrap(), 2);
        chain::replace(&mut conn, &[("groq".into(), "b".into(), true)]).unwrap();
        let next = Catalog::parse(
            r#"{"models":[{"platform":"groq","model":"a","context":1},
            {"platform":"groq","model":"b","context":1},{"platform":"groq","model":"c","context":1},
            {"platform":"groq","model":"e","context":1,"type":"embedding"}]}"#,
        )
        .unwrap();
        assert_eq!(join_chain(&mut conn, &next).unwrap(), 1);
        assert_eq!(join_chain(&mut conn, &next).unwrap(), 0);
        let models: Vec<String> = chain::list(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.model)
            .collect();
        assert_eq!(models, ["b", "c"]);
    }

    #[test]
    fn an_install_seeded_before_the_record_keeps_its_removals() {
        let db = TempDb::new();
        let mut conn = db.conn();
        settings::set(&mut conn, CHAIN_SEEDED, "1").unwrap();
        chain::append(&mut conn, &[("groq".into(), "a".into())]).unwrap();
        let catalog = Catalog::parse(
            r#"{"models":[{"platform":"groq","model":"a","context":1},
            {"platform":"groq","model":"b","context":1}]}"#,
        )
        .unwrap();
        assert_eq!(join_chain(&mut conn, &catalog).unwrap(), 0);
        assert_eq!(chain::list(&mut conn).unwrap().len(), 1);
    }
}
