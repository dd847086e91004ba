//! What the auth service needs from the outside world, as traits the component implements
//! with Spin's SQLite and key-value APIs and tests implement with in-memory fakes.

use std::fmt;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A user to insert at sign-up. The email is already normalised (trimmed, lower-cased).
pub struct NewUser {
    pub id: domain::UserId,
    pub email: domain::Email,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// A user as stored. The service only reads it back to check a password and issue a token.
pub struct StoredUser {
    pub id: String,
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

// The hash stays out of `Debug` so that a user printed in a test failure or a log line
// cannot leak it.
impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// Why a user could not be inserted.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// The email's UNIQUE constraint refused the row: someone signed up with it first.
    #[error("the email is already in use")]
    EmailTaken,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The users table.
pub trait UserStore {
    /// The user with this (normalised) email, if any.
    fn find_by_email(&self, email: &domain::Email) -> anyhow::Result<Option<StoredUser>>;
    /// Must rely on a UNIQUE constraint so concurrent inserts of one email yield exactly one success.
    fn insert(&self, user: &NewUser) -> Result<(), InsertUserError>;
}

/// A fixed-window attempt counter (key-value store in production). `hit` records one attempt
/// under `key` and returns the attempts in the current window and when it ends.
pub trait AttemptCounter {
    fn hit(&self, key: &str, window_secs: u64, now: u64) -> anyhow::Result<Attempts>;
}

/// The attempts recorded in the current window, this one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub count: u32,
    /// Seconds since the Unix epoch at which the window ends and counting starts again.
    pub window_ends_at: u64,
}

/// The two key-value operations a [`WindowCounter`] needs; the component adapts Spin's
/// key-value store `get` and `set` to it.
pub trait CounterStorage {
    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> anyhow::Result<()>;
}

/// An [`AttemptCounter`] that keeps one small JSON record per key,
/// `{"windowStart": <unix secs>, "count": <attempts>}`, and starts a new window once the
/// recorded one has ended.
///
/// A hit is a get followed by a set, which is not atomic: concurrent attempts on one key may
/// read the same count, so a burst can get a few attempts past the limit. That is acceptable
/// for rate limiting, whose job is to make guessing slow, not to count exactly; Spin's
/// key-value API has no compare-and-swap to do better portably.
pub struct WindowCounter<S: CounterStorage> {
    storage: S,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WindowRecord {
    window_start: u64,
    count: u32,
}

impl<S: CounterStorage> WindowCounter<S> {
    pub fn new(storage: S) -> WindowCounter<S> {
        WindowCounter { storage }
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }
}

impl<S: CounterStorage> AttemptCounter for WindowCounter<S> {
    fn hit(&self, key: &str, window_secs: u64, now: u64) -> anyhow::Result<Attempts> {
        let stored = self
            .storage
            .get(key)
            .context("reading a sign-in attempt counter")?;
        // A record that does not parse can only come from an older format. Starting a fresh
        // window replaces it; failing instead would lock the key out until someone deleted it
        // by hand.
        let current = stored
            .and_then(|bytes| serde_json::from_slice::<WindowRecord>(&bytes).ok())
            .filter(|record| now < record.window_start.saturating_add(window_secs));
        let record = match current {
            Some(record) => WindowRecord {
                window_start: record.window_start,
                count: record.count.saturating_add(1),
            },
            None => WindowRecord {
                window_start: now,
                count: 1,
            },
        };
        let bytes = serde_json::to_vec(&record).context("encoding a sign-in attempt counter")?;
        self.storage
            .set(key, &bytes)
            .context("writing a sign-in attempt counter")?;
        Ok(Attempts {
            count: record.count,
            window_ends_at: record.window_start.saturating_add(window_secs),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    /// An in-memory key-value store; `fail` makes every operation an error.
    #[derive(Default)]
    pub(crate) struct MemoryStorage {
        pub(crate) entries: RefCell<HashMap<String, Vec<u8>>>,
        pub(crate) fail: bool,
    }

    impl CounterStorage for MemoryStorage {
        fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
            anyhow::ensure!(!self.fail, "key-value store unavailable");
            Ok(self.entries.borrow().get(key).cloned())
        }

        fn set(&self, key: &str, value: &[u8]) -> anyhow::Result<()> {
            anyhow::ensure!(!self.fail, "key-value store unavailable");
            self.entries
                .borrow_mut()
                .insert(key.to_owned(), value.to_vec());
            Ok(())
        }
    }

    const NOW: u64 = 1_750_000_000;
    const WINDOW: u64 = 900;

    fn counter() -> WindowCounter<MemoryStorage> {
        WindowCounter::new(MemoryStorage::default())
    }

    fn stored(counter: &WindowCounter<MemoryStorage>, key: &str) -> String {
        let bytes = counter.storage().entries.borrow().get(key).cloned();
        String::from_utf8(bytes.expect("a stored record")).expect("utf-8")
    }

    #[test]
    fn the_first_attempt_opens_a_window_that_ends_window_secs_later() {
        let counter = counter();
        let attempts = counter.hit("k", WINDOW, NOW).expect("hit");
        assert_eq!(
            attempts,
            Attempts {
                count: 1,
                window_ends_at: NOW + WINDOW
            }
        );
        assert_eq!(
            stored(&counter, "k"),
            format!(r#"{{"windowStart":{NOW},"count":1}}"#)
        );
    }

    #[test]
    fn attempts_within_the_window_are_counted_against_its_start() {
        let counter = counter();
        for (offset, count) in [(0, 1), (10, 2), (WINDOW - 1, 3)] {
            let attempts = counter.hit("k", WINDOW, NOW + offset).expect("hit");
            assert_eq!(
                attempts,
                Attempts {
                    count,
                    window_ends_at: NOW + WINDOW
                }
            );
        }
    }

    #[test]
    fn an_ended_window_starts_a_new_one() {
        let counter = counter();
        counter.hit("k", WINDOW, NOW).expect("hit");
        counter.hit("k", WINDOW, NOW + 1).expect("hit");
        let attempts = counter.hit("k", WINDOW, NOW + WINDOW).expect("hit");
        assert_eq!(
            attempts,
            Attempts {
                count: 1,
                window_ends_at: NOW + 2 * WINDOW
            }
        );
    }

    #[test]
    fn keys_are_counted_separately() {
        let counter = counter();
        counter.hit("a", WINDOW, NOW).expect("hit");
        counter.hit("a", WINDOW, NOW).expect("hit");
        assert_eq!(counter.hit("b", WINDOW, NOW).expect("hit").count, 1);
        assert_eq!(counter.hit("a", WINDOW, NOW).expect("hit").count, 3);
    }

    #[test]
    fn an_unreadable_record_is_replaced_by_a_new_window() {
        let counter = counter();
        let cases: [&[u8]; 3] = [b"not json", br#"{"count":"3"}"#, b""];
        for garbage in cases {
            counter
                .storage()
                .entries
                .borrow_mut()
                .insert("k".to_owned(), garbage.to_vec());
            assert_eq!(
                counter.hit("k", WINDOW, NOW).expect("hit").count,
                1,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn a_storage_failure_is_an_error_with_context() {
        let counter = WindowCounter::new(MemoryStorage {
            fail: true,
            ..MemoryStorage::default()
        });
        let error = counter.hit("k", WINDOW, NOW).expect_err("storage fails");
        assert_eq!(
            format!("{error:#}"),
            "reading a sign-in attempt counter: key-value store unavailable"
        );
    }

    #[test]
    fn debug_output_of_users_never_shows_the_hash() {
        let user = StoredUser {
            id: "id".to_owned(),
            email: "a@b.co".to_owned(),
            password_hash: "$argon2id$v=19$secret".to_owned(),
        };
        let new_user = NewUser {
            id: domain::UserId::new_random(),
            email: domain::Email::parse("a@b.co").expect("valid email"),
            password_hash: "$argon2id$v=19$secret".to_owned(),
            created_at: NOW,
        };
        for text in [format!("{user:?}"), format!("{new_user:?}")] {
            assert!(!text.contains("argon2"), "{text}");
            assert!(text.contains("a@b.co"), "{text}");
        }
    }
}
