//! [`JobKey`]: an idempotency key as it comes back from a backend or from
//! an operator, parsed from its text.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use super::IdempotencyKey;

/// An idempotency key read back: what a backend lists ([`Job::key`],
/// [`DeadLetter::key`], [`JobSummary::key`]) and what the operator's calls
/// take ([`QueueAdmin::replay`], [`QueueInspect::dead_letter`],
/// [`QueueInspect::discard`]).
///
/// It holds the key's text, `<scheme>:<event id>` or
/// `<scheme>/<tenant>:<event id>`, as [`IdempotencyKey::as_str`] writes it,
/// checked once when it is built: the first `:` ends the namespace, a `/`
/// in the namespace separates the scheme from the tenant, and the event id
/// is everything after the `:` (it may hold `:` and `/` itself). Parse one
/// with [`str::parse`] or [`TryFrom<&str>`](TryFrom); one built
/// [from an `IdempotencyKey`](From) has the same text.
///
/// Cheap to clone (one `Arc`). Equality, order and hash are the text's, so
/// a `HashMap<JobKey, _>` can be looked up with a `&str`. It serializes
/// (serde) as its text.
///
/// [`Job::key`]: super::queue::Job::key
/// [`DeadLetter::key`]: super::admin::DeadLetter::key
/// [`JobSummary::key`]: super::admin::JobSummary::key
/// [`QueueAdmin::replay`]: super::QueueAdmin::replay
/// [`QueueInspect::dead_letter`]: super::QueueInspect::dead_letter
/// [`QueueInspect::discard`]: super::QueueInspect::discard
#[derive(Clone)]
pub struct JobKey {
    text: Arc<str>,
    /// The byte offset of the first `:`, where the namespace ends.
    colon: usize,
}

/// Text that is not an idempotency key, refused by [`JobKey`]'s parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobKeyError {
    /// There is no `:`, so no namespace and no event id.
    NoColon,
    /// The scheme's name, before the first `/` or `:`, is empty.
    EmptyScheme,
    /// The scheme's name holds whitespace or a control character.
    InvalidScheme,
    /// The tenant, between the `/` and the first `:`, breaks the rules of a
    /// tenant id ([`crate::tenant`]).
    InvalidTenant {
        /// Which rule, in a few words.
        reason: &'static str,
    },
    /// Nothing follows the first `:`.
    EmptyEventId,
}

impl fmt::Display for JobKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoColon => f.write_str("not an idempotency key: it holds no ':'"),
            Self::EmptyScheme => f.write_str("not an idempotency key: its scheme is empty"),
            Self::InvalidScheme => f.write_str(
                "not an idempotency key: its scheme holds whitespace or a control character",
            ),
            Self::InvalidTenant { reason } => {
                write!(f, "not an idempotency key: its tenant {reason}")
            }
            Self::EmptyEventId => f.write_str("not an idempotency key: its event id is empty"),
        }
    }
}

impl std::error::Error for JobKeyError {}

impl JobKey {
    /// The key's text, `<scheme>:<event id>` or
    /// `<scheme>/<tenant>:<event id>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn namespace(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The scheme's name: the key's namespace, less its tenant.
    pub fn scheme(&self) -> &str {
        let namespace = self.namespace();
        namespace
            .split_once('/')
            .map_or(namespace, |(scheme, _)| scheme)
    }

    /// The tenant, for a layer with [per-tenant secrets](crate::tenant).
    pub fn tenant(&self) -> Option<&str> {
        self.namespace().split_once('/').map(|(_, tenant)| tenant)
    }

    /// The event's id within the scheme: all that follows the first `:`.
    pub fn event_id(&self) -> &str {
        &self.text[self.colon + 1..]
    }
}

impl FromStr for JobKey {
    type Err = JobKeyError;

    /// Parses a key's text.
    ///
    /// # Errors
    ///
    /// [`JobKeyError`] when `text` is not a key: no `:`, an empty scheme or
    /// one holding whitespace or a control character, a tenant that is not
    /// a tenant id, or an empty event id.
    fn from_str(text: &str) -> Result<Self, JobKeyError> {
        let colon = text.find(':').ok_or(JobKeyError::NoColon)?;
        let namespace = &text[..colon];
        let (scheme, tenant) = match namespace.split_once('/') {
            Some((scheme, tenant)) => (scheme, Some(tenant)),
            None => (namespace, None),
        };
        if scheme.is_empty() {
            return Err(JobKeyError::EmptyScheme);
        }
        if scheme.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(JobKeyError::InvalidScheme);
        }
        if let Some(reason) = tenant.and_then(crate::tenant::broken_rule) {
            return Err(JobKeyError::InvalidTenant { reason });
        }
        if colon + 1 == text.len() {
            return Err(JobKeyError::EmptyEventId);
        }
        Ok(Self {
            text: Arc::from(text),
            colon,
        })
    }
}

