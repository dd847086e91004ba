//! Password hashing with Argon2id.

use std::sync::OnceLock;

use anyhow::anyhow;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::Password;
use rand_core::OsRng;

/// The parameters [`PasswordHasher::production`] documents.
const PRODUCTION_PARAMS: Params = match Params::new(19 * 1024, 2, 1, None) {
    Ok(params) => params,
    Err(_) => panic!("the production Argon2 parameters are valid"),
};

/// The hash of [`DUMMY_PASSWORD`] with [`PRODUCTION_PARAMS`] and [`DUMMY_SALT`], precomputed
/// rather than made on first use: Spin gives every request a fresh instance, so a lazily
/// computed hash would cost an extra hash on every unknown-email sign-in and make unknown
/// emails slower than wrong passwords. The salt is fixed and public, which is harmless for a
/// hash that guards nothing.
const PRODUCTION_DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXlzYQ$1nec2pPVFGczv+YQoO7PbQAxgNymHmtxjhmGQs6daxk";

/// What the dummy hash is a hash of. Nothing signs in with it: a dummy verification's result
/// is thrown away.
const DUMMY_PASSWORD: &str = "auth-service dummy password for unknown emails";
/// The salt of every dummy hash: the unpadded base64 of the 16 bytes `dummysaltdummysa`.
const DUMMY_SALT: &str = "ZHVtbXlzYWx0ZHVtbXlzYQ";

/// Hashes and verifies passwords as Argon2id PHC strings (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`).
///
/// Verification reads the parameters from the stored string, so raising the parameters later
/// keeps old hashes valid.
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// A hash with this hasher's parameters, for [`PasswordHasher::verify_dummy`].
    dummy_hash: OnceLock<String>,
}

