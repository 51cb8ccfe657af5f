//! Borrowed strings and lenient flags for the decoder.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A string that borrows from the request body unless it had escapes.
///
/// A bare `&str` would fail on escaped strings (`"https:\/\/…"`), which
/// exchanges send all the time; `Cow` inside a `Vec` would always copy.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A 0/1 flag as exchanges send it: `1`, `0`, `true`, `"1"`, `"true"`,
/// `null`. Any non-zero number counts as set. Anything else (`"yes"`, an
/// object) fails to decode, and the request goes through
/// [`super::repair`], which takes the field's restrictive reading where it
/// has one (`regs.coppa`, `lmt`, …) and ignores it otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 0/1 flag")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Flag, E> {
                Ok(Flag(v != 0.0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                match v.trim() {
                    "1" | "true" | "TRUE" | "True" => Ok(Flag(true)),
                    "0" | "false" | "FALSE" | "False" | "" => Ok(Flag(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_none<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Flag, D::Error> {
                Flag::deserialize(d)
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_borrows_plain_strings_and_owns_escaped_ones() {
        let plain: Vec<Text> = serde_json::from_str(r#"["abc"]"#).unwrap();
        assert!(matches!(plain[0].0, Cow::Borrowed("abc")));
        let escaped: Vec<Text> = serde_json::from_str(r#"["https:\/\/x.com"]"#).unwrap();
        assert_eq!(&*escaped[0], "https://x.com");
    }

    #[test]
    fn flags_are_lenient() {
        let flags: Vec<Flag> = serde_json::from_str(r#"[1, 0, true, "1", "0", null, 2, 0.0, "false"]"#).unwrap();
        let set: Vec<bool> = flags.iter().map(|f| f.0).collect();
        assert_eq!(set, [true, false, true, true, false, false, true, false, false]);
        assert!(serde_json::from_str::<Flag>(r#""yes""#).is_err());
        assert!(serde_json::from_str::<Flag>("{}").is_err());
    }
}

/// A floor price (CPM): a JSON number, or [`Floor::Invalid`] when the
/// repair of a malformed request found something it could not read as one
/// (a non-numeric string, a boolean, an object). The decoder accepts only
/// numbers; the repair ([`super::repair`]) coerces a numeric string and
/// marks anything else invalid, so that the impression it sits on gets no
/// bid (never "no floor").
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Floor {
    /// A JSON number (finite: JSON has no other).
    Amount(f64),
    /// Not a number.
    #[default]
    Invalid,
}

impl<'de> Deserialize<'de> for Floor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Floor, D::Error> {
        f64::deserialize(deserializer).map(Floor::Amount)
    }
}
