//! Password hashing with argon2id (PHC strings).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use iam_domain::Secret;
use iam_domain::ports::PasswordError;
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

/// The domain's password port: argon2 on tokio's blocking pool, off the async workers, at most
/// `concurrency` at once (each holds ~19 MB while it runs). A hash that cannot get a slot within
/// `wait` is refused as busy (503 with Retry-After to the caller) instead of queueing without
/// bound.
#[derive(Debug, Clone)]
pub struct Argon2Passwords {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

impl Argon2Passwords {
    pub fn new(concurrency: usize, wait: std::time::Duration) -> Self {
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            wait,
        }
    }

    /// One slot per core.
    pub fn per_core(wait: std::time::Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, wait)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy { retry_after: 1 })?
            .map_err(|e| PasswordError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            f()
        })
        .await
        .map_err(|e| PasswordError::Failed(e.to_string()))
    }
}

#[async_trait::async_trait]
impl iam_domain::ports::PasswordHasher for Argon2Passwords {
    async fn hash(&self, password: &str) -> Result<Secret, PasswordError> {
        let p = password.to_owned();
        self.run(move || hash_password(&p))
            .await?
            .map_err(PasswordError::Failed)
    }

    async fn verify(&self, password: &str, hash: &Secret) -> Result<bool, PasswordError> {
        let (p, h) = (password.to_owned(), hash.clone());
        self.run(move || verify_password(&p, &h)).await
    }

    fn dummy_hash(&self) -> Secret {
        static DUMMY: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
        DUMMY
            .get_or_init(|| {
                // The hash of a random password nobody knows, with the same parameters.
                hash_password(&random_password())
                    .unwrap_or_else(|_| Secret::new("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
            })
            .clone()
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

    #[tokio::test]
    async fn a_check_that_cannot_get_a_slot_in_time_is_busy() {
        use iam_domain::ports::PasswordHasher;
        let p = Argon2Passwords::new(1, std::time::Duration::from_millis(1));
        let h = p.hash("pw").await.unwrap();
        // Hold the only slot; the next check waits 1 ms and gives up.
        let held = p.slots.clone().acquire_owned().await.unwrap();
        assert_eq!(
            p.verify("pw", &h).await,
            Err(PasswordError::Busy { retry_after: 1 })
        );
        drop(held);
        assert_eq!(p.verify("pw", &h).await, Ok(true));
        assert_eq!(p.verify("nope", &p.dummy_hash()).await, Ok(false));
    }
}
