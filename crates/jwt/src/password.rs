//! Password hashing with argon2id (PHC strings).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use iam_domain::Secret;
use rand::RngCore;

pub fn hash_password(password: &str) -> Result<Secret, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| Secret::new(h.to_string()))
        .map_err(|e| e.to_string())
}

/// `false` for a wrong password and for a hash that cannot be parsed.
pub fn verify_password(password: &str, hash: &Secret) -> bool {
    PasswordHash::new(hash.expose())
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random password for the built-in admin when none is configured: 20 characters from an
/// alphabet without look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// The domain's password port: argon2 on tokio's blocking pool, off the async workers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Argon2Passwords;

#[async_trait::async_trait]
impl iam_domain::ports::PasswordHasher for Argon2Passwords {
    async fn hash(&self, password: &str) -> Result<Secret, String> {
        let p = password.to_owned();
        tokio::task::spawn_blocking(move || hash_password(&p))
            .await
            .map_err(|e| e.to_string())?
    }

    async fn verify(&self, password: &str, hash: &Secret) -> bool {
        let (p, h) = (password.to_owned(), hash.clone());
        tokio::task::spawn_blocking(move || verify_password(&p, &h))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.expose().starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", &Secret::new("not a hash")));
        assert_ne!(random_password(), random_password());
    }
}
