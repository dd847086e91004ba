//! What the auth service needs from the outside world, as traits implemented over Spin's SQLite
//! (`store`) and, in tests, over in-memory fakes.

use std::fmt;

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

/// A fixed-window attempt counter. `hit` records one attempt under `key` and returns the attempts
/// in the current window (which starts at the first attempt and lasts `window_secs`) and when it
/// ends, in one atomic step: of N parallel hits on a key each sees a different count.
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

#[cfg(test)]
mod tests {
    use super::*;

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
            created_at: 1_750_000_000,
        };
        for text in [format!("{user:?}"), format!("{new_user:?}")] {
            assert!(!text.contains("argon2"), "{text}");
            assert!(text.contains("a@b.co"), "{text}");
        }
    }
}
