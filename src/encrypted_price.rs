//! Encrypted price macros: the Google-style price confirmation scheme.
//!
//! Some exchanges (Google Ad Manager / Authorized Buyers, and others that
//! copied its scheme) never send the clearing price in the clear: they
//! replace `${AUCTION_PRICE}` with an encrypted, integrity-checked value, so
//! that a browser that sees the URL can neither read nor change the price.
//! As Google documents it ("Decrypt price confirmations",
//! <https://developers.google.com/authorized-buyers/rtb/response-guide/decrypt-price>):
//!
//! ```text
//! message   = websafe_base64_unpadded( iv(16) ‖ enc_price(8) ‖ signature(4) )
//! pad       = HMAC-SHA1(encryption key, iv)[0..8]
//! price     = enc_price XOR pad              (big-endian u64, CPM micros)
//! signature = HMAC-SHA1(integrity key, price ‖ iv)[0..4]
//! ```
//!
//! [`PriceKeys::decrypt`] checks the integrity signature (in constant time)
//! before it answers, so a tampered value is refused, never read. The keys
//! are secrets: their `Debug` form shows nothing of them. This module knows
//! nothing of notices; the tracker applies the clearing-price rules (above
//! zero, not above the bid) to what it returns.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// Bytes of the initialisation vector.
const IV_BYTES: usize = 16;
/// Bytes of the encrypted price.
const PRICE_BYTES: usize = 8;
/// Bytes of the integrity signature.
const SIGNATURE_BYTES: usize = 4;
/// Bytes of a whole decoded message.
const MESSAGE_BYTES: usize = IV_BYTES + PRICE_BYTES + SIGNATURE_BYTES;
/// The shortest key accepted (decoded bytes). Google's keys are 32 bytes;
/// the keys come from the exchange, so the bound is only a sanity check.
pub const MIN_KEY_BYTES: usize = 16;

/// Why an encrypted price is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Not web-safe base64 of a 28-byte message.
    #[error("encrypted price is not web-safe base64 of 28 bytes")]
    Malformed,
    /// The integrity signature does not match: altered, or another key's.
    #[error("encrypted price fails its integrity check")]
    Integrity,
}

/// Why a key's text is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64 (web-safe or standard, padded or not).
    #[error("is not base64 (web-safe or standard)")]
    NotBase64,
    /// Decodes to fewer than [`MIN_KEY_BYTES`].
    #[error("decodes to fewer than {MIN_KEY_BYTES} bytes")]
    TooShort,
}

/// An exchange's encryption and integrity keys, ready to use.
#[derive(Clone)]
pub struct PriceKeys {
    encryption: HmacSha1,
    integrity: HmacSha1,
}

impl std::fmt::Debug for PriceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PriceKeys(<redacted>)")
    }
}

impl PartialEq for PriceKeys {
    /// Keys are compared by what they do (the same pad and signature for
    /// the same input), never by exposing them.
    fn eq(&self, other: &Self) -> bool {
        let probe = [0u8; IV_BYTES];
        let tag = |mac: &HmacSha1| mac.clone().chain_update(probe).finalize().into_bytes();
        tag(&self.encryption) == tag(&other.encryption) && tag(&self.integrity) == tag(&other.integrity)
    }
}

impl PriceKeys {
    /// Keys from their raw bytes.
    pub fn new(encryption: &[u8], integrity: &[u8]) -> PriceKeys {
        let mac = |key: &[u8]| HmacSha1::new_from_slice(key).expect("HMAC takes keys of any length");
        PriceKeys {
            encryption: mac(encryption),
            integrity: mac(integrity),
        }
    }

