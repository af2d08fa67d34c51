//! Logon authentication: argon2 password hashes, failed-logon accounting and slow-down.
