//! A JSON value that keeps every member of an object, so a repeated key is seen instead of
//! silently keeping the last one (what `serde_json::Value` does: a line with two `password`
//! members would enqueue whichever came second).
//!
//! Hand-written because serde_json has no option for it; the visitor is the whole of it.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A parsed JSON value; objects keep their members in order, repeats included.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool,
    /// `Some` when the number is an integer that fits `i64`.
    Number(Option<i64>),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// What kind of JSON value this is, for an error message (never the value itself).
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The path of the first key that an object holds twice, at any depth
    /// (`password`, `devices[1].device_id`).
    pub(super) fn repeated_key(&self) -> Option<String> {
        match self {
            Json::Object(members) => {
                for (i, (k, v)) in members.iter().enumerate() {
                    if members[..i].iter().any(|(seen, _)| seen == k) {
                        return Some(k.clone());
                    }
                    if let Some(inner) = v.repeated_key() {
                        let dot = if inner.starts_with('[') { "" } else { "." };
                        return Some(format!("{k}{dot}{inner}"));
                    }
                }
                None
            }
            Json::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| v.repeated_key().map(|inner| format!("[{i}].{inner}"))),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(Some(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(i64::try_from(v).ok()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number(None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        let parse = |s: &str| serde_json::from_str::<Json>(s).unwrap();
        assert_eq!(parse(r#"{"a":1,"b":2}"#).repeated_key(), None);
        assert_eq!(
            parse(r#"{"password":"x","password":"y"}"#).repeated_key(),
            Some("password".into())
        );
        assert_eq!(
            parse(r#"{"devices":[{"a":1},{"a":1,"a":2}]}"#).repeated_key(),
            Some("devices[1].a".into())
        );
        assert_eq!(parse("12").type_name(), "a number");
    }
}