impl PasswordHasher {
    /// Argon2id with OWASP's recommended parameters: m = 19456 KiB (19 MiB), t = 2 passes,
    /// p = 1 lane. One lane because a Wasm instance runs on one thread; 19 MiB fits easily in an
    /// instance's memory. Measured with `scripts/bench-auth` (spin-host release build, 2 cores,
    /// 2026-11-25): 41 ms per hash or verification inside the Wasm instance (p50; 43 ms with 4
    /// sign-ins at once), which keeps a sign-in under 50 ms end to end while costing a guesser
    /// the same per attempt.
    pub fn production() -> PasswordHasher {
        PasswordHasher {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, PRODUCTION_PARAMS),
            dummy_hash: OnceLock::from(PRODUCTION_DUMMY_HASH.to_owned()),
        }
    }

    /// Cheaper parameters, for tests. Values under Argon2's minimums (8 KiB, 1 pass) are raised
    /// to them. The dummy hash is made on first use.
    pub fn with_params(memory_kib: u32, iterations: u32) -> PasswordHasher {
        let memory_kib = memory_kib.max(Params::MIN_M_COST);
        let iterations = iterations.max(Params::MIN_T_COST);
        // With one lane and both costs at least their minimums, `Params::new` cannot fail; the
        // fallback is never taken.
        let params = Params::new(memory_kib, iterations, 1, None).unwrap_or(PRODUCTION_PARAMS);
        PasswordHasher {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            dummy_hash: OnceLock::new(),
        }
    }

    /// A PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.hash_with_salt(password.expose(), &salt)
    }

    fn hash_with_salt(&self, password: &str, salt: &SaltString) -> anyhow::Result<String> {
        // The error says what went wrong (bad parameters, bad salt) and never echoes input.
        self.argon2
            .hash_password(password.as_bytes(), salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow!("hashing a password with Argon2id: {error}"))
    }

    /// Whether `password` matches the PHC string `phc`, in constant time. A string that is not
    /// a valid Argon2 PHC string matches nothing.
    pub fn verify(&self, password: &Password, phc: &str) -> bool {
        PasswordHash::new(phc).is_ok_and(|hash| {
            self.argon2
                .verify_password(password.expose().as_bytes(), &hash)
                .is_ok()
        })
    }

    /// Verifies against a fixed dummy hash with the same parameters, so an unknown email costs the same as a wrong password.
    pub fn verify_dummy(&self, password: &Password) {
        let dummy = self.dummy_hash.get_or_init(|| {
            // Only the test hasher gets here. Should hashing fail, an empty string makes the
            // verification below cheap, which affects timing and nothing else.
            SaltString::from_b64(DUMMY_SALT)
                .map_err(|error| anyhow!("{error}"))
                .and_then(|salt| self.hash_with_salt(DUMMY_PASSWORD, &salt))
                .unwrap_or_default()
        });
        // The outcome is irrelevant: this call only spends the time a real check would.
        let _matched = self.verify(password, dummy);
    }

    /// Whether no dummy verification has happened yet on a test hasher.
    #[cfg(test)]
    pub(crate) fn dummy_hash_is_unset(&self) -> bool {
        self.dummy_hash.get().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::with_params(8, 1)
    }

    fn password(text: &str) -> Password {
        Password::parse(text).expect("valid password")
    }

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let hasher = hasher();
        let hash = hasher.hash(&password("correct horse")).expect("hash");
        assert!(hasher.verify(&password("correct horse"), &hash));
        assert!(!hasher.verify(&password("correct horsE"), &hash));
        assert!(!hasher.verify(&password("wrong password"), &hash));
    }

    #[test]
    fn a_hash_is_an_argon2id_phc_string_with_the_hashers_parameters() {
        let hash = hasher().hash(&password("secret1")).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
        assert!(!hash.contains("secret1"));
        let hash = PasswordHasher::with_params(64, 3)
            .hash(&password("secret1"))
            .expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=3,p=1$"), "{hash}");
    }

    #[test]
    fn parameters_below_argon2s_minimums_are_raised_to_them() {
        let hash = PasswordHasher::with_params(0, 0)
            .hash(&password("secret1"))
            .expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
    }

    #[test]
    fn every_hash_has_its_own_random_salt() {
        let hasher = hasher();
        let first = hasher.hash(&password("secret1")).expect("hash");
        let second = hasher.hash(&password("secret1")).expect("hash");
        assert_ne!(first, second);
    }

    #[test]
    fn a_hash_made_with_other_parameters_still_verifies() {
        let old = PasswordHasher::with_params(16, 2)
            .hash(&password("secret1"))
            .expect("hash");
        assert!(hasher().verify(&password("secret1"), &old));
    }

    #[test]
    fn a_malformed_stored_hash_matches_nothing() {
        let hasher = hasher();
        for phc in [
            "",
            "secret1",
            "$argon2id$v=19$m=8,t=1,p=1$",
            "$2b$10$abcdefghijklmnop",
        ] {
            assert!(!hasher.verify(&password("secret1"), phc), "{phc:?}");
        }
    }

    #[test]
    fn the_dummy_hash_has_the_hashers_parameters_and_matches_no_user_password() {
        let hasher = hasher();
        hasher.verify_dummy(&password("secret1"));
        let dummy = hasher.dummy_hash.get().expect("made on first use");
        assert!(dummy.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{dummy}");
        assert!(hasher.verify(&password(DUMMY_PASSWORD), dummy));
    }

    #[test]
    fn the_production_dummy_hash_has_the_production_parameters() {
        let hash = PasswordHash::new(PRODUCTION_DUMMY_HASH).expect("a PHC string");
        assert_eq!(hash.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(hash.version, Some(0x13));
        let params = Params::try_from(&hash).expect("Argon2 parameters");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19456, 2, 1)
        );
    }

    /// About half a second in a debug build: the one test that runs the production parameters.
    #[test]
    fn the_production_dummy_hash_is_a_genuine_hash_of_the_dummy_password() {
        let hasher = PasswordHasher::production();
        assert!(hasher.verify(&password(DUMMY_PASSWORD), PRODUCTION_DUMMY_HASH));
        assert!(!hasher.verify(&password("secret1"), PRODUCTION_DUMMY_HASH));
    }
}
