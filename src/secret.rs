//! Secrets, rotation sets, and signature verification in constant time.
//!
//! A secret is decoded once, when the layer is built, into a [`Key`] for one
//! [`Algorithm`] and prepared: an HMAC key's keyed state (the hashed inner
//! and outer pads), an Ed25519 public key's decompressed point. A request
//! clones that state instead of re-keying. Tags are decoded into exactly
//! their algorithm's length before any comparison, so a truncated or
//! overlong tag never reaches the compare, and a tag is only ever compared
//! with keys of its own algorithm.

use std::fmt;

mod algorithm;
mod key;
mod signature;
mod tag;

pub use algorithm::Algorithm;
pub use key::Key;
pub use signature::Signature;
pub use tag::{InvalidTag, MAX_TAG_LEN, TAG_LEN, Tag};

use key::Prepared;

/// The HMAC-SHA256 tag of `content` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], content: &[u8]) -> Tag {
    hmac(Algorithm::HmacSha256, key, content)
}

/// The HMAC tag of `content` under `key`, for an HMAC `algorithm`.
///
/// # Panics
///
/// When `algorithm` is not an HMAC ([`Algorithm::is_hmac`]).
pub(crate) fn hmac(algorithm: Algorithm, key: &[u8], content: &[u8]) -> Tag {
    use hmac::{Hmac, Mac};
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], content: &[u8]) -> Vec<u8> {
        let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(content);
        mac.finalize().into_bytes().to_vec()
    }
    let bytes = match algorithm {
        Algorithm::HmacSha256 => run::<Hmac<sha2::Sha256>>(key, content),
        Algorithm::HmacSha512 => run::<Hmac<sha2::Sha512>>(key, content),
        Algorithm::HmacSha1 => run::<Hmac<sha1::Sha1>>(key, content),
        other => panic!("{other} is not an HMAC"),
    };
    Tag::from_slice(algorithm, &bytes).expect("an HMAC's output is its tag length")
}

/// The Ed25519 signature of `content` under the signing key `seed`.
#[cfg(feature = "ed25519")]
pub(crate) fn ed25519_sign(seed: &[u8; 32], content: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer as _;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(content)
        .to_bytes()
}

/// The shortest HMAC secret a layer accepts, in bytes of the decoded key
/// (for Standard Webhooks' `whsec_…`, the base64-decoded bytes).
///
/// 16 bytes is 128 bits, the strength of the shortest key NIST SP 800-107
/// treats as fit for HMAC today; a shorter key is within reach of an
/// offline search from one signed delivery, and in practice is a mistake:
/// a word split off a longer secret, a truncated value, a placeholder
/// (`secret`, `test`). Every secret a provider generates is longer (Slack,
/// Twilio: 32; Square, Zoom: 22; Stripe, Standard Webhooks, Numero,
/// Paddle, Linear, Paystack, Shopify: a prefix and 24 or more), and so are
/// the sample secrets of GitHub (`It's a Secret to Everybody`, 26), Slack,
/// Stripe, Svix and Numero. Where the sender lets you choose (GitHub,
/// WooCommerce, Flutterwave; Twitch from 10 characters, Lemon Squeezy from
/// 6), choose at least this. The few-byte values that some documents use
/// only to show their arithmetic (Twilio's `12345`, Square's `asdf1234`)
/// still verify through a [`SecretSet`], which checks no length, but a
/// layer refuses them.
///
/// Ed25519 public keys and shared tokens are not HMAC secrets: their own
/// rules apply.
pub const MIN_HMAC_SECRET_LEN: usize = 16;

/// No configured secret produced any of the given tags.
///
/// Zero-sized, like `hmac::digest::MacError`: it says nothing about which
/// secret or byte differed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacMismatch;

impl fmt::Display for MacMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no configured secret produced the given tag")
    }
}

impl std::error::Error for MacMismatch {}

