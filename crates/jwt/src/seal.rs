//! Sealing WeChat session keys at rest with AES-256-GCM.
//!
//! The sealed form is `nonce (12 bytes) || ciphertext+tag`. The (appid, openid) pair is the
//! associated data, so a sealed key copied onto another user's row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use iam_domain::Secret;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the session key encryption key must be 32 bytes, as 64 hex characters or base64")]
    BadKey,
    #[error("sealing failed")]
    Seal,
    #[error("the sealed session key cannot be opened (wrong key or tampered)")]
    Open,
}

pub struct SessionKeySealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SessionKeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeySealer(***)")
    }
}

impl SessionKeySealer {
    /// From 32 raw bytes.
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| SealError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// From the configured text: 64 hex characters or base64 of 32 bytes.
    pub fn from_text(text: &Secret) -> Result<Self, SealError> {
        use base64::Engine;
        let t = text.expose().trim();
        let bytes = hex::decode(t)
            .ok()
            .filter(|b| b.len() == 32)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .ok_or(SealError::BadKey)?;
        Self::new(&bytes)
    }

    /// A fresh random key as 64 hex characters.
    pub fn generate_text() -> Result<Secret, SealError> {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| SealError::Seal)?;
        Ok(Secret::new(hex::encode(k)))
    }

    pub fn seal(
        &self,
        appid: &str,
        openid: &str,
        session_key: &Secret,
    ) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut buf = session_key.expose().as_bytes().to_vec();
        let aad = format!("{appid}\n{openid}");
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, appid: &str, openid: &str, sealed: &[u8]) -> Result<Secret, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = ct.to_vec();
        let aad = format!("{appid}\n{openid}");
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec())
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

impl iam_domain::ports::SessionSealer for SessionKeySealer {
    fn seal(&self, appid: &str, openid: &str, session_key: &Secret) -> Result<Vec<u8>, String> {
        SessionKeySealer::seal(self, appid, openid, session_key).map_err(|e| e.to_string())
    }

    fn open(&self, appid: &str, openid: &str, sealed: &[u8]) -> Result<Secret, String> {
        SessionKeySealer::open(self, appid, openid, sealed).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = SessionKeySealer::generate_text().unwrap();
        let s = SessionKeySealer::from_text(&key).unwrap();
        let sk = Secret::new("qsXl7QTYr7VG+mq8ewB1xw==");
        let sealed = s.seal("wx1", "o1", &sk).unwrap();
        assert!(
            !sealed.windows(8).any(|w| w == &b"qsXl7QTY"[..]),
            "ciphertext, not plaintext"
        );
        assert_eq!(s.open("wx1", "o1", &sealed).unwrap(), sk);
        assert_eq!(s.open("wx1", "o2", &sealed), Err(SealError::Open));
        let other =
            SessionKeySealer::from_text(&SessionKeySealer::generate_text().unwrap()).unwrap();
        assert_eq!(other.open("wx1", "o1", &sealed), Err(SealError::Open));
        assert_eq!(
            SessionKeySealer::from_text(&Secret::new("short")).unwrap_err(),
            SealError::BadKey
        );
    }
}
