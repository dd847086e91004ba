//! A ticket's pass: the secret its QR code carries, signed so that a scanner at the door checks
//! it offline, with the public key alone.
//!
//! A secret is 101 bytes in base64url without padding (135 characters, a version 8 QR code at
//! error correction M):
//!
//! | bytes | what |
//! | --- | --- |
//! | 1 | format version, [`FORMAT_VERSION`] |
//! | 16 | the ticket's id (its UUID's bytes) |
//! | 4 | the pass's generation, big-endian: it increases whenever the ticket changes hands, and an older generation is revoked |
//! | 16 | a random seed, so a new pass of the same generation is a new secret |
//! | 64 | the Ed25519 signature of the 37 bytes before it |
//!
//! The signing key is an Ed25519 key in the form of the other keys here (standard base64 of its
//! PKCS#8 DER); the public key is published as the base64url of its 32 raw bytes, which WebCrypto
//! imports as `raw` Ed25519.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use uuid::Uuid;

/// The first byte of every secret this crate signs.
pub const FORMAT_VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 16 + 4 + 16;
const SECRET_LEN: usize = PAYLOAD_LEN + ed25519_dalek::SIGNATURE_LENGTH;

/// What a pass says: which ticket, which generation of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub ticket_id: Uuid,
    pub generation: u32,
    pub seed: [u8; 16],
}

impl Pass {
    fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut payload = [0; PAYLOAD_LEN];
        payload[0] = FORMAT_VERSION;
        payload[1..17].copy_from_slice(self.ticket_id.as_bytes());
        payload[17..21].copy_from_slice(&self.generation.to_be_bytes());
        payload[21..].copy_from_slice(&self.seed);
        payload
    }

    fn from_payload(payload: &[u8; PAYLOAD_LEN]) -> Pass {
        let mut id = [0; 16];
        id.copy_from_slice(&payload[1..17]);
        let mut generation = [0; 4];
        generation.copy_from_slice(&payload[17..21]);
        let mut seed = [0; 16];
        seed.copy_from_slice(&payload[21..]);
        Pass {
            ticket_id: Uuid::from_bytes(id),
            generation: u32::from_be_bytes(generation),
            seed,
        }
    }
}

/// Why a secret is not a pass this key signed. The scanner answers `invalid` to each alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPass {
    #[error("the secret is not base64url")]
    NotBase64Url,
    #[error("the secret is {0} bytes, a pass is {SECRET_LEN}")]
    WrongLength(usize),
    #[error("the secret is of format {0}, this reads {FORMAT_VERSION}")]
    UnknownFormat(u8),
    #[error("the signature does not match")]
    BadSignature,
}

/// A key string that is not what its configuration variable must hold; never quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassKeyError {
    #[error("the pass signing key is not the standard base64 of a PKCS#8 DER Ed25519 key")]
    NotPkcs8Ed25519,
    #[error("the pass public key is not the base64url of 32 raw Ed25519 bytes")]
    NotRawEd25519,
}

/// The key that signs passes, held by the one component that issues them.
pub struct PassSigner(ed25519_dalek::SigningKey);

impl PassSigner {
    /// Reads the standard base64 of a PKCS#8 DER Ed25519 private key (surrounding whitespace,
    /// such as the newline a `.env` file keeps, is ignored).
    pub fn from_base64_pkcs8(text: &str) -> Result<PassSigner, PassKeyError> {
        let der = STANDARD
            .decode(text.trim())
            .map_err(|_| PassKeyError::NotPkcs8Ed25519)?;
        ed25519_dalek::SigningKey::from_pkcs8_der(&der)
            .map(PassSigner)
            .map_err(|_| PassKeyError::NotPkcs8Ed25519)
    }

    /// A key from its 32-byte seed, for tests and development tools.
    pub fn from_seed(seed: &[u8; 32]) -> PassSigner {
        PassSigner(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The secret of `pass`.
    pub fn sign(&self, pass: &Pass) -> String {
        let payload = pass.payload();
        let signature = self.0.sign(&payload);
        let mut secret = Vec::with_capacity(SECRET_LEN);
        secret.extend_from_slice(&payload);
        secret.extend_from_slice(&signature.to_bytes());
        URL_SAFE_NO_PAD.encode(secret)
    }

    pub fn verifier(&self) -> PassVerifier {
        PassVerifier(self.0.verifying_key())
    }
}

impl std::fmt::Debug for PassSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassSigner([redacted])")
    }
}

/// The public key that checks passes; anyone may hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassVerifier(ed25519_dalek::VerifyingKey);