/// A secret that cannot be used, reported when the layer is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// No secret was configured.
    NoSecrets,
    /// Secret number `index` (from 0) is empty.
    Empty {
        /// Position of the secret in the order it was given.
        index: usize,
    },
    /// Secret number `index` begins or ends with whitespace: almost always
    /// a stray newline or space from a file or an env var. (Whitespace
    /// inside a secret is part of it: GitHub's own sample secret is
    /// `It's a Secret to Everybody`.)
    Whitespace {
        /// Position of the secret in the order it was given.
        index: usize,
    },
    /// HMAC secret number `index` is shorter than
    /// [`MIN_HMAC_SECRET_LEN`] bytes.
    TooShort {
        /// The layer's scheme.
        scheme: &'static str,
        /// Position of the secret in the order it was given.
        index: usize,
        /// Its length in bytes (of the decoded key).
        len: usize,
        /// The scheme's minimum
        /// ([`Scheme::min_secret_len`](crate::Scheme::min_secret_len),
        /// [`MIN_HMAC_SECRET_LEN`] unless the provider documents less).
        min: usize,
    },
    /// The scheme could not decode secret number `index`.
    Undecodable {
        /// Position of the secret in the order it was given.
        index: usize,
        /// What the scheme expected, in a few words.
        expected: &'static str,
    },
    /// Fixed secrets and [per-tenant secrets](crate::tenant) were both
    /// given to one layer.
    SecretsAndTenants,
    /// The [`TenantSecrets`](crate::TenantSecrets) map was keyed for
    /// another scheme than the layer's.
    TenantScheme {
        /// The layer's scheme.
        expected: &'static str,
        /// The scheme the map was keyed for.
        found: &'static str,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecrets => f.write_str("no webhook secret configured"),
            Self::Empty { index } => write!(f, "webhook secret #{index} is empty"),
            Self::Whitespace { index } => write!(
                f,
                "webhook secret #{index} begins or ends with whitespace (a stray newline?)"
            ),
            Self::TooShort {
                scheme,
                index,
                len,
                min,
            } => write!(
                f,
                "{scheme} webhook secret #{index} is {len} byte(s); an HMAC secret needs at \
                 least {min} (a word split off a longer secret, or a placeholder?)"
            ),
            Self::Undecodable { index, expected } => {
                write!(f, "webhook secret #{index} is not {expected}")
            }
            Self::SecretsAndTenants => {
                f.write_str("a webhook layer takes fixed secrets or per-tenant secrets, not both")
            }
            Self::TenantScheme { expected, found } => write!(
                f,
                "the tenant secrets are keyed for scheme {found:?}, the layer's is {expected:?}"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// The secrets one scheme accepts: several during a rotation, old and new,
/// possibly of different algorithms (Standard Webhooks' `whsec_` HMAC
/// secrets next to `whpk_` Ed25519 public keys).
///
/// `Debug` prints only how many secrets there are.
#[derive(Clone)]
pub struct SecretSet {
    keys: Vec<Prepared>,
}

/// The configured key that verified a delivery; a scheme's
/// [`handshake`](crate::Scheme::handshake) answers with it (Zoom's
/// `encryptedToken` is an HMAC under the secret that signed the challenge).
#[derive(Clone, Copy)]
pub struct MatchedKey<'a>(&'a Prepared);

impl MatchedKey<'_> {
    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }

    /// This key's HMAC tag of `content`; `None` for a key that can only
    /// check signatures (a public key, a shared token).
    pub fn mac(&self, content: &[u8]) -> Option<Tag> {
        self.0.mac(&[content])
    }
}

impl fmt::Debug for MatchedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchedKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SecretSet {
    /// Builds a set of HMAC-SHA256 keys from raw key bytes, keying each HMAC
    /// once.
    ///
    /// A set checks no minimum length, so that a document's few-byte test
    /// vector can be verified; a layer refuses keys shorter than
    /// [`MIN_HMAC_SECRET_LEN`].
    ///
    /// # Errors
    ///
    /// [`SecretError::NoSecrets`] for no keys, [`SecretError::Empty`] for an
    /// empty one.
    pub fn from_keys<I, K>(keys: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        Self::from_decoded(keys.into_iter().map(|key| Key::hmac_sha256(key.as_ref())))
    }