impl TryFrom<&str> for JobKey {
    type Error = JobKeyError;

    /// As [`str::parse`].
    fn try_from(text: &str) -> Result<Self, JobKeyError> {
        text.parse()
    }
}

impl From<&IdempotencyKey> for JobKey {
    /// The same key, with the same text; nothing is parsed.
    fn from(key: &IdempotencyKey) -> Self {
        let tenant = key.tenant().map_or(0, |tenant| 1 + tenant.as_str().len());
        Self {
            text: Arc::from(key.as_str()),
            colon: key.scheme().len() + tenant,
        }
    }
}

impl AsRef<str> for JobKey {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Borrow<str> for JobKey {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl PartialEq for JobKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for JobKey {}

impl PartialEq<str> for JobKey {
    fn eq(&self, other: &str) -> bool {
        &*self.text == other
    }
}

impl PartialEq<&str> for JobKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

impl PartialOrd for JobKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JobKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl Hash for JobKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Debug for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for JobKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for JobKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{JobKey, JobKeyError};
    use crate::{EventId, IdempotencyKey, Tenant};

    fn parsed(text: &str) -> JobKey {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn the_text_of_an_idempotency_key_parses_back_to_its_parts() {
        let cases = [
            ("numero", None, "evt_1"),
            ("numero", Some("acme"), "evt_1"),
            ("github", None, "id:with:colons"),
            ("github", Some("a.b-c_D9"), "a/b:c/d"),
            ("numberotp", None, "2:17-1:5"),
            ("stripe", Some("acme"), "/:"),
        ];
        for (scheme, tenant, id) in cases {
            let mut key = IdempotencyKey::new(scheme, &EventId::new(id).unwrap());
            if let Some(tenant) = tenant {
                key = key.with_tenant(Tenant::new(tenant).unwrap());
            }
            let from_key = JobKey::from(&key);
            let from_text = parsed(key.as_str());
            for job_key in [&from_key, &from_text] {
                assert_eq!(job_key.as_str(), key.as_str());
                assert_eq!(job_key.scheme(), scheme, "{key}");
                assert_eq!(job_key.tenant(), tenant, "{key}");
                assert_eq!(job_key.event_id(), id, "{key}");
                assert_eq!(job_key.to_string(), key.to_string());
            }
            assert_eq!(from_key, from_text);
        }
    }

    #[test]
    fn text_that_is_not_a_key_is_refused_with_its_reason() {
        let cases = [
            ("", JobKeyError::NoColon),
            ("nothing", JobKeyError::NoColon),
            ("numero/acme", JobKeyError::NoColon),
            (":evt", JobKeyError::EmptyScheme),
            ("/acme:evt", JobKeyError::EmptyScheme),
            ("num ero:evt", JobKeyError::InvalidScheme),
            ("numero\n:evt", JobKeyError::InvalidScheme),
            ("numero:", JobKeyError::EmptyEventId),
            ("numero/acme:", JobKeyError::EmptyEventId),
        ];
        for (text, error) in cases {
            assert_eq!(text.parse::<JobKey>().unwrap_err(), error, "{text:?}");
            assert_eq!(JobKey::try_from(text).unwrap_err(), error, "{text:?}");
        }
        for text in [
            "numero/:evt",
            "numero/a b:evt",
            "numero/a/b:evt",
            "numero/ä:evt",
        ] {
            assert!(
                matches!(
                    text.parse::<JobKey>(),
                    Err(JobKeyError::InvalidTenant { .. })
                ),
                "{text:?}"
            );
        }
        let long = format!("numero/{}:evt", "t".repeat(65));
        assert!(matches!(
            long.parse::<JobKey>(),
            Err(JobKeyError::InvalidTenant { .. })
        ));
    }

    #[test]
    fn keys_compare_hash_and_serialize_as_their_text() {
        let (a, b) = (parsed("numero:a"), parsed("numero:b"));
        assert!(a < b);
        assert_eq!(a, "numero:a");
        let set: std::collections::HashSet<JobKey> = [a.clone(), b].into();
        assert!(set.contains("numero:a"));
        assert_eq!(format!("{a:?}"), "\"numero:a\"");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"numero:a\"");
        let back: JobKey = serde_json::from_str("\"numero/acme:x:y\"").unwrap();
        assert_eq!(back.tenant(), Some("acme"));
        assert!(serde_json::from_str::<JobKey>("\"no colon\"").is_err());
    }
}
