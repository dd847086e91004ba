//! Aggregate versions for optimistic concurrency and in-order event application.

use serde::{Deserialize, Serialize};

/// The version of an aggregate: 0 when created, one more on every change its owner makes.
/// A replica applies an event only when the event's version is the successor of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    pub fn initial() -> Version {
        Version(0)
    }

    /// A version read back from storage or from an event.
    pub fn new(value: u64) -> Version {
        Version(value)
    }

    /// The version after one more change. A u64 cannot be exhausted one change at a time.
    #[must_use]
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }

    /// Whether `self` is exactly one change after `previous`.
    pub fn follows(self, previous: Version) -> bool {
        previous.0.checked_add(1) == Some(self.0)
    }

    pub fn value(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_zero_and_grow_by_one() {
        let first = Version::initial();
        assert_eq!(first.value(), 0);
        let second = first.next();
        assert_eq!(second.value(), 1);
        assert!(second.follows(first));
        assert!(!first.follows(second));
        assert!(!second.next().follows(first));
        assert!(!first.follows(first));
        assert!(!Version::new(0).follows(Version::new(u64::MAX)));
    }

    #[test]
    fn versions_serialize_as_a_plain_number() {
        let version = Version::new(7);
        assert_eq!(serde_json::to_string(&version).expect("serialize"), "7");
        assert_eq!(
            serde_json::from_str::<Version>("7").expect("deserialize"),
            version
        );
        assert!(serde_json::from_str::<Version>("-1").is_err());
        assert!(serde_json::from_str::<Version>("\"7\"").is_err());
    }
}
