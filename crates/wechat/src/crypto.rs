//! WeChat's formats for data the mini program hands over: legacy `encryptedData` (AES-128-CBC
//! with PKCS#7 under the session key, RustCrypto's `aes` + `cbc`) and the `rawData` signature
//! (`sha1(rawData + session_key)`), both as reference/wechat-api.md §3.2–3.3 describe.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use iam_domain::ports::DecryptError;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// The most encrypted data a mini program hands over (share info, WeRun's 30 days of steps).
const MAX_ENCRYPTED: usize = 64 * 1024;

/// base64 as the mini program sends it; a `+` that a form decoder turned into a space (the
/// field's most common mangling) is put back.
fn unbase64(s: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = s.trim().replace(' ', "+");
    STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| format!("is not base64: {e}"))
}

pub(crate) fn decrypt(session_key: &str, data: &str, iv: &str) -> Result<Vec<u8>, DecryptError> {
    if data.trim().is_empty() {
        return Err(DecryptError::Data("is required".into()));
    }
    if data.len() > MAX_ENCRYPTED {
        return Err(DecryptError::Data(format!(
            "is longer than {MAX_ENCRYPTED} characters"
        )));
    }
    if iv.trim().is_empty() {
        return Err(DecryptError::Iv("is required".into()));
    }
    let ct = unbase64(data).map_err(DecryptError::Data)?;
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(DecryptError::Data(format!(
            "is {} bytes, not whole 16-byte AES blocks",
            ct.len()
        )));
    }
    let iv = unbase64(iv).map_err(DecryptError::Iv)?;
    if iv.len() != 16 {
        return Err(DecryptError::Iv(format!(
            "must be 16 bytes, got {}",
            iv.len()
        )));
    }
    // A stored key that is not 16 bytes of base64 cannot have sealed anything the phone sent.
    let key = STANDARD
        .decode(session_key)
        .map_err(|_| DecryptError::WrongKey)?;
    let dec = Aes128CbcDec::new_from_slices(&key, &iv).map_err(|_| DecryptError::WrongKey)?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(&ct)
        .map_err(|_| DecryptError::WrongKey)
}

pub(crate) fn raw_data_signed(raw_data: &str, session_key: &str, signature: &str) -> bool {
    use aws_lc_rs::digest;
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(raw_data.as_bytes());
    ctx.update(session_key.as_bytes());
    let expected = hex::encode(ctx.finish().as_ref());
    let given = signature.trim().to_ascii_lowercase();
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official vector (reference/wechat-api.md §3.2), verified there.
    const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

    #[test]
    fn official_vector_opens() {
        let plain = decrypt(KEY, DATA, IV).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
        assert_eq!(v["watermark"]["appid"], "wx4f4bc4dec97d474b");
        assert_eq!(v["watermark"]["timestamp"], 1477314187);
    }

    #[test]
    fn a_space_for_a_plus_is_forgiven() {
        assert!(decrypt(KEY, &DATA.replace('+', " "), IV).is_ok());
    }

    #[test]
    fn bad_inputs_name_their_field() {
        assert!(matches!(decrypt(KEY, "", IV), Err(DecryptError::Data(_))));
        assert!(matches!(
            decrypt(KEY, "%%%", IV),
            Err(DecryptError::Data(_))
        ));
        assert!(matches!(
            decrypt(KEY, "AAAA", IV),
            Err(DecryptError::Data(_))
        ));
        assert!(matches!(
            decrypt(KEY, DATA, "AAAA"),
            Err(DecryptError::Iv(_))
        ));
        assert!(matches!(decrypt(KEY, DATA, "!!"), Err(DecryptError::Iv(_))));
        // Another key: the padding does not check out (or, rarely, garbage that is not JSON).
        match decrypt("lyY4HPQbaOYzZdG+JcYK9w==", DATA, IV) {
            Err(DecryptError::WrongKey) => {}
            Ok(p) => assert!(serde_json::from_slice::<serde_json::Value>(&p).is_err()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn raw_data_vector() {
        let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
        let key = "HyVFkGl5F5OQWJZZaNzBBg==";
        assert!(raw_data_signed(
            raw,
            key,
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        ));
        assert!(raw_data_signed(
            raw,
            key,
            "75E81CEDA165F4FFA64F4068AF58C64B8F54B88C"
        ));
        assert!(!raw_data_signed(
            raw,
            "tiihtNczf5v6AKRyjwEUhQ==",
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        ));
        assert!(!raw_data_signed(raw, key, ""));
    }
}
