//! JWTs with jsonwebtoken: RS256 or ES256 by the cert, `kid` = the cert's name. Keys are parsed
//! once per cert and cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use iam_domain::cache::TtlCache;
use iam_domain::model::Cert;
use iam_domain::ports::{Claims, TokenCodec, TokenError};
use iam_domain::values::{CryptoAlgorithm, ObjectName};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

struct Keys {
    /// The certificate the keys were made from: a changed cert means new keys.
    certificate: String,
    private_key: String,
    alg: Algorithm,
    /// The parsed RSA key, kept: jsonwebtoken parses and checks the key from DER on every
    /// signature, which the profile showed as a third of each sign-in's CPU.
    rsa: Option<aws_lc_rs::signature::RsaKeyPair>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

/// A token whose signature was checked, and the keys it was checked with.
struct Verified {
    keys: Arc<Keys>,
    claims: Claims,
}

/// How long a checked signature is remembered, and how many: a client presents its token on
/// every call, and the RSA check was a third of a Bearer call's CPU. Expiry, `nbf` and the
/// issuer are checked again on every use; a changed cert makes new keys, which no remembered
/// check matches. About 1 KB an entry.
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(300);
const VERIFIED_MAX: usize = 20_000;

/// jsonwebtoken's leeway for `exp` and `nbf`, in seconds.
const LEEWAY: i64 = 30;

pub struct JwtCodec {
    keys: RwLock<HashMap<String, Arc<Keys>>>,
    /// Keyed by the SHA-256 of the whole token.
    verified: TtlCache<[u8; 32], Verified>,
    rng: SystemRandom,
}

impl Default for JwtCodec {
    fn default() -> Self {
        Self {
            keys: RwLock::default(),
            verified: TtlCache::with_capacity(VERIFIED_TTL, VERIFIED_MAX),
            rng: SystemRandom::new(),
        }
    }
}

/// What jsonwebtoken checks of a token's claims besides its signature, in its order: `exp`,
/// `nbf` (each with [`LEEWAY`]), then the issuer when one is required.
fn check_claims(claims: &Claims, issuer: Option<&str>, now: i64) -> Result<(), TokenError> {
    if claims.exp < now - LEEWAY {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + LEEWAY {
        return Err(TokenError::Malformed);
    }
    if let Some(iss) = issuer
        && claims.iss != iss
    {
        return Err(TokenError::WrongIssuer("another issuer".into()));
    }
    Ok(())
}

fn alg_of(cert: &Cert) -> Algorithm {
    match cert.crypto_algorithm {
        CryptoAlgorithm::Rs256 => Algorithm::RS256,
        CryptoAlgorithm::Es256 => Algorithm::ES256,
    }
}

impl JwtCodec {
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self, cert: &Cert) -> Result<Arc<Keys>, TokenError> {
        if let Ok(map) = self.keys.read()
            && let Some(k) = map.get(cert.name.as_str())
            && k.certificate == cert.certificate
            && k.private_key == cert.private_key.expose()
        {
            return Ok(k.clone());
        }
        let alg = alg_of(cert);
        let pem = cert.private_key.expose().as_bytes();
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|e| TokenError::Key(format!("cert {}: private key: {e}", cert.name)))?;
        let jwk = Jwk::from_encoding_key(&encoding, alg)
            .map_err(|e| TokenError::Key(format!("cert {}: public key: {e}", cert.name)))?;
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| TokenError::Key(format!("cert {}: public key: {e}", cert.name)))?;
        let rsa = if alg == Algorithm::RS256 {
            let label_pkcs1 = cert.private_key.expose().contains("BEGIN RSA PRIVATE KEY");
            crate::certs::pem_to_der(cert.private_key.expose()).and_then(|der| {
                if label_pkcs1 {
                    aws_lc_rs::signature::RsaKeyPair::from_der(&der).ok()
                } else {
                    aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).ok()
                }
            })
        } else {
            None
        };
        let keys = Arc::new(Keys {
            certificate: cert.certificate.clone(),
            private_key: cert.private_key.expose().to_owned(),
            alg,
            rsa,
            encoding,
            decoding,
            jwk,
        });
        if let Ok(mut map) = self.keys.write() {
            map.insert(cert.name.to_string(), keys.clone());
        }
        Ok(keys)
    }

    /// The JWKS entry of a cert: the public key, plus `kid`, `alg`, `use` and `x5c` (the DER of
    /// the certificate, base64) so Casdoor's SDKs can take the certificate from it.
    fn public_jwk(&self, cert: &Cert) -> Result<serde_json::Value, TokenError> {
        let keys = self.keys(cert)?;
        let mut v = serde_json::to_value(&keys.jwk).map_err(|e| TokenError::Key(e.to_string()))?;
        let der = crate::certs::pem_to_der(&cert.certificate).ok_or_else(|| {
            TokenError::Key(format!("cert {}: certificate is not PEM", cert.name))
        })?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("kid".into(), cert.name.to_string().into());
            obj.insert("alg".into(), cert.crypto_algorithm.as_str().into());
            obj.insert("use".into(), "sig".into());
            obj.insert(
                "x5c".into(),
                serde_json::json!([base64::engine::general_purpose::STANDARD.encode(der)]),
            );
            obj.remove("key_ops");
        }
        Ok(v)
    }
}

