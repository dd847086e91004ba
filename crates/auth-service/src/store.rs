//! The users table and the attempt counters over the [`storage::Database`] port (schema in
//! `migrations/auth/`, [`MIGRATIONS`](crate::MIGRATIONS)), as the [`UserStore`] and the
//! [`AttemptCounter`] the service uses.

use anyhow::Context;
use storage::{Database, SqlValue};

use crate::{AttemptCounter, Attempts, InsertUserError, NewUser, StoredUser, UserStore};

/// Rows of ended windows removed per hit: more than a hit can add, so the table shrinks back to
/// the keys seen within one window.
const PRUNE_PER_HIT: i64 = 20;

/// Attempt counters in the `auth` database: one row per key holding its current window. A hit
/// is a single `INSERT … ON CONFLICT DO UPDATE … RETURNING`, which SQLite runs under its write
/// lock, so parallel hits on one key (from any number of instances) are counted exactly; and
/// each hit deletes a few rows whose window has ended, so keys made up by a guesser (a random
/// email per attempt) do not pile up.
pub struct SqliteAttempts<'a>(pub &'a dyn Database);

impl AttemptCounter for SqliteAttempts<'_> {
    fn hit(&self, key: &str, window_secs: u64, now: u64) -> anyhow::Result<Attempts> {
        let now_value = SqlValue::from_u64(now)?;
        let window = SqlValue::from_u64(window_secs)?;
        // Every expression on the right of SET reads the row as it was before the update.
        let rows = self
            .0
            .execute(
                "INSERT INTO attempt_windows (key, window_start, count) VALUES (?1, ?2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN window_start + ?3 <= ?2 THEN 1 ELSE count + 1 END, \
                 window_start = CASE WHEN window_start + ?3 <= ?2 THEN ?2 ELSE window_start END \
                 RETURNING count, window_start",
                &[key.into(), now_value.clone(), window.clone()],
            )
            .context("counting an attempt")?;
        let row = rows
            .first()
            .context("the attempt counter returned no row")?;
        let count = u32::try_from(row.integer("count")?).unwrap_or(u32::MAX);
        let window_start = u64::try_from(row.integer("window_start")?).unwrap_or(now);
        self.0
            .execute(
                "DELETE FROM attempt_windows WHERE key IN (SELECT key FROM attempt_windows \
                 WHERE window_start + ?1 <= ?2 LIMIT ?3)",
                &[window, now_value, PRUNE_PER_HIT.into()],
            )
            .context("removing ended attempt windows")?;
        Ok(Attempts {
            count,
            window_ends_at: window_start.saturating_add(window_secs),
        })
    }
}

/// Users in the `auth` SQLite database. The UNIQUE constraint on the (lower-cased) email is what
/// makes concurrent sign-ups of one address create exactly one account.
pub struct SqliteUsers<'a>(pub &'a dyn Database);