impl PassVerifier {
    /// Reads the form [`PassVerifier::to_base64url`] writes.
    pub fn from_base64url(text: &str) -> Result<PassVerifier, PassKeyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| PassKeyError::NotRawEd25519)?;
        let raw: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| PassKeyError::NotRawEd25519)?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map(PassVerifier)
            .map_err(|_| PassKeyError::NotRawEd25519)
    }

    /// The base64url (no padding) of the 32 raw public-key bytes.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_bytes())
    }

    /// The pass `secret` carries, if this key signed it. Checks the signature strictly, so a
    /// secret has exactly one valid form.
    pub fn verify(&self, secret: &str) -> Result<Pass, InvalidPass> {
        let bytes = URL_SAFE_NO_PAD
            .decode(secret.trim())
            .map_err(|_| InvalidPass::NotBase64Url)?;
        if bytes.len() != SECRET_LEN {
            return Err(InvalidPass::WrongLength(bytes.len()));
        }
        let (payload, signature) = bytes.split_at(PAYLOAD_LEN);
        if payload[0] != FORMAT_VERSION {
            return Err(InvalidPass::UnknownFormat(payload[0]));
        }
        let signature = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|_| InvalidPass::BadSignature)?;
        self.0
            .verify_strict(payload, &signature)
            .map_err(|_| InvalidPass::BadSignature)?;
        let payload: &[u8; PAYLOAD_LEN] = payload
            .try_into()
            .map_err(|_| InvalidPass::WrongLength(bytes.len()))?;
        Ok(Pass::from_payload(payload))
    }
}

/// The QR code of `secret` that [`qr_svg`] draws.
fn qr_code(secret: &str) -> Result<qrcode::QrCode, qrcode::types::QrError> {
    qrcode::QrCode::with_error_correction_level(secret, qrcode::EcLevel::M)
}

/// `secret` as a QR code in SVG (error correction M, a quiet zone of four modules), black on
/// white and scalable: it fills whatever box the page gives it.
pub fn qr_svg(secret: &str) -> Result<String, qrcode::types::QrError> {
    Ok(qr_code(secret)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pass() -> Pass {
        Pass {
            ticket_id: Uuid::parse_str("3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f").expect("a uuid"),
            generation: 2,
            seed: [9; 16],
        }
    }

    fn signer() -> PassSigner {
        PassSigner::from_seed(&[7; 32])
    }

    #[test]
    fn a_signed_pass_reads_back_with_the_public_key_alone() {
        let secret = signer().sign(&pass());
        assert_eq!(secret.len(), 135);
        let published = signer().verifier().to_base64url();
        let verifier = PassVerifier::from_base64url(&published).expect("the published key");
        assert_eq!(verifier.verify(&secret), Ok(pass()));
    }

    #[test]
    fn another_key_s_pass_is_invalid() {
        let secret = PassSigner::from_seed(&[8; 32]).sign(&pass());
        assert_eq!(
            signer().verifier().verify(&secret),
            Err(InvalidPass::BadSignature)
        );
    }

    #[test]
    fn secrets_of_the_wrong_shape_are_invalid() {
        let verifier = signer().verifier();
        let secret = signer().sign(&pass());
        assert_eq!(
            verifier.verify("not base64url!"),
            Err(InvalidPass::NotBase64Url)
        );
        assert_eq!(
            verifier.verify(&secret[..100]),
            Err(InvalidPass::WrongLength(75))
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&secret).expect("base64url");
        bytes[0] = 2;
        assert_eq!(
            verifier.verify(&URL_SAFE_NO_PAD.encode(&bytes)),
            Err(InvalidPass::UnknownFormat(2))
        );
    }

    proptest! {
        #[test]
        fn any_flipped_bit_makes_a_pass_invalid(index in 0..SECRET_LEN, bit in 0..8u8) {
            let secret = signer().sign(&pass());
            let mut bytes = URL_SAFE_NO_PAD.decode(&secret).expect("base64url");
            bytes[index] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(signer().verifier().verify(&forged).is_err());
        }
    }

    #[test]
    fn a_new_seed_or_generation_is_a_new_secret() {
        let first = signer().sign(&pass());
        let reseeded = signer().sign(&Pass {
            seed: [1; 16],
            ..pass()
        });
        let next = signer().sign(&Pass {
            generation: 3,
            ..pass()
        });
        assert_ne!(first, reseeded);
        assert_ne!(first, next);
        assert_eq!(
            signer().verifier().verify(&next).map(|p| p.generation),
            Ok(3)
        );
    }

    #[test]
    fn keys_in_the_wrong_form_are_refused_without_quoting_them() {
        let error = PassSigner::from_base64_pkcs8("c2VjcmV0").expect_err("not PKCS#8");
        assert!(!error.to_string().contains("c2VjcmV0"));
        assert_eq!(
            PassVerifier::from_base64url("AAAA"),
            Err(PassKeyError::NotRawEd25519)
        );
    }

    /// The QR the SVG draws, read back by a QR decoder from its modules.
    #[test]
    fn the_qr_carries_the_secret() {
        let secret = signer().sign(&pass());
        let svg = qr_svg(&secret).expect("a QR");
        assert!(svg.contains("<svg") && svg.contains("#000000"));
        let code = qr_code(&secret).expect("a QR");
        assert_eq!(code.version(), qrcode::Version::Normal(8));
        let width = code.width();
        let colors = code.to_colors();
        // Four modules of quiet zone, four pixels a module, as a scanner would see it.
        let (scale, margin) = (4, 4);
        let size = (width + 2 * margin) * scale;
        let mut image = rqrr::PreparedImage::prepare_from_bitmap(size, size, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            (margin..margin + width).contains(&mx)
                && (margin..margin + width).contains(&my)
                && colors[(my - margin) * width + (mx - margin)] == qrcode::Color::Dark
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, secret);
    }
}
