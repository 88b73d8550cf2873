//! Canonical JSON and content hashes.
//!
//! The same content always gives the same bytes: object members sorted by
//! their UTF-16 code units (as RFC 8785 does), no whitespace, strings and
//! numbers as `serde_json` writes them. The sort is done here, so the result
//! does not depend on whether some crate turns on `serde_json/preserve_order`.
//! Signed documents carry canonical JSON as their payload, and a content hash
//! is `sha256:<lowercase hex>` of those bytes.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// Prefix of every content hash.
pub const HASH_PREFIX: &str = "sha256:";

/// The canonical JSON bytes of `value`.
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    let value = serde_json::to_value(value).map_err(|e| Error::malformed("content", e))?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

/// The content hash of `value`: SHA-256 over its canonical JSON, rendered
/// `sha256:<lowercase hex>`. Key order and whitespace of the input do not
/// matter.
pub fn content_hash(value: &impl Serialize) -> Result<String> {
    Ok(hash_bytes(&canonical_json(value)?))
}

/// `sha256:<lowercase hex>` of `bytes`.
pub fn hash_bytes(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    out.push_str(HASH_PREFIX);
    for byte in digest.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (index, (key, member)) in members.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out)?;
                out.push(b':');
                write_value(member, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out)?,
    }
    Ok(())
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    serde_json::to_writer(out, value).map_err(|e| Error::malformed("content", e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_level_without_whitespace() {
        let value = json!({"b": 1, "a": {"d": [3, {"z": null, "y": true}], "c": "x"}});
        let bytes = canonical_json(&value).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"a":{"c":"x","d":[3,{"y":true,"z":null}]},"b":1}"#
        );
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        let a: Value =
            serde_json::from_str(r#"{"x": 1, "y": [1, 2], "z": {"p": "q", "o": 0}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"z":{"o":0,"p":"q"},"y":[1,2],"x":1}"#).unwrap();
        assert_eq!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
    }

    #[test]
    fn different_content_gives_a_different_hash() {
        let a = content_hash(&json!({"rows": 1})).unwrap();
        let b = content_hash(&json!({"rows": 2})).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_prefixed_lowercase_hex() {
        // SHA-256 of the empty object `{}`.
        assert_eq!(
            content_hash(&json!({})).unwrap(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let bytes = canonical_json(&json!({"k\"": "line\nbreak"})).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"k\"":"line\nbreak"}"#
        );
    }

    proptest! {
        #[test]
        fn canonical_json_parses_back_to_the_same_value(
            entries in proptest::collection::btree_map("[a-zA-Z0-9_é]{0,8}", any::<i64>(), 0..8)
        ) {
            let value = serde_json::to_value(&entries).unwrap();
            let bytes = canonical_json(&value).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, value);
        }
    }
}
