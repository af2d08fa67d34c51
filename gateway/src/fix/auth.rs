//! Logon authentication: argon2 password hashes, failed-logon accounting and slow-down.
//!
//! A session authenticates with [`Auth::None`] (the CompID pair is enough: for a private
//! line) or [`Auth::Password`]: the Logon (35=A) must carry Username (553) equal to the
//! configured name and Password (554) matching the configured argon2 hash. Configuration
//! holds only the hash, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`),
//! made by [`hash_password`] (the `aaiti` command that prints it for the config calls it).
//!
//! # Cost and where it runs
//!
//! [`hash_password`] uses argon2id, version 19, m = 19456 KiB, t = 2, p = 1 (the OWASP
//! minimum for argon2id) with a random 16-byte salt. Verification uses the parameters
//! written in the hash, so stronger hashes made elsewhere also verify. One verification
//! costs about 20 ms to 50 ms of CPU and 19 MiB of memory, and **it runs on the acceptor's
//! event loop**: while it runs, other sessions on that loop wait. This is bounded: argon2
//! runs only for a Logon whose CompID pair names a configured password session that is not
//! already logged on (anything else is refused first), each connection gets one Logon, and a
//! failed one keeps its connection (one of `max_connections`) for the failure delay below.
//!
//! # Failures
//!
//! [`FailedLogons`] counts consecutive authentication failures per session (their CompID);
//! the answer to the n-th failure (Logout with a text, then disconnect) is held back
//! 250 ms × 2^(n-1), at most 10 s, by the acceptor's timers (no thread sleeps, other
//! sessions go on). A successful logon clears the count. Passwords are never logged or kept
//! beyond the verification call.

use std::fmt;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};

/// How a session's Logon is authenticated. In TOML:
///
/// ```toml
/// auth = { type = "none" }
/// auth = { type = "password", username = "desk1", hash = "$argon2id$v=19$m=19456,t=2,p=1$..." }
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No credentials: the CompID pair identifies the peer (Username and Password, if
    /// sent, are ignored).
    None,
    /// Username (553) and Password (554) required.
    Password {
        /// Expected Username (553), compared exactly.
        username: String,
        /// Argon2 PHC string of the password.
        hash: String,
    },
}

impl fmt::Debug for Auth {
    /// Shows the username only: a hash is not a secret, but it need not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// Why authentication failed or a hash could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Username (553) or Password (554) missing from a Logon that needs them.
    #[error("username or password missing")]
    MissingCredentials,
    /// Wrong username or password (deliberately not saying which).
    #[error("invalid username or password")]
    BadCredentials,
    /// The configured hash is not an argon2 PHC string.
    #[error("password hash is not an argon2 PHC string ($argon2id$v=19$...): {0}")]
    InvalidHash(String),
    /// Hashing failed (random salt or parameters).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl Auth {
    /// Checks that a configured hash is a well-formed argon2 PHC string (at configuration
    /// time, so that a typo is not found at the first logon).
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidHash`].
    pub fn validate(&self) -> Result<(), AuthError> {
        match self {
            Self::None => Ok(()),
            Self::Password { hash, .. } => parse_hash(hash).map(drop),
        }
    }

    /// Checks a Logon's Username (553) and Password (554). For [`Auth::Password`] this runs
    /// argon2 (see the [module documentation](self) for the cost) even when the username is
    /// wrong, so that the time taken does not tell which was wrong.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingCredentials`], [`AuthError::BadCredentials`], or
    /// [`AuthError::InvalidHash`] for a configured hash that does not parse.
    pub fn verify(
        &self,
        username: Option<&[u8]>,
        password: Option<&[u8]>,
    ) -> Result<(), AuthError> {
        let Self::Password {
            username: expected,
            hash,
        } = self
        else {
            return Ok(());
        };
        let (Some(username), Some(password)) = (username, password) else {
            return Err(AuthError::MissingCredentials);
        };
        let hash = parse_hash(hash)?;
        let password_ok = Argon2::default().verify_password(password, &hash).is_ok();
        if password_ok && username == expected.as_bytes() {
            Ok(())
        } else {
            Err(AuthError::BadCredentials)
        }
    }
}