impl TokenCodec for JwtCodec {
    fn sign(&self, cert: &Cert, claims: &Claims) -> Result<String, TokenError> {
        let keys = self.keys(cert)?;
        if let Some(rsa) = &keys.rsa {
            return sign_rs256(rsa, &self.rng, &cert.name, claims);
        }
        let mut header = Header::new(keys.alg);
        header.typ = Some("JWT".into());
        header.kid = Some(cert.name.to_string());
        jsonwebtoken::encode(&header, claims, &keys.encoding)
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    fn jwk(&self, cert: &Cert) -> Result<serde_json::Value, TokenError> {
        self.public_jwk(cert)
    }

    fn generate_cert(&self, name: &ObjectName, alg: CryptoAlgorithm) -> Result<Cert, TokenError> {
        crate::certs::generate_cert(name, alg, chrono::Utc::now())
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    fn kid(&self, token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).ok()?.kid
    }

    fn verify(&self, cert: &Cert, token: &str, issuer: Option<&str>) -> Result<Claims, TokenError> {
        let keys = self.keys(cert)?;
        let mut id = [0u8; 32];
        id.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        if let Some(seen) = self.verified.get(&id)
            && Arc::ptr_eq(&seen.keys, &keys)
        {
            check_claims(&seen.claims, issuer, chrono::Utc::now().timestamp())?;
            return Ok(seen.claims.clone());
        }
        let mut v = Validation::new(keys.alg);
        v.validate_aud = false;
        v.validate_nbf = true;
        v.leeway = LEEWAY.unsigned_abs();
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        if let Some(iss) = issuer {
            v.set_issuer(&[iss]);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => TokenError::Expired,
                    K::InvalidSignature => TokenError::BadSignature,
                    K::InvalidIssuer => TokenError::WrongIssuer("another issuer".into()),
                    _ => TokenError::Malformed,
                }
            })?;
        self.verified.put(
            id,
            Arc::new(Verified {
                keys,
                claims: claims.clone(),
            }),
        );
        Ok(claims)
    }

    fn random_token(&self) -> String {
        let mut b = [0u8; 32];
        // SystemRandom only fails when the OS has no entropy source at all.
        if self.rng.fill(&mut b).is_err() {
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn hash(&self, raw: &str) -> String {
        hex::encode(digest::digest(&digest::SHA256, raw.as_bytes()).as_ref())
    }
}

/// RS256 with a kept key: `base64url(header) . base64url(claims) . base64url(RSASSA-PKCS1-v1_5
/// SHA-256 signature)`, exactly what jsonwebtoken produces.
fn sign_rs256(
    rsa: &aws_lc_rs::signature::RsaKeyPair,
    rng: &SystemRandom,
    kid: &str,
    claims: &Claims,
) -> Result<String, TokenError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": kid});
    let header = serde_json::to_vec(&header).map_err(|e| TokenError::Key(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| TokenError::Key(e.to_string()))?;
    let mut message = b64.encode(header);
    message.push('.');
    message.push_str(&b64.encode(payload));
    let mut signature = vec![0u8; rsa.public_modulus_len()];
    rsa.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        rng,
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| TokenError::Key("RSA signing failed".into()))?;
    message.push('.');
    message.push_str(&b64.encode(signature));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn claims(exp_offset: i64) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            iss: "https://iam.example.com".into(),
            sub: "u1".into(),
            aud: serde_json::json!(["cid"]),
            azp: "cid".into(),
            iat: now,
            nbf: now,
            exp: now + exp_offset,
            jti: "j".into(),
            token_type: "access-token".into(),
            scope: String::new(),
            nonce: String::new(),
            sid: "s1".into(),
            owner: "demo".into(),
            name: "alice".into(),
            display_name: String::new(),
            avatar: String::new(),
            preferred_username: String::new(),
            picture: String::new(),
        }
    }

    /// A remembered signature check still checks the claims as jsonwebtoken does.
    #[test]
    fn a_remembered_check_still_checks_the_claims() {
        let c = claims(3600);
        let now = c.iat;
        assert_eq!(
            check_claims(&c, Some("https://iam.example.com"), now),
            Ok(())
        );
        assert_eq!(check_claims(&c, None, now + 3600 + LEEWAY), Ok(()));
        assert_eq!(
            check_claims(&c, None, now + 3600 + LEEWAY + 1),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check_claims(&c, None, now - LEEWAY - 1),
            Err(TokenError::Malformed),
            "not yet valid"
        );
        assert_eq!(
            check_claims(&c, Some("https://other"), now),
            Err(TokenError::WrongIssuer("another issuer".into()))
        );
    }

    #[test]
    fn sign_verify_and_jwks_for_both_algorithms() {
        crate::install_crypto_provider();
        let codec = JwtCodec::new();
        for alg in [CryptoAlgorithm::Rs256, CryptoAlgorithm::Es256] {
            let cert = crate::certs::generate_cert(
                &ObjectName::parse("name", "c1").unwrap(),
                alg,
                Utc::now(),
            )
            .unwrap();
            let t = codec.sign(&cert, &claims(3600)).unwrap();
            assert_eq!(codec.kid(&t).as_deref(), Some("c1"));
            // jsonwebtoken itself verifies what the fast path signed.
            let header = jsonwebtoken::decode_header(&t).unwrap();
            assert_eq!(header.alg, alg_of(&cert));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            let back = codec
                .verify(&cert, &t, Some("https://iam.example.com"))
                .unwrap();
            assert_eq!(back.sub, "u1");
            // Again, from the remembered check: the same claims.
            let again = codec
                .verify(&cert, &t, Some("https://iam.example.com"))
                .unwrap();
            assert_eq!((again.sub, again.jti), (back.sub, back.jti));
            // Another signature over the same claims is a token of its own.
            let (signed, sig) = t.rsplit_once('.').unwrap();
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            let forged = format!("{signed}.{flipped}{}", &sig[1..]);
            assert!(codec.verify(&cert, &forged, None).is_err(), "forged");
            assert_eq!(
                codec.verify(&cert, &t, Some("https://other")).unwrap_err(),
                TokenError::WrongIssuer("another issuer".into())
            );
            let expired = codec.sign(&cert, &claims(-3600)).unwrap();
            assert_eq!(
                codec.verify(&cert, &expired, None).unwrap_err(),
                TokenError::Expired
            );
            let other = crate::certs::generate_cert(
                &ObjectName::parse("name", "c1").unwrap(),
                alg,
                Utc::now(),
            )
            .unwrap();
            assert!(
                codec.verify(&other, &t, None).is_err(),
                "another key does not verify"
            );
            let jwk = codec.jwk(&cert).unwrap();
            assert_eq!(jwk["kid"], "c1");
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk["x5c"][0].as_str().unwrap().len() > 100);
        }
        assert_eq!(
            codec.hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(codec.random_token(), codec.random_token());
    }
}