    /// Builds a set from decoded keys of any algorithm, preparing each once.
    ///
    /// # Errors
    ///
    /// [`SecretError::NoSecrets`] for no keys, [`SecretError::Empty`] for an
    /// empty one, [`SecretError::Undecodable`] for a key its algorithm
    /// cannot use (an Ed25519 public key that is not a valid 32-byte point,
    /// or any Ed25519 key without the `ed25519` feature).
    pub fn from_decoded<I>(keys: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = Key>,
    {
        let mut prepared = Vec::new();
        for (index, key) in keys.into_iter().enumerate() {
            if key.as_bytes().is_empty() {
                return Err(SecretError::Empty { index });
            }
            let key = Prepared::new(&key)
                .map_err(|expected| SecretError::Undecodable { index, expected })?;
            prepared.push(key);
        }
        if prepared.is_empty() {
            return Err(SecretError::NoSecrets);
        }
        Ok(Self { keys: prepared })
    }

    /// How many secrets the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set holds at least one secret.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that some secret verifies some tag of `signature` over its
    /// signed bytes (see [`Signature`]), comparing HMAC tags in constant
    /// time; a tag is only tried against keys of its own algorithm.
    ///
    /// # Errors
    ///
    /// [`MacMismatch`] when no pair matches, or the signature's content
    /// function refuses the body.
    pub fn verify(&self, signature: &Signature, body: &[u8]) -> Result<(), MacMismatch> {
        self.verify_key(signature, body).map(|_| ())
    }

    /// As [`SecretSet::verify`], and says which key verified.
    ///
    /// # Errors
    ///
    /// [`MacMismatch`] when no pair matches, or the signature's content
    /// function refuses the body.
    pub fn verify_key(
        &self,
        signature: &Signature,
        body: &[u8],
    ) -> Result<MatchedKey<'_>, MacMismatch> {
        let content = signature.content(body).ok_or(MacMismatch)?;
        for key in &self.keys {
            // No allocation on this path: the candidates are filtered lazily.
            let candidates = || {
                signature
                    .tags()
                    .filter(|t| t.algorithm() == key.algorithm())
            };
            if candidates().next().is_some()
                && key.verifies(signature.prefix(), &content, candidates())
            {
                return Ok(MatchedKey(key));
            }
        }
        Err(MacMismatch)
    }