impl UserStore for SqliteUsers<'_> {
    fn find_by_email(&self, email: &domain::Email) -> anyhow::Result<Option<StoredUser>> {
        let rows = self
            .0
            .execute(
                "SELECT id, email, password_hash FROM users WHERE email = ?",
                &[email.as_str().into()],
            )
            .context("looking up a user by email")?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(StoredUser {
            id: row.text("id")?.to_owned(),
            email: row.text("email")?.to_owned(),
            password_hash: row.text("password_hash")?.to_owned(),
        }))
    }

    fn insert(&self, user: &NewUser) -> Result<(), InsertUserError> {
        let created_at =
            SqlValue::from_u64(user.created_at).map_err(|e| InsertUserError::Other(e.into()))?;
        match self.0.execute(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
            &[
                user.id.to_string().into(),
                user.email.as_str().into(),
                user.password_hash.as_str().into(),
                created_at,
            ],
        ) {
            Ok(_) => Ok(()),
            Err(error) if error.is_unique_violation() => Err(InsertUserError::EmailTaken),
            Err(error) => Err(InsertUserError::Other(
                anyhow::Error::new(error).context("inserting a user"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use storage::NativeDatabase;

    use super::*;

    fn database() -> NativeDatabase {
        let db = NativeDatabase::open_in_memory().expect("database");
        storage::migrate(&db, crate::MIGRATIONS).expect("migrations/auth/");
        db
    }

    fn new_user(email: &str) -> NewUser {
        NewUser {
            id: domain::UserId::new_random(),
            email: domain::Email::parse(email).expect("valid email"),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
            created_at: 1_750_000_000,
        }
    }

    #[test]
    fn an_inserted_user_is_found_by_email() {
        let db = database();
        let users = SqliteUsers(&db);
        let user = new_user("Ada@Example.com");
        users.insert(&user).expect("insert");
        let found = users
            .find_by_email(&domain::Email::parse("ada@example.com").expect("valid"))
            .expect("lookup")
            .expect("found");
        assert_eq!(found.id, user.id.to_string());
        assert_eq!(found.email, "ada@example.com");
        assert_eq!(found.password_hash, user.password_hash);
    }

    #[test]
    fn an_unknown_email_is_not_found() {
        let db = database();
        let missing = SqliteUsers(&db)
            .find_by_email(&domain::Email::parse("nobody@example.com").expect("valid"))
            .expect("lookup");
        assert!(missing.is_none());
    }

    #[test]
    fn a_second_account_for_an_email_is_refused_by_the_database() {
        let db = database();
        let users = SqliteUsers(&db);
        users.insert(&new_user("ada@example.com")).expect("first");
        let second = users.insert(&new_user("ADA@example.com"));
        assert!(
            matches!(second, Err(InsertUserError::EmailTaken)),
            "{second:?}"
        );
    }

    #[test]
    fn a_storage_failure_is_an_error_not_a_taken_email() {
        let db = NativeDatabase::open_in_memory().expect("database without the schema");
        let inserted = SqliteUsers(&db).insert(&new_user("ada@example.com"));
        assert!(
            matches!(inserted, Err(InsertUserError::Other(_))),
            "{inserted:?}"
        );
    }

    const NOW: u64 = 1_750_000_000;
    const WINDOW: u64 = 900;

    fn count_rows(db: &NativeDatabase) -> i64 {
        db.execute("SELECT count(*) AS n FROM attempt_windows", &[])
            .expect("count")
            .first()
            .expect("a row")
            .integer("n")
            .expect("n")
    }

    #[test]
    fn a_window_opens_at_the_first_attempt_counts_against_its_start_and_ends_window_secs_later() {
        let db = database();
        let attempts = SqliteAttempts(&db);
        let first = attempts.hit("a", WINDOW, NOW).expect("hit");
        assert_eq!((first.count, first.window_ends_at), (1, NOW + WINDOW));
        let second = attempts.hit("a", WINDOW, NOW + 100).expect("hit");
        assert_eq!((second.count, second.window_ends_at), (2, NOW + WINDOW));
        assert_eq!(attempts.hit("b", WINDOW, NOW + 100).expect("hit").count, 1);
        let last = attempts.hit("a", WINDOW, NOW + WINDOW - 1).expect("hit");
        assert_eq!(last.count, 3);
        // Ended: a new window from this attempt.
        let fresh = attempts.hit("a", WINDOW, NOW + WINDOW).expect("hit");
        assert_eq!((fresh.count, fresh.window_ends_at), (1, NOW + 2 * WINDOW));
    }

    /// The race a read-then-write counter loses: eight connections (as eight instances) hitting
    /// one key at once each see a different count, and none is lost.
    #[test]
    fn parallel_hits_on_one_key_are_each_counted_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.db");
        storage::migrate(&NativeDatabase::open(&path).expect("db"), crate::MIGRATIONS)
            .expect("migrations");
        let mut counts: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = &path;
                    scope.spawn(move || {
                        let db = NativeDatabase::open(path).expect("a connection");
                        (0..25)
                            .map(|_| {
                                SqliteAttempts(&db)
                                    .hit("addr", WINDOW, NOW)
                                    .expect("hit")
                                    .count
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().expect("thread"))
                .collect()
        });
        counts.sort_unstable();
        assert_eq!(counts, (1..=200).collect::<Vec<u32>>());
    }

    /// Keys a guesser makes up (a new email per attempt) go once their window has ended.
    #[test]
    fn ended_windows_are_removed_as_attempts_go_by() {
        let db = database();
        let attempts = SqliteAttempts(&db);
        for n in 0..50 {
            attempts
                .hit(&format!("signin:email:guess{n}@example.com"), WINDOW, NOW)
                .expect("hit");
        }
        assert_eq!(count_rows(&db), 50);
        for n in 0..3 {
            attempts
                .hit(
                    &format!("signin:email:later{n}@example.com"),
                    WINDOW,
                    NOW + WINDOW,
                )
                .expect("hit");
        }
        assert_eq!(count_rows(&db), 3);
    }
}
