//! The users table over the [`storage::Database`] port (schema in `migrations/auth/`,
//! [`MIGRATIONS`](crate::MIGRATIONS)), as the [`UserStore`] the service uses.

use anyhow::Context;
use storage::{Database, SqlValue};

use crate::{InsertUserError, NewUser, StoredUser, UserStore};

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
}
