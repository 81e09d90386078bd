//! A serde deserializer over text: a typed settings struct from `(key, text)` pairs, the way
//! environment variables, flags and TOML scalars give them. Numbers and booleans are parsed from
//! their text, `Option` fields read an empty text as unset, lists are comma-separated, and
//! fields with their own grammar (durations, sizes, URLs) use the helpers of
//! [`super::serde_with`].

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

/// What is wrong with one value, and which key held it when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    /// The key whose value was refused; `None` for an error about the whole struct.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TextError {}

impl de::Error for TextError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            key: None,
            message: msg.to_string(),
        }
    }
}

/// Reads `T` from `(key, text)` pairs; a `None` text is a key set to the empty value (unset for
/// an `Option` field, an error for any other). Keys that are absent take the struct's serde
/// default (`#[serde(default)]`).
pub fn from_texts<'a, T: DeserializeOwned>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<T, TextError> {
    let pairs: Vec<(&str, Option<&str>)> = pairs.into_iter().collect();
    T::deserialize(Pairs {
        pairs: pairs.into_iter(),
        current: None,
    })
}

/// The struct-level deserializer and its map access.
struct Pairs<'a, I: Iterator<Item = (&'a str, Option<&'a str>)>> {
    pairs: I,
    current: Option<(&'a str, Option<&'a str>)>,
}

impl<'de, 'a, I: Iterator<Item = (&'a str, Option<&'a str>)>> de::Deserializer<'de>
    for Pairs<'a, I>
{
    type Error = TextError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl<'de, 'a, I: Iterator<Item = (&'a str, Option<&'a str>)>> MapAccess<'de> for Pairs<'a, I> {
    type Error = TextError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TextError> {
        match self.pairs.next() {
            Some(pair) => {
                self.current = Some(pair);
                let key: StrDeserializer<'_, TextError> = pair.0.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TextError> {
        let (key, text) = self.current.take().ok_or_else(|| TextError {
            key: None,
            message: "a value was asked for before its key".to_owned(),
        })?;
        seed.deserialize(Text(text)).map_err(|mut e| {
            e.key.get_or_insert_with(|| key.to_owned());
            e
        })
    }
}

/// One value's text; `None` when it was set to the empty value.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a>(pub Option<&'a str>);

impl<'a> Text<'a> {
    fn required(self) -> Result<&'a str, TextError> {
        match self.0 {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(de::Error::custom("is empty (this key needs a value)")),
        }
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            let text = self.required()?;
            let n: $ty = text.trim().parse().map_err(|_| {
                de::Error::custom(format!("{text:?} is not {} (e.g. 42)", $what))
            })?;
            visitor.$visit(n)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Text<'_> {
    type Error = TextError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        match self.0 {
            Some(text) => visitor.visit_str(text),
            None => visitor.visit_none(),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        let text = self.required()?;
        visitor.visit_bool(super::parse_bool(text).map_err(de::Error::custom)?)
    }

    parse_number! {
        deserialize_u8 visit_u8 u8, "a whole number from 0 to 255";
        deserialize_u16 visit_u16 u16, "a whole number from 0 to 65535";
        deserialize_u32 visit_u32 u32, "a whole number from 0 to 4294967295";
        deserialize_u64 visit_u64 u64, "a whole number of at least 0";
        deserialize_i8 visit_i8 i8, "a whole number";
        deserialize_i16 visit_i16 i16, "a whole number";
        deserialize_i32 visit_i32 i32, "a whole number";
        deserialize_i64 visit_i64 i64, "a whole number";
        deserialize_f32 visit_f32 f32, "a number";
        deserialize_f64 visit_f64 f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        match self.0 {
            Some(text) if !text.trim().is_empty() => visitor.visit_some(self),
            _ => visitor.visit_none(),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_str(self.0.unwrap_or(""))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TextError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        let parts = self
            .0
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Text(Some(p)));
        visitor.visit_seq(de::value::SeqDeserializer::new(parts))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TextError> {
        let text = self.required()?.trim();
        let variant: StrDeserializer<'_, TextError> = text.into_deserializer();
        visitor.visit_enum(variant)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit_struct tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, 'a> IntoDeserializer<'de, TextError> for Text<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        Json,
        Pretty,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        count: u32,
        on: bool,
        name: String,
        url: Option<String>,
        tags: Vec<String>,
        format: Format,
        #[serde(with = "crate::text::serde_with::duration")]
        ttl: Duration,
    }

    impl Default for Example {
        fn default() -> Self {
            Self {
                count: 7,
                on: false,
                name: "x".to_owned(),
                url: Some("http://default".to_owned()),
                tags: vec![],
                format: Format::Json,
                ttl: Duration::from_secs(1),
            }
        }
    }

    #[test]
    fn absent_keys_keep_their_defaults() {
        let e: Example = from_texts([]).expect("defaults");
        assert_eq!(e, Example::default());
    }

    #[test]
    fn every_type_reads_from_its_text() {
        let e: Example = from_texts([
            ("count", Some("42")),
            ("on", Some("yes")),
            ("name", Some("n")),
            ("url", None),
            ("tags", Some("a, b,,c")),
            ("format", Some("pretty")),
            ("ttl", Some("1m30s")),
        ])
        .expect("parses");
        assert_eq!(
            e,
            Example {
                count: 42,
                on: true,
                name: "n".to_owned(),
                url: None,
                tags: vec!["a".into(), "b".into(), "c".into()],
                format: Format::Pretty,
                ttl: Duration::from_secs(90),
            }
        );
    }

    #[test]
    fn errors_name_the_key_and_the_expectation() {
        let err = from_texts::<Example>([("count", Some("ten"))]).expect_err("bad number");
        assert_eq!(err.key.as_deref(), Some("count"));
        assert!(
            err.message.contains("\"ten\" is not a whole number"),
            "{err}"
        );

        let err = from_texts::<Example>([("count", None)]).expect_err("empty");
        assert_eq!(err.key.as_deref(), Some("count"));
        assert!(err.message.contains("is empty"), "{err}");

        let err = from_texts::<Example>([("ttl", Some("soon"))]).expect_err("bad duration");
        assert_eq!(err.key.as_deref(), Some("ttl"));
        assert!(err.message.contains("is not a duration"), "{err}");

        let err = from_texts::<Example>([("format", Some("xml"))]).expect_err("bad variant");
        assert_eq!(err.key.as_deref(), Some("format"));
        assert!(err.message.contains("xml"), "{err}");

        let err = from_texts::<Example>([("nope", Some("1"))]).expect_err("unknown");
        assert!(err.message.contains("unknown field"), "{err}");
    }
}