    /// A key as exchanges hand it out: base64, web-safe (`-_`) or standard
    /// (`+/`), with or without `=` padding, surrounding whitespace ignored.
    pub fn decode_key(text: &str) -> Result<Vec<u8>, KeyError> {
        let websafe: String = text
            .trim()
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        let key = URL_SAFE_NO_PAD.decode(websafe).map_err(|_| KeyError::NotBase64)?;
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort);
        }
        Ok(key)
    }

    /// The price (CPM micros) in an encrypted macro value (already
    /// percent-decoded); trailing `=` padding is tolerated.
    pub fn decrypt(&self, text: &str) -> Result<u64, PriceError> {
        let text = text.trim_end_matches('=');
        let mut message = [0u8; MESSAGE_BYTES + 3];
        let len = URL_SAFE_NO_PAD
            .decode_slice(text, &mut message)
            .map_err(|_| PriceError::Malformed)?;
        if len != MESSAGE_BYTES {
            return Err(PriceError::Malformed);
        }
        let (iv, rest) = message[..MESSAGE_BYTES].split_at(IV_BYTES);
        let (encrypted, signature) = rest.split_at(PRICE_BYTES);
        let pad = self.pad(iv);
        let mut price = [0u8; PRICE_BYTES];
        for (i, byte) in price.iter_mut().enumerate() {
            *byte = encrypted[i] ^ pad[i];
        }
        let mut check = self.integrity.clone();
        check.update(&price);
        check.update(iv);
        check
            .verify_truncated_left(signature)
            .map_err(|_| PriceError::Integrity)?;
        Ok(u64::from_be_bytes(price))
    }

    /// The exchange's side: `micros` encrypted under `iv`, as the macro
    /// value (web-safe base64, unpadded). For tests and the load tester.
    pub fn encrypt(&self, micros: u64, iv: &[u8; IV_BYTES]) -> String {
        let price = micros.to_be_bytes();
        let pad = self.pad(iv);
        let mut message = [0u8; MESSAGE_BYTES];
        message[..IV_BYTES].copy_from_slice(iv);
        for i in 0..PRICE_BYTES {
            message[IV_BYTES + i] = price[i] ^ pad[i];
        }
        let mut signature = self.integrity.clone();
        signature.update(&price);
        signature.update(iv);
        message[IV_BYTES + PRICE_BYTES..].copy_from_slice(&signature.finalize().into_bytes()[..SIGNATURE_BYTES]);
        URL_SAFE_NO_PAD.encode(message)
    }

    fn pad(&self, iv: &[u8]) -> [u8; PRICE_BYTES] {
        let tag = self.encryption.clone().chain_update(iv).finalize().into_bytes();
        let mut pad = [0u8; PRICE_BYTES];
        pad.copy_from_slice(&tag[..PRICE_BYTES]);
        pad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample keys of Google's "Decrypt price confirmations" page
    /// (<https://developers.google.com/authorized-buyers/rtb/response-guide/decrypt-price>),
    /// web-safe base64 as Google hands keys out.
    const E_KEY: &str = "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=";
    const I_KEY: &str = "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=";

    /// Google's documented test values for those keys: encrypted price →
    /// micros (the same three vectors are in Google's DoubleClick crypto
    /// test suite and in the public ports of it, e.g. the `doubleclickcrypto`
    /// Python package and `benjaminch/openrtb-pricers`).
    const VECTORS: [(&str, u64); 3] = [
        ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw", 100),
        ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCAWJRxOgA", 1900),
        ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemC32prpWWw", 2700),
    ];

    fn keys() -> PriceKeys {
        PriceKeys::new(
            &PriceKeys::decode_key(E_KEY).unwrap(),
            &PriceKeys::decode_key(I_KEY).unwrap(),
        )
    }

    #[test]
    fn googles_test_vectors_decrypt() {
        let keys = keys();
        for (message, micros) in VECTORS {
            assert_eq!(keys.decrypt(message), Ok(micros), "{message}");
            assert_eq!(keys.decrypt(&format!("{message}==")), Ok(micros), "padding tolerated");
        }
    }

    #[test]
    fn encryption_reproduces_the_vectors() {
        // Their initialisation vector is the ASCII text `abc123def456ghi7`.
        let iv: [u8; 16] = *b"abc123def456ghi7";
        for (message, micros) in VECTORS {
            assert_eq!(keys().encrypt(micros, &iv), message);
        }
    }

    #[test]
    fn a_tampered_price_is_refused() {
        let keys = keys();
        // The Go port's test of a bad signature: the last character changed.
        assert_eq!(
            keys.decrypt("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCAWJRxOlA"),
            Err(PriceError::Integrity)
        );
        // Every single changed character of the iv, price or signature.
        let (message, _) = VECTORS[1];
        for i in 0..message.len() {
            let mut bytes = message.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert!(keys.decrypt(&altered).is_err(), "accepted {altered}");
        }
        // Another integrity key: refused.
        let other = PriceKeys::new(&PriceKeys::decode_key(E_KEY).unwrap(), &[7u8; 32]);
        assert_eq!(other.decrypt(message), Err(PriceError::Integrity));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let keys = keys();
        for bad in [
            "",
            "1.25",
            "YWJj",
            "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCAWJRxOgAAA",
            "YWJj*TIzZGVmNDU2Z2hpN7fhCuPemCAWJRxOgA",
        ] {
            assert_eq!(keys.decrypt(bad), Err(PriceError::Malformed), "{bad}");
        }
    }

    #[test]
    fn keys_read_in_either_base64_alphabet_and_never_show() {
        let websafe = PriceKeys::decode_key(E_KEY).unwrap();
        assert_eq!(websafe.len(), 32);
        let standard = PriceKeys::decode_key(&E_KEY.replace('-', "+").replace('_', "/")).unwrap();
        assert_eq!(websafe, standard);
        assert_eq!(PriceKeys::decode_key("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(PriceKeys::decode_key("c2hvcnQ="), Err(KeyError::TooShort));
        assert_eq!(format!("{:?}", keys()), "PriceKeys(<redacted>)");
        assert_eq!(keys(), keys());
        assert_ne!(keys(), PriceKeys::new(&websafe, &websafe));
    }
}
