//! What names a stored provider key and what its health is, as types every layer shares: [`KeyId`] (the row id,
//! never confused with another integer) and [`KeyStatus`] (the closed set the database's CHECK constraint
//! allows). They map to SQLite columns directly; this module holds no key material and does no IO.

use std::fmt;
use std::str::FromStr;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};

/// A provider key's row id.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    AsExpression,
    FromSqlRow,
)]
#[diesel(sql_type = BigInt)]
#[serde(transparent)]
pub struct KeyId(pub i64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ToSql<BigInt, Sqlite> for KeyId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0);
        Ok(IsNull::No)
    }
}

impl FromSql<BigInt, Sqlite> for KeyId {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <i64 as FromSql<BigInt, Sqlite>>::from_sql(value).map(KeyId)
    }
}

/// A provider key's health, as probes and upstream answers last showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Not probed or used yet.
    Unknown,
    /// The last probe or answer succeeded.
    Healthy,
    /// The provider refused it for a rate limit or an exhausted quota; it recovers by itself.
    RateLimited,
    /// The provider refused the key itself (401/403): routing skips it until it is checked again.
    Invalid,
    /// The last probe failed for another reason (a 5xx, a timeout).
    Error,
}

impl KeyStatus {
    /// Every status, in the order the dashboard explains them.
    pub const ALL: [KeyStatus; 5] = [
        KeyStatus::Unknown,
        KeyStatus::Healthy,
        KeyStatus::RateLimited,
        KeyStatus::Invalid,
        KeyStatus::Error,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Unknown => "unknown",
            KeyStatus::Healthy => "healthy",
            KeyStatus::RateLimited => "rate_limited",
            KeyStatus::Invalid => "invalid",
            KeyStatus::Error => "error",
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a key status"))
    }
}

impl ToSql<Text, Sqlite> for KeyStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.as_str());
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for KeyStatus {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(text.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names_and_json() {
        for status in KeyStatus::ALL {
            assert_eq!(status.as_str().parse::<KeyStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert!("bogus".parse::<KeyStatus>().is_err());
    }

    #[test]
    fn key_ids_serialise_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&KeyId(42)).unwrap(), "42");
        assert_eq!(KeyId(7).to_string(), "7");
    }
}
