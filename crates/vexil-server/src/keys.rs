//! API key secrets: generated randomly, shown once, stored as SHA-256.

use sha2::{Digest, Sha256};
use vexil_store::Scope;

/// A new random secret for a key of `scope`, e.g. `vxa_3f9c…` (64 hex
/// digits of randomness after the scope prefix).
pub(crate) fn generate(scope: Scope) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for an API key: {e}"))?;
    let tag = match scope {
        Scope::Admin => "vxa",
        Scope::Server => "vxs",
        Scope::Client => "vxc",
    };
    Ok(format!("{tag}_{}", hex(&bytes)))
}

/// The stored form of a secret.
pub(crate) fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The part of a secret shown in lists.
pub(crate) fn prefix(secret: &str) -> String {
    secret.chars().take(8).collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
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
    }
}
