//! Cryptography adapter: certs (self-signed X.509 with RSA-2048 or P-256 keys), JWT signing and
//! verification with jsonwebtoken, JWKS, session-key sealing (AES-256-GCM) and password hashing
//! (argon2). One crypto stack: aws-lc-rs, shared with rustls.

pub mod certs;
pub mod codec;
pub mod password;
pub mod seal;

pub use codec::JwtCodec;

/// jsonwebtoken 11 panics at the first sign or verify when no crypto provider is installed; call
/// this once at start (and in tests). Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}
