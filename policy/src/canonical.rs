//! Canonical JSON and content hashes, in two versions.
//!
//! The same content always gives the same bytes. Signed documents carry
//! canonical JSON as their payload, and a content hash is
//! `sha256:<lowercase hex>` of the canonical bytes; a hash is recomputed
//! whenever a signed document is verified and compared with the one stored
//! elsewhere (an agreement's `policy_hash`, a catalog description), so the
//! bytes of a version may never change. There are two versions
//! ([`CanonicalForm`]):
//!
//! - [`CanonicalForm::Rfc8785`], written by everything signed now: the JSON
//!   Canonicalization Scheme of RFC 8785, by the `serde_jcs` crate (members
//!   sorted by their UTF-16 code units, no whitespace, numbers as ECMAScript
//!   writes them: `1` not `1.0`, `100` not `100.0`; integers are I-JSON
//!   numbers, exact up to 2^53). A JWS signed this way names it in its
//!   protected header: `"canon": "rfc8785"` ([`CANON_HEADER`]).
//! - [`CanonicalForm::Legacy`], the form of everything signed before:
//!   members sorted by their UTF-16 code units, no whitespace, strings and
//!   numbers as `serde_json` writes them. A header without `canon` means
//!   this form; it is kept only so that documents in existing stores still
//!   verify with the hashes stored for them, and is never written for a new
//!   document.

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};

/// Prefix of every content hash.
pub const HASH_PREFIX: &str = "sha256:";

/// The JWS protected-header member that names the canonical form of the
/// header and payload; absent means [`CanonicalForm::Legacy`].
pub const CANON_HEADER: &str = "canon";

/// A version of canonical JSON (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CanonicalForm {
    /// Sorted members, `serde_json`'s scalars: documents signed before
    /// RFC 8785 was adopted.
    Legacy,
    /// RFC 8785 (JCS): everything signed now.
    #[default]
    Rfc8785,
}

impl CanonicalForm {
    /// The form new documents are written in.
    pub const CURRENT: Self = Self::Rfc8785;

    /// The value of the `canon` header member naming this form (none for
    /// the legacy form).
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Self::Legacy => None,
            Self::Rfc8785 => Some("rfc8785"),
        }
    }

    /// The form a `canon` header member names; `None` (no member) is the
    /// legacy form. An unknown name is [`Error::Malformed`].
    pub fn from_header(value: Option<&str>, what: &'static str) -> Result<Self> {
        match value {
            None => Ok(Self::Legacy),
            Some("rfc8785") => Ok(Self::Rfc8785),
            Some(other) => Err(Error::malformed(
                what,
                format!("unknown canonical form `{other}` in `{CANON_HEADER}`"),
            )),
        }
    }

    /// The canonical JSON bytes of `value` in this form.
    pub fn to_vec(self, value: &impl Serialize) -> Result<Vec<u8>> {
        match self {
            Self::Rfc8785 => serde_jcs::to_vec(value).map_err(canonical_error),
            Self::Legacy => {
                let value = serde_json::to_value(value).map_err(canonical_error)?;
                let mut out = Vec::new();
                legacy::write_value(&value, &mut out)?;
                Ok(out)
            }
        }
    }

    /// The content hash of `value` in this form: SHA-256 over its canonical
    /// JSON, rendered `sha256:<lowercase hex>`.
    pub fn content_hash(self, value: &impl Serialize) -> Result<String> {
        Ok(hash_bytes(&self.to_vec(value)?))
    }
}

/// The canonical JSON bytes of `value` in the current form (RFC 8785).
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    CanonicalForm::CURRENT.to_vec(value)
}