fn parse_hash(hash: &str) -> Result<PasswordHash, AuthError> {
    let parsed = PasswordHash::new(hash).map_err(|e| AuthError::InvalidHash(e.to_string()))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(AuthError::InvalidHash(format!(
            "algorithm {} is not argon2",
            parsed.algorithm
        )));
    }
    Ok(parsed)
}

/// Hashes a password for [`Auth::Password`]: argon2id v19, m = 19456 KiB, t = 2, p = 1,
/// random salt; returns the PHC string to paste into the configuration.
///
/// # Errors
///
/// [`AuthError::Hashing`] if the system random source fails.
pub fn hash_password(password: &[u8]) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Consecutive authentication failures per session, and how long to hold back the answer
/// to the next one (see the [module documentation](self)).
#[derive(Clone, Debug)]
pub struct FailedLogons {
    counts: Vec<u32>,
}

impl FailedLogons {
    /// Delay after the first failure.
    pub const FIRST_DELAY: Duration = Duration::from_millis(250);
    /// Longest delay.
    pub const MAX_DELAY: Duration = Duration::from_secs(10);

    /// Counters for `sessions` sessions (indexed 0..sessions).
    pub fn new(sessions: usize) -> Self {
        Self {
            counts: vec![0; sessions],
        }
    }

    /// Counts a failure of `session` and returns how long to delay its answer.
    pub fn failure(&mut self, session: usize) -> Duration {
        let Some(count) = self.counts.get_mut(session) else {
            return Self::FIRST_DELAY;
        };
        *count = count.saturating_add(1);
        let doublings = (*count - 1).min(16);
        Self::FIRST_DELAY
            .saturating_mul(1_u32 << doublings)
            .min(Self::MAX_DELAY)
    }

    /// A successful logon of `session`: its count starts again.
    pub fn success(&mut self, session: usize) {
        if let Some(count) = self.counts.get_mut(session) {
            *count = 0;
        }
    }

    /// Consecutive failures of `session` so far.
    pub fn count(&self, session: usize) -> u32 {
        self.counts.get(session).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_rejects() {
        let hash = hash_password(b"correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let auth = Auth::Password {
            username: "desk".into(),
            hash,
        };
        auth.validate().unwrap();
        assert_eq!(auth.verify(Some(b"desk"), Some(b"correct horse")), Ok(()));
        assert_eq!(
            auth.verify(Some(b"desk"), Some(b"wrong")),
            Err(AuthError::BadCredentials)
        );
        assert_eq!(
            auth.verify(Some(b"other"), Some(b"correct horse")),
            Err(AuthError::BadCredentials)
        );
        assert_eq!(
            auth.verify(Some(b"desk"), None),
            Err(AuthError::MissingCredentials)
        );
        assert_eq!(Auth::None.verify(None, None), Ok(()));
        assert!(!format!("{auth:?}").contains("argon2"));
    }

    #[test]
    fn invalid_hashes_are_refused_at_configuration() {
        for bad in ["plain", "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA", ""] {
            let auth = Auth::Password {
                username: "u".into(),
                hash: bad.into(),
            };
            assert!(
                matches!(auth.validate(), Err(AuthError::InvalidHash(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn failure_delays_double_up_to_the_cap() {
        let mut failed = FailedLogons::new(2);
        let delays: Vec<u64> = (0..8)
            .map(|_| failed.failure(0).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]
        );
        assert_eq!(failed.count(0), 8);
        assert_eq!(failed.count(1), 0);
        failed.success(0);
        assert_eq!(failed.failure(0), FailedLogons::FIRST_DELAY);
    }

    #[test]
    fn auth_parses_from_toml() {
        #[derive(Deserialize)]
        struct Wrap {
            auth: Auth,
        }
        let none: Wrap = toml::from_str("auth = { type = \"none\" }").unwrap();
        assert_eq!(none.auth, Auth::None);
        let password: Wrap =
            toml::from_str("auth = { type = \"password\", username = \"u\", hash = \"h\" }")
                .unwrap();
        assert_eq!(
            password.auth,
            Auth::Password {
                username: "u".into(),
                hash: "h".into()
            }
        );
        assert!(
            toml::from_str::<Wrap>(
                "auth = { type = \"password\", username = \"u\", hash = \"h\", x = 1 }"
            )
            .is_err()
        );
    }
}
