//! Signed requests between a province and a city (docs/federation.md, "The link protocol").
//!
//! The city issues a credential: its grant id and a random secret, shown once. Every request the province
//! sends over the link carries the grant id, the time, the actor (`province-name/user`) and an HMAC-SHA256
//! of the method, path and query, time, actor and the body's SHA-256, keyed by the secret. The city answers
//! with a proof: the HMAC of the request's signature under the same key. So each side knows the other holds
//! the secret, the secret never travels (not in a URL, not in a header), a request cannot be altered or
//! replayed after [`MAX_SKEW_S`], and an answer cannot come from a server that does not hold the grant.
//!
//! Invariant: verification compares in constant time and refuses before any work when a header is missing
//! or malformed.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub const GRANT_HEADER: &str = "vigil-link-grant";
pub const TIME_HEADER: &str = "vigil-link-time";
pub const ACTOR_HEADER: &str = "vigil-link-actor";
pub const SIGNATURE_HEADER: &str = "vigil-link-signature";
pub const PROOF_HEADER: &str = "vigil-link-proof";
/// Requests older or newer than this (seconds) are refused: a captured request cannot be played again later.
pub const MAX_SKEW_S: i64 = 60;
/// Credentials start with this, so that a pasted one is recognized (and a wrong paste refused clearly).
const PREFIX: &str = "vgl1.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("not a link credential")]
    BadCredential,
    #[error("request not signed")]
    Unsigned,
    #[error("request time too far from the city's clock")]
    Skew,
    #[error("signature does not match")]
    Mismatch,
}

/// A credential as the city shows it once: the grant id and the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub grant_id: i64,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ..)", self.grant_id) // the secret never reaches a log line
    }
}

impl Credential {
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}.{}", self.grant_id, self.secret)
    }

    pub fn parse(text: &str) -> Result<Credential, SignError> {
        let rest = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SignError::BadCredential)?;
        let (id, secret) = rest.split_once('.').ok_or(SignError::BadCredential)?;
        let grant_id = id.parse().map_err(|_| SignError::BadCredential)?;
        if grant_id <= 0 || secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(SignError::BadCredential);
        }
        Ok(Credential {
            grant_id,
            secret: secret.to_owned(),
        })
    }
}

/// A new secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The actor as a header value (user names may be Chinese): percent-encoded.
pub fn encode_actor(actor: &str) -> String {
    url::form_urlencoded::byte_serialize(actor.as_bytes()).collect()
}

/// The actor from its header value.
pub fn decode_actor(value: &str) -> String {
    url::form_urlencoded::parse(format!("a={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// What a signature covers.
pub struct Signed<'a> {
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    pub time: i64,
    pub actor: &'a str,
    pub body: &'a [u8],
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

impl Signed<'_> {
    fn message(&self) -> String {
        let body = hex::encode(Sha256::digest(self.body));
        format!(
            "{}\n{}\n{}\n{}\n{body}",
            self.method, self.target, self.time, self.actor
        )
    }

    /// The request's signature (hex).
    pub fn sign(&self, secret: &str) -> String {
        let mut m = mac(secret);
        m.update(self.message().as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// Checks the signature and the time against `now` (Unix seconds).
    pub fn verify(&self, secret: &str, signature: &str, now: i64) -> Result<(), SignError> {
        if (now - self.time).abs() > MAX_SKEW_S {
            return Err(SignError::Skew);
        }
        let sig = hex::decode(signature).map_err(|_| SignError::Mismatch)?;
        let mut m = mac(secret);
        m.update(self.message().as_bytes());
        m.verify_slice(&sig).map_err(|_| SignError::Mismatch)
    }
}

/// The city's proof that it holds the grant's secret: the HMAC of the request's signature.
pub fn proof(secret: &str, signature: &str) -> String {
    let mut m = mac(secret);
    m.update(b"answer\n");
    m.update(signature.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Checks an answer's proof.
pub fn verify_proof(secret: &str, signature: &str, proof: &str) -> Result<(), SignError> {
    let bytes = hex::decode(proof).map_err(|_| SignError::Mismatch)?;
    let mut m = mac(secret);
    m.update(b"answer\n");
    m.update(signature.as_bytes());
    m.verify_slice(&bytes).map_err(|_| SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";

    fn req(body: &[u8]) -> Signed<'_> {
        Signed {
            method: "GET",
            target: "/api/v1/link/tree",
            time: 1_700_000_000,
            actor: "江西省/admin",
            body,
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_does_not() {
        let sig = req(b"").sign(SECRET);
        assert_eq!(req(b"").verify(SECRET, &sig, 1_700_000_030), Ok(()));
        assert_eq!(
            req(b"x").verify(SECRET, &sig, 1_700_000_000),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            req(b"").verify("another-secret-another-secret-0000", &sig, 1_700_000_000),
            Err(SignError::Mismatch)
        );
        let mut other = req(b"");
        other.actor = "江西省/intruder";
        assert_eq!(
            other.verify(SECRET, &sig, 1_700_000_000),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            req(b"").verify(SECRET, &sig, 1_700_000_061),
            Err(SignError::Skew)
        );
        assert_eq!(
            req(b"").verify(SECRET, "zz", 1_700_000_000),
            Err(SignError::Mismatch)
        );
    }

    #[test]
    fn the_answer_proves_the_secret() {
        let sig = req(b"").sign(SECRET);
        let p = proof(SECRET, &sig);
        assert_eq!(verify_proof(SECRET, &sig, &p), Ok(()));
        assert!(verify_proof("another-secret-another-secret-0000", &sig, &p).is_err());
    }

    #[test]
    fn credentials_round_trip_and_garbage_is_refused() {
        let c = Credential {
            grant_id: 7,
            secret: SECRET.into(),
        };
        assert_eq!(Credential::parse(&c.encode()), Ok(c.clone()));
        assert!(!format!("{c:?}").contains(SECRET));
        for bad in [
            "",
            "vgl1.",
            "vgl1.7",
            "vgl1.x.abc",
            "vgl1.7.short",
            "vgl2.7.abcdefghijklmnopqrstuvwxyz0123456789",
            "vgl1.-1.abcdefghijklmnopqrstuvwxyz0123456789",
            "vgl1.7.abc/defghijklmnopqrstuvwxyz0123456789",
        ] {
            assert_eq!(
                Credential::parse(bad),
                Err(SignError::BadCredential),
                "{bad}"
            );
        }
    }
}