/// The content hash of `value` in the current form (RFC 8785): SHA-256 over
/// its canonical JSON, rendered `sha256:<lowercase hex>`. Key order and
/// whitespace of the input do not matter.
pub fn content_hash(value: &impl Serialize) -> Result<String> {
    CanonicalForm::CURRENT.content_hash(value)
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

fn canonical_error(source: serde_json::Error) -> Error {
    Error::malformed_by("content", "not canonical JSON", source)
}

/// The legacy writer, unchanged since documents were first signed with it.
mod legacy {
    use serde_json::Value;

    use super::canonical_error;
    use crate::error::Result;

    /// Writes `value` with members sorted by UTF-16 code units and scalars
    /// as `serde_json` writes them.
    pub(super) fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<()> {
        match value {
            Value::Object(map) => {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                out.push(b'{');
                for (index, (key, member)) in members.into_iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, key).map_err(canonical_error)?;
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
            scalar => serde_json::to_writer(&mut *out, scalar).map_err(canonical_error)?,
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;
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

    /// RFC 8785, appendix B: IEEE 754 doubles and their canonical text.
    const APPENDIX_B: [(u64, &str); 24] = [
        (0x0000_0000_0000_0000, "0"),
        (0x8000_0000_0000_0000, "0"),
        (0x0000_0000_0000_0001, "5e-324"),
        (0x8000_0000_0000_0001, "-5e-324"),
        (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
        (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
        (0x4340_0000_0000_0000, "9007199254740992"),
        (0xc340_0000_0000_0000, "-9007199254740992"),
        (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
        (0x44b5_2d02_c7e1_4af6, "1e+23"),
        (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
        (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
        (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
        (0x444b_1ae4_d6e2_ef50, "1e+21"),
        (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
        (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
        (0x41b3_de43_5555_5553, "333333333.3333332"),
        (0x41b3_de43_5555_5554, "333333333.33333325"),
        (0x41b3_de43_5555_5555, "333333333.3333333"),
        (0x41b3_de43_5555_5556, "333333333.3333334"),
        (0x41b3_de43_5555_5557, "333333333.33333343"),
        (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
        (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
    ];

    #[test]
    fn numbers_are_written_as_rfc_8785_appendix_b_says() {
        for (bits, expected) in APPENDIX_B {
            let value = json!({ "n": f64::from_bits(bits) });
            let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
            assert_eq!(text, format!(r#"{{"n":{expected}}}"#), "{bits:#x}");
        }
    }

    #[test]
    fn not_finite_numbers_are_refused() {
        for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = canonical_json(&n).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{n}: {err}");
        }
    }

    #[test]
    fn the_rfc_8785_example_of_section_3_2_3() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn the_legacy_form_writes_numbers_as_serde_json_does() {
        let value = json!({"b": 1.0, "a": 1e21, "c": 0.5, "d": u64::MAX});
        let legacy = CanonicalForm::Legacy.to_vec(&value).unwrap();
        assert_eq!(
            String::from_utf8(legacy).unwrap(),
            r#"{"a":1e+21,"b":1.0,"c":0.5,"d":18446744073709551615}"#
        );
        let current = canonical_json(&json!({"b": 1.0, "a": 1e21, "c": 0.5})).unwrap();
        assert_eq!(
            String::from_utf8(current).unwrap(),
            r#"{"a":1e+21,"b":1,"c":0.5}"#
        );
    }

    #[test]
    fn the_header_names_each_form_and_nothing_else() {
        for form in [CanonicalForm::Legacy, CanonicalForm::Rfc8785] {
            assert_eq!(
                CanonicalForm::from_header(form.header_value(), "t").unwrap(),
                form
            );
        }
        assert!(CanonicalForm::from_header(Some("RFC8785"), "t").is_err());
    }

    proptest! {
        #[test]
        fn canonical_json_parses_back_to_the_same_value(
            entries in proptest::collection::btree_map(
                "[a-zA-Z0-9_é]{0,8}",
                -(1_i64 << 53)..=(1_i64 << 53),
                0..8,
            )
        ) {
            let value = serde_json::to_value(&entries).unwrap();
            let bytes = canonical_json(&value).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, value);
        }

        #[test]
        fn the_legacy_form_parses_back_to_the_same_value(
            entries in proptest::collection::btree_map("[a-zA-Z0-9_é]{0,8}", any::<i64>(), 0..8)
        ) {
            let value = serde_json::to_value(&entries).unwrap();
            let bytes = CanonicalForm::Legacy.to_vec(&value).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, value);
        }
    }
}
