//! TC3-HMAC-SHA256 request signing (Tencent Cloud API signature v3).
//!
//! The service in the credential scope is fixed by the caller (`intlpartnersmgt`), never
//! derived from the host: the host may be a local sandbox. Intermediate values are returned
//! so the official test vector can be checked step by step.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signed headers, in the order they appear in the canonical request.
pub const SIGNED_HEADERS: &str = "content-type;host";

/// What to sign: one POST to `/` with a body.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// Credential-scope service name.
    pub service: &'a str,
    /// The `Host` header as sent (with `:port` when not the default).
    pub host: &'a str,
    /// The `Content-Type` header as sent.
    pub content_type: &'a str,
    /// Unix seconds, also sent as `X-TC-Timestamp`.
    pub timestamp: i64,
    /// The exact body bytes sent.
    pub body: &'a [u8],
}

/// The signature and the values it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `hex(sha256(body))`.
    pub hashed_payload: String,
    /// `hex(sha256(canonical request))`.
    pub hashed_canonical_request: String,
    /// UTC date of the timestamp, `YYYY-MM-DD`.
    pub date: String,
    /// Lowercase hex signature.
    pub signature: String,
}

/// Signs `input` with `secret_key`.
pub fn sign(secret_key: &str, input: &SignInput<'_>) -> Signed {
    let hashed_payload = hex::encode(Sha256::digest(input.body));
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{SIGNED_HEADERS}\n{hashed_payload}",
        input.content_type.trim(),
        input.host.trim()
    );
    let hashed_canonical_request = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    let date = chrono::DateTime::from_timestamp(input.timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let scope = format!("{date}/{}/tc3_request", input.service);
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{scope}\n{hashed_canonical_request}",
        input.timestamp
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    Signed {
        hashed_payload,
        hashed_canonical_request,
        date,
        signature,
    }
}

/// The `Authorization` header value.
pub fn authorization(secret_id: &str, service: &str, signed: &Signed) -> String {
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{}/{service}/tc3_request, SignedHeaders={SIGNED_HEADERS}, Signature={}",
        signed.date, signed.signature
    )
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn input() -> SignInput<'static> {
        SignInput {
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            timestamp: 1551113065,
            body: BODY.as_bytes(),
        }
    }

    #[test]
    fn official_vector_intermediates() {
        let signed = sign("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &input());
        assert_eq!(
            signed.hashed_payload,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            signed.hashed_canonical_request,
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(signed.date, "2019-02-25");
    }

    #[test]
    fn official_vector_signatures() {
        assert_eq!(
            sign("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &input()).signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            sign("Gu5t9xGARNpq86cd98joQYCN3*******", &input()).signature,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    #[test]
    fn authorization_header_shape() {
        let signed = sign("k", &input());
        let auth = authorization("AKIDx", "intlpartnersmgt", &signed);
        assert!(auth.starts_with(
            "TC3-HMAC-SHA256 Credential=AKIDx/2019-02-25/intlpartnersmgt/tc3_request, SignedHeaders=content-type;host, Signature="
        ));
    }
}
