//! `#[serde(with = "...")]` helpers for settings fields written as text: each reads the field
//! from a string with praxis's grammar and writes it back the same way, so `praxis config`
//! prints what a user would type.

/// A `Duration` written as `10s`, `1m30s`, `500ms` (see [`super::parse_duration`]).
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes the duration as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::super::format_duration(*d))
    }

    /// Reads the duration from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::super::parse_duration(&text).map_err(de::Error::custom)
    }
}

/// A byte size (`usize`) written as `2MiB`, `512KiB`, `4096` (see [`super::parse_size`]).
pub mod size {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes the size as text.
    pub fn serialize<S: Serializer>(n: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::super::format_size(*n as u64))
    }

    /// Reads the size from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let text = String::deserialize(d)?;
        let n = super::super::parse_size(&text).map_err(de::Error::custom)?;
        usize::try_from(n).map_err(|_| de::Error::custom(format!("{text:?} is too large")))
    }
}

/// Any `T: FromStr + Display` written as its text (an address, a URL, a limit like `10/15m`);
/// the `FromStr` error is the message (these helpers never echo the text themselves: it may
/// hold a password).
pub mod display {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes the value's `Display`.
    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Reads the value with `FromStr`.
    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.trim().parse().map_err(de::Error::custom)
    }
}

/// An `Option<T: FromStr + Display>`: empty or absent is `None`.
pub mod option_display {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes the value's `Display`, or nothing.
    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    /// Reads the value with `FromStr`; an empty text is `None`.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(d)? {
            Some(text) if !text.trim().is_empty() => {
                text.trim().parse().map(Some).map_err(de::Error::custom)
            }
            _ => Ok(None),
        }
    }
}

/// A `Vec<T: FromStr + Display>` written comma-separated (`10.0.0.0/8,192.168.0.0/16`).
pub mod display_list {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes the items comma-separated.
    pub fn serialize<T: Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        let items: Vec<String> = v.iter().map(ToString::to_string).collect();
        s.serialize_str(&items.join(","))
    }

    /// Reads comma-separated items with `FromStr`; an empty text is an empty list.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().map_err(de::Error::custom))
            .collect()
    }
}
