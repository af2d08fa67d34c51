//! Request signing: HMAC-SHA256 over the exact parameter string, as lowercase hex.
//!
//! REST (`SIGNED` endpoints): the signature covers `totalParams`, the query string followed
//! by the request body, exactly as sent; it is appended as the last parameter
//! `&signature=<64 hex>`. WebSocket API: the request's `params` other than `signature`,
//! sorted by name, formatted `name=value` and joined with `&`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secrets::Credentials;

/// Signs with the secret of one API key. The keyed HMAC state is computed once and cloned
/// per signature, so the secret text itself is not kept here.
#[derive(Clone)]
pub(crate) struct Signer {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub(crate) fn new(credentials: &Credentials) -> Self {
        Self::from_secret(credentials.secret().as_bytes())
    }

    pub(crate) fn from_secret(secret: &[u8]) -> Self {
        let keyed = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => mac,
            // HMAC accepts keys of any length; this arm cannot run.
            Err(_) => <Hmac<Sha256> as KeyInit>::new(&Default::default()),
        };
        Self { keyed }
    }

    /// The lowercase hex HMAC-SHA256 of `payload`, written into `out`.
    pub(crate) fn sign_into<'a>(&self, payload: &[u8], out: &'a mut [u8; 64]) -> &'a str {
        let mut mac = self.keyed.clone();
        mac.update(payload);
        let digest = mac.finalize().into_bytes();
        // The digest is 32 bytes and `out` 64: encoding cannot fail.
        if hex::encode_to_slice(digest, &mut out[..]).is_err() {
            out.fill(b'0');
        }
        std::str::from_utf8(&out[..]).unwrap_or("")
    }

    /// The signature as an owned string.
    pub(crate) fn sign(&self, payload: &[u8]) -> String {
        let mut out = [0u8; 64];
        self.sign_into(payload, &mut out).to_owned()
    }

    /// Checks a hex signature in constant time (used by the mock server).
    pub(crate) fn verify(&self, payload: &[u8], signature_hex: &str) -> bool {
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(signature_hex, &mut expected).is_err() {
            return false;
        }
        let mut mac = self.keyed.clone();
        mac.update(payload);
        mac.verify_slice(&expected).is_ok()
    }
}

/// Builds a `name=value&...` parameter string. Values the adapter sends (symbols, decimal
/// numbers, client order ids, enum names) need no percent-encoding; [`Params::push`] refuses
/// anything else so the signed string is always exactly the string sent.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    text: String,
}

impl Params {
    pub(crate) fn new() -> Self {
        Self {
            text: String::with_capacity(256),
        }
    }

    /// Appends `name=value`; false (and nothing appended) if the value has a byte outside
    /// `A-Z a-z 0-9 . - _`.
    pub(crate) fn push(&mut self, name: &str, value: &str) -> bool {
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return false;
        }
        if !self.text.is_empty() {
            self.text.push('&');
        }
        self.text.push_str(name);
        self.text.push('=');
        self.text.push_str(value);
        true
    }

    /// Appends `name=<integer>`.
    pub(crate) fn push_int(&mut self, name: &str, value: i64) {
        if !self.text.is_empty() {
            self.text.push('&');
        }
        self.text.push_str(name);
        self.text.push('=');
        self.text.push_str(&value.to_string());
    }

    /// Appends `recvWindow`, `timestamp` and the signature over everything before it.
    pub(crate) fn sign(
        mut self,
        signer: &Signer,
        recv_window_ms: u32,
        timestamp_ms: i64,
    ) -> String {
        self.push_int("recvWindow", i64::from(recv_window_ms));
        self.push_int("timestamp", timestamp_ms);
        let mut out = [0u8; 64];
        let signature = signer.sign_into(self.text.as_bytes(), &mut out);
        self.text.push_str("&signature=");
        self.text.push_str(signature);
        self.text
    }

    /// The unsigned string.
    pub(crate) fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented examples (rest-api.md "SIGNED Endpoint Examples", web-socket-api.md
    /// "SIGNED request example (HMAC)"), with Binance's published example secret.
    #[test]
    fn matches_the_documented_examples() {
        let signer = Signer::from_secret(
            b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        );
        let mut params = Params::new();
        for (name, value) in [
            ("symbol", "LTCBTC"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "1"),
            ("price", "0.1"),
        ] {
            assert!(params.push(name, value));
        }
        let signed = params.sign(&signer, 5000, 1_499_827_319_559);
        assert_eq!(
            signed,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1\
             &recvWindow=5000&timestamp=1499827319559\
             &signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        let ws_payload = "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A\
            &newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL\
            &symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT";
        let signature = signer.sign(ws_payload.as_bytes());
        assert_eq!(
            signature,
            "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
        );
        assert!(signer.verify(ws_payload.as_bytes(), &signature));
        assert!(signer.verify(ws_payload.as_bytes(), &signature.to_uppercase()));
        assert!(!signer.verify(b"other", &signature));
        assert!(!signer.verify(ws_payload.as_bytes(), "zz"));
    }

    #[test]
    fn refuses_values_that_would_need_encoding() {
        let mut params = Params::new();
        assert!(!params.push("symbol", "BTC USDT"));
        assert!(!params.push("symbol", "a&b=c"));
        assert!(!params.push("symbol", ""));
        assert!(params.push("symbol", "BTCUSDT"));
        assert_eq!(params.finish(), "symbol=BTCUSDT");
    }
}