    /// The tag the first (newest-listed) secret gives `prefix ‖ body`; for
    /// signing helpers and tests.
    ///
    /// # Panics
    ///
    /// When the first secret is not an HMAC key (a public key or a token
    /// cannot sign).
    pub fn sign(&self, prefix: &[u8], body: &[u8]) -> Tag {
        self.keys[0]
            .mac(&[prefix, body])
            .expect("the first secret is an HMAC key")
    }
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSet")
            .field("secrets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Checks a decoded key against the layer's rules: an HMAC key of at least
/// `min` bytes (the scheme's
/// [`Scheme::min_secret_len`](crate::Scheme::min_secret_len)).
fn check_key_len(
    scheme: &'static str,
    min: usize,
    index: usize,
    key: &Key,
) -> Result<(), SecretError> {
    let len = key.as_bytes().len();
    if key.algorithm().is_hmac() && len < min {
        return Err(SecretError::TooShort {
            scheme,
            index,
            len,
            min,
        });
    }
    Ok(())
}

/// Checks a secret as the provider shows it: not empty, no whitespace at either end.
fn check_secret_text(index: usize, secret: &str) -> Result<(), SecretError> {
    if secret.is_empty() {
        return Err(SecretError::Empty { index });
    }
    // Only what is certainly a mistake: interior spaces are the secret's.
    if secret.trim() != secret {
        return Err(SecretError::Whitespace { index });
    }
    Ok(())
}

/// Checks and keys secrets as given to the layer (one fixed set, or one
/// tenant's): the scheme's `decode` (its
/// [`Scheme::decode_key`](crate::Scheme::decode_key)), the scheme's
/// minimum HMAC key length `min_len`, then the keyed state of each, once.
pub(crate) fn key_secrets<I, V>(
    scheme: &'static str,
    min_len: usize,
    decode: impl Fn(&str) -> Result<Key, &'static str>,
    secrets: I,
) -> Result<SecretSet, SecretError>
where
    I: IntoIterator<Item = V>,
    V: AsRef<str>,
{
    let mut keys = Vec::new();
    for (index, secret) in secrets.into_iter().enumerate() {
        let secret = secret.as_ref();
        check_secret_text(index, secret)?;
        let key =
            decode(secret).map_err(|expected| SecretError::Undecodable { index, expected })?;
        check_key_len(scheme, min_len, index, &key)?;
        keys.push(key);
    }
    SecretSet::from_decoded(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_key_material() {
        let set = SecretSet::from_keys(["super-secret-value"]).unwrap();
        let printed = format!("{set:?}");
        assert!(!printed.contains("super"), "{printed}");
    }

    #[test]
    fn tags_meet_only_keys_of_their_algorithm() {
        let set = SecretSet::from_decoded([
            Key::new(Algorithm::HmacSha512, b"k512".to_vec()),
            Key::new(Algorithm::HmacSha1, b"k1".to_vec()),
            Key::hmac_sha256(b"k256".to_vec()),
        ])
        .unwrap();
        let tag_of = |algorithm, key: &[u8]| {
            let one = SecretSet::from_decoded([Key::new(algorithm, key)]).unwrap();
            one.sign(b"p.", b"body")
        };
        for (algorithm, key) in [
            (Algorithm::HmacSha512, &b"k512"[..]),
            (Algorithm::HmacSha1, b"k1"),
            (Algorithm::HmacSha256, b"k256"),
        ] {
            let tag = tag_of(algorithm, key);
            assert_eq!(tag.as_bytes().len(), algorithm.tag_len());
            let signature = Signature::over_body(tag).with_prefix(b"p.".to_vec());
            let matched = set.verify_key(&signature, b"body").unwrap();
            assert_eq!(matched.algorithm(), algorithm);
            assert_eq!(set.verify(&signature, b"body!"), Err(MacMismatch));
            // The same bytes labelled with another algorithm never verify.
            if algorithm == Algorithm::HmacSha256 {
                let relabelled = Tag::from_slice(Algorithm::SharedToken, tag.as_bytes()).unwrap();
                let signature = Signature::over_body(relabelled).with_prefix(b"p.".to_vec());
                assert_eq!(set.verify(&signature, b"body"), Err(MacMismatch));
            }
        }
    }

    #[test]
    fn content_function_and_shared_token() {
        let set = SecretSet::from_keys(["k"]).unwrap();
        let tag = set.sign(b"u", b"BODY");
        let upper = Signature::over_body(tag)
            .with_prefix(b"u".to_vec())
            .with_content(|body| Some(body.to_ascii_uppercase()));
        assert_eq!(set.verify(&upper, b"body"), Ok(()));
        let refuses = Signature::over_body(tag).with_content(|_| None);
        assert_eq!(set.verify(&refuses, b"BODY"), Err(MacMismatch));

        use sha2::Digest as _;
        let token = SecretSet::from_decoded([Key::new(Algorithm::SharedToken, "t0k3n")]).unwrap();
        let claim = |value: &str| {
            let digest = sha2::Sha256::digest(value.as_bytes());
            Signature::over_body(Tag::from_slice(Algorithm::SharedToken, &digest).unwrap())
        };
        let matched = token.verify_key(&claim("t0k3n"), b"any body").unwrap();
        assert_eq!(matched.mac(b"x"), None, "a token cannot sign");
        assert_eq!(token.verify(&claim("t0k3n "), b""), Err(MacMismatch));
    }

    #[test]
    fn unusable_keys_are_refused_when_built() {
        let error = SecretSet::from_decoded([
            Key::hmac_sha256("fine"),
            Key::new(Algorithm::Ed25519, [1u8; 31].to_vec()),
        ])
        .unwrap_err();
        assert!(
            matches!(error, SecretError::Undecodable { index: 1, .. }),
            "{error}"
        );
        assert_eq!(
            SecretSet::from_decoded([Key::new(Algorithm::HmacSha1, Vec::new())]).unwrap_err(),
            SecretError::Empty { index: 0 }
        );
        assert!(!format!("{:?}", Key::hmac_sha256("hidden")).contains("hidden"));
    }
}
