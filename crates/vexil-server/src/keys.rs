//! API key secrets: generated randomly, shown once, stored as SHA-256.

use sha2::{Digest as _, Sha256};
use vexil_store::Scope;

/// A new random secret for a key of `scope`, e.g. `vxa_3f9c…` (64 hex
/// digits of randomness after the scope prefix).
pub(crate) fn generate(scope: Scope) -> Result<String, crate::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| crate::Error::Randomness(e.to_string()))?;
    let tag = match scope {
        Scope::Admin => "vxa",
        Scope::Server => "vxs",
        Scope::Client => "vxc",
    };
    Ok(format!("{tag}_{}", hex(&bytes)))
}

/// The SHA-256 of a secret, raw.
pub(crate) type Digest = [u8; 32];

/// The stored form of a secret.
pub(crate) fn hash(secret: &str) -> String {
    hex(&digest(secret))
}

/// The raw SHA-256 of a secret (the data plane's key cache is keyed by it).
pub(crate) fn digest(secret: &str) -> Digest {
    digest_bytes(secret.as_bytes())
}

/// The raw SHA-256 of any bytes.
pub(crate) fn digest_bytes(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// The raw form of a stored (hex) hash; `None` if it is not one.
pub(crate) fn parse_digest(hex: &str) -> Option<Digest> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The part of a secret shown in lists.
pub(crate) fn prefix(secret: &str) -> String {
    secret.chars().take(8).collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The secret a request carries, if any: `Authorization: Bearer <key>`
/// first, then `X-API-Key`; empty values count as absent, so a client that
/// sends an empty `X-API-Key` beside a valid bearer token is not refused.
pub(crate) fn secret(headers: &axum::http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, rest)| rest.trim());
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    bearer
        .filter(|s| !s.is_empty())
        .or(api_key.filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = generate(Scope::Admin).unwrap();
        let b = generate(Scope::Admin).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("vxa_") && a.len() == 68);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(prefix(&a).len(), 8);
        assert_eq!(parse_digest(&hash("abc")), Some(digest("abc")));
        assert_eq!(parse_digest("zz"), None);
    }
}
