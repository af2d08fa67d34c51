//! Exchange API secrets encrypted at rest (AES-256-GCM).
//!
//! An exchange API key and its secret ([`Credentials`]) are stored in a small file sealed with
//! AES-256-GCM under a 32-byte [`SecretsKey`] that never lives next to it: the key comes from
//! the environment variable [`KEY_ENV_VAR`] (64 hex characters) or from a key file readable by
//! its owner only ([`SecretsKey::from_file`]).
//!
//! ```
//! use aaiti_gateway::secrets::{self, Credentials, SecretsKey};
//!
//! let key = SecretsKey::from_bytes([7; 32]);
//! let credentials = Credentials::new("vmPUZE6mv9SD5VNH", "NhqPtmdSJYdKjVHj")?;
//! let sealed = secrets::seal(&key, &credentials)?;
//! let opened = secrets::open(&key, &sealed)?;
//! assert_eq!(opened.api_key(), "vmPUZE6mv9SD5VNH");
//! // Debug output never shows the secret, and at most four characters of the key.
//! assert_eq!(format!("{opened:?}"), r#"Credentials { api_key: "vmPU…", secret: <redacted> }"#);
//! # Ok::<(), secrets::SecretsError>(())
//! ```
//!
//! # File format (version 1)
//!
//! All integers are big-endian.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `AAITISEC` (`41 41 49 54 49 53 45 43`) |
//! | 8 | 1 | format version, `1` |
//! | 9 | 4 | key check: the first 4 bytes of HMAC-SHA256(key, `"aaiti secrets key check v1"`) |
//! | 13 | 12 | nonce: 12 random bytes from the operating system, new for every seal |
//! | 25 | n + 16 | AES-256-GCM ciphertext of the n plaintext bytes, then the 16-byte tag |
//!
//! The associated data of the AEAD is bytes 0..13 (magic, version, key check), so changing
//! any header byte also fails authentication. The key check tells a wrong key
//! ([`SecretsError::WrongKey`]) from a damaged file ([`SecretsError::Tampered`]); 32 bits of
//! an HMAC output reveal nothing useful about a random 256-bit key.
//!
//! The plaintext (n bytes):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 2 | `k`, length of the API key |
//! | 2 | k | API key (printable ASCII) |
//! | 2 + k | 2 | `s`, length of the secret |
//! | 4 + k | s | secret (printable ASCII) |
//!
//! Nothing may follow the secret. Every buffer that holds plaintext is zeroized when dropped
//! ([`zeroize`]), and so are the key and the credentials.

use std::{fmt, io::Write, path::Path};

use aes_gcm::{
    Aes256Gcm,
    aead::{Aead, Generate, KeyInit, Nonce, Payload},
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// The environment variable holding the secrets key as 64 hex characters.
pub const KEY_ENV_VAR: &str = "AAITI_SECRETS_KEY";

/// File magic, bytes 0..8.
pub const MAGIC: &[u8; 8] = b"AAITISEC";
/// The format version written, byte 8.
pub const VERSION: u8 = 1;

const KEY_CHECK_LABEL: &[u8] = b"aaiti secrets key check v1";
const KEY_CHECK_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext: magic, version, key check, nonce.
const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_CHECK_LEN + NONCE_LEN;
/// Bytes covered as associated data: magic, version, key check.
const AAD_LEN: usize = MAGIC.len() + 1 + KEY_CHECK_LEN;
/// The smallest plaintext: two lengths and one byte each.
const MIN_PLAINTEXT: usize = 2 + 1 + 2 + 1;
/// The smallest valid file.
pub const MIN_FILE_LEN: usize = HEADER_LEN + MIN_PLAINTEXT + TAG_LEN;
/// Longest API key or secret accepted (Binance keys are 64 characters).
pub const MAX_FIELD_LEN: usize = 1024;

/// Why secrets cannot be sealed, opened, or their key loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The key environment variable is not set.
    #[error(
        "environment variable {0} is not set (it must hold the secrets key as 64 hex characters)"
    )]
    KeyMissing(&'static str),
    /// The key text is not 64 hex characters (or a key file not 32 raw bytes).
    #[error("secrets key is malformed: {0}")]
    KeyFormat(&'static str),
    /// The key file can be read by its group or by others.
    #[error(
        "secrets key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    KeyFileInsecure {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is shorter than the smallest valid file.
    #[error("secrets file is truncated: {len} bytes, at least {min} expected")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The file does not start with [`MAGIC`].
    #[error("not an AAITI secrets file (bad magic)")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("secrets file version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u8),
    /// The key check does not match: the file was sealed under another key.
    #[error("the secrets file was sealed with a different key")]
    WrongKey,
    /// Authentication failed with the right key: the file was modified or damaged.
    #[error("the secrets file failed authentication: it was modified or damaged")]
    Tampered,
    /// The decrypted content is not two length-prefixed fields.
    #[error("the secrets file content is malformed: {0}")]
    Malformed(&'static str),
    /// An API key or secret is empty, too long, or not printable ASCII.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(&'static str),
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed: {0}")]
    Random(String),
    /// The cipher refused the input (cannot happen for inputs within [`MAX_FIELD_LEN`]).
    #[error("encryption failed")]
    Encrypt,
}

/// A 32-byte AES-256 key for the secrets file. Zeroized on drop; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretsKey(Zeroizing<[u8; 32]>);

impl SecretsKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, SecretsError> {
        let bytes = <[u8; 32]>::try_generate().map_err(|e| SecretsError::Random(e.to_string()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Parses 64 hex characters (surrounding ASCII whitespace is ignored).
    pub fn from_hex(text: &str) -> Result<Self, SecretsError> {
        let text = text.trim_ascii();
        if text.len() != 64 {
            return Err(SecretsError::KeyFormat("expected 64 hex characters"));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, &mut bytes[..])
            .map_err(|_| SecretsError::KeyFormat("expected 64 hex characters"))?;
        Ok(Self(bytes))
    }

    /// Reads the key from the environment variable `name` (64 hex characters), e.g.
    /// [`KEY_ENV_VAR`].
    pub fn from_env(name: &'static str) -> Result<Self, SecretsError> {
        let value = Zeroizing::new(std::env::var(name).map_err(|e| match e {
            std::env::VarError::NotPresent => SecretsError::KeyMissing(name),
            std::env::VarError::NotUnicode(_) => {
                SecretsError::KeyFormat("the environment variable is not valid text")
            }
        })?);
        Self::from_hex(&value)
    }

    /// Reads the key from a file holding 32 raw bytes or 64 hex characters (a trailing
    /// newline is fine). On unix the file must not be readable, writable or executable by
    /// group or others ([`SecretsError::KeyFileInsecure`]).
    pub fn from_file(path: &Path) -> Result<Self, SecretsError> {
        let io = |source| SecretsError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretsError::KeyFileInsecure {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        let mut content = Zeroizing::new(Vec::with_capacity(66));
        // Read at most a little more than the longest valid content: a huge file is not a key.
        std::io::Read::read_to_end(&mut std::io::Read::take(file, 130), &mut content)
            .map_err(io)?;
        if content.len() == 32 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            bytes.copy_from_slice(&content);
            return Ok(Self(bytes));
        }
        let text = std::str::from_utf8(&content)
            .map_err(|_| SecretsError::KeyFormat("expected 32 raw bytes or 64 hex characters"))?;
        Self::from_hex(text)
    }

    /// Writes the key to a new file as 64 hex characters and a newline, readable by its
    /// owner only (mode 0600 on unix), for [`SecretsKey::from_file`]. Refuses to replace an
    /// existing file: overwriting a key would make every file sealed with it unreadable.
    pub fn write_new_file(&self, path: &Path) -> Result<(), SecretsError> {
        let io = |source| SecretsError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        let mut text = Zeroizing::new(hex::encode(&self.0[..]));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The first [`KEY_CHECK_LEN`] bytes of HMAC-SHA256(key, label).
    fn check(&self) -> [u8; KEY_CHECK_LEN] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0[..]).unwrap_or_else(|_| unreachable_hmac_key());
        mac.update(KEY_CHECK_LABEL);
        let digest = mac.finalize().into_bytes();
        let mut check = [0u8; KEY_CHECK_LEN];
        check.copy_from_slice(&digest[..KEY_CHECK_LEN]);
        check
    }
}

/// HMAC takes keys of any length; this exists only to satisfy the `Result` type.
#[cold]
fn unreachable_hmac_key() -> Hmac<Sha256> {
    // An empty key is also valid; this branch never runs.
    <Hmac<Sha256> as KeyInit>::new(&Default::default())
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

/// An exchange API key and its secret. Zeroized on drop; `Debug` prints at most the first
/// four characters of the API key and never the secret. (`==` is for tests and tools; it
/// does not run in constant time.)
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    api_key: Zeroizing<String>,
    secret: Zeroizing<String>,
}

impl Credentials {
    /// Validates and stores an API key and secret: each 1..=[`MAX_FIELD_LEN`] bytes of
    /// printable ASCII (they travel in HTTP headers and signed strings, where anything else
    /// would be an injection risk).
    pub fn new(api_key: &str, secret: &str) -> Result<Self, SecretsError> {
        check_field(api_key, Field::ApiKey)?;
        check_field(secret, Field::Secret)?;
        Ok(Self {
            api_key: Zeroizing::new(api_key.to_owned()),
            secret: Zeroizing::new(secret.to_owned()),
        })
    }

    /// The API key (sent in clear to the exchange; still sensitive: do not log it).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The secret, for signing inside this crate only.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

/// Which field of the credentials is checked (for the error text).
#[derive(Clone, Copy)]
enum Field {
    ApiKey,
    Secret,
}

fn check_field(text: &str, field: Field) -> Result<(), SecretsError> {
    let problem = if text.is_empty() {
        Some(["the API key is empty", "the secret is empty"])
    } else if text.len() > MAX_FIELD_LEN {
        Some([
            "the API key is longer than 1024 bytes",
            "the secret is longer than 1024 bytes",
        ])
    } else if !text.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Some([
            "the API key has a byte outside printable ASCII",
            "the secret has a byte outside printable ASCII",
        ])
    } else {
        None
    };
    match problem {
        Some([api_key, secret]) => Err(SecretsError::InvalidCredentials(match field {
            Field::ApiKey => api_key,
            Field::Secret => secret,
        })),
        None => Ok(()),
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // At most 4 characters and at most half of the key. Keys are ASCII (checked in
        // `new`), so any byte index is a char boundary.
        let shown = self
            .api_key
            .get(..(self.api_key.len() / 2).min(4))
            .unwrap_or("");
        f.write_str("Credentials { api_key: \"")?;
        f.write_str(shown)?;
        f.write_str("…\", secret: <redacted> }")
    }
}

/// Encrypts `credentials` under `key` into the format described in the [module
/// documentation](self), with a fresh random nonce.
pub fn seal(key: &SecretsKey, credentials: &Credentials) -> Result<Vec<u8>, SecretsError> {
    // Credentials built through `new` always pass; checked again because the lengths are
    // written as u16.
    check_field(&credentials.api_key, Field::ApiKey)?;
    check_field(&credentials.secret, Field::Secret)?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(
        4 + credentials.api_key.len() + credentials.secret.len(),
    ));
    for field in [
        credentials.api_key.as_bytes(),
        credentials.secret.as_bytes(),
    ] {
        plaintext.extend_from_slice(&(field.len() as u16).to_be_bytes());
        plaintext.extend_from_slice(field);
    }
    let nonce_bytes =
        <[u8; NONCE_LEN]>::try_generate().map_err(|e| SecretsError::Random(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&key.check());
    out.extend_from_slice(&nonce_bytes);
    let cipher = Aes256Gcm::new(&(*key.0).into());
    let nonce = Nonce::<Aes256Gcm>::from(nonce_bytes);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &plaintext,
                aad: &out[..AAD_LEN],
            },
        )
        .map_err(|_| SecretsError::Encrypt)?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decrypts and authenticates a sealed file's bytes.
///
/// # Errors
///
/// [`SecretsError::Truncated`], [`SecretsError::BadMagic`],
/// [`SecretsError::UnsupportedVersion`], [`SecretsError::WrongKey`],
/// [`SecretsError::Tampered`] or [`SecretsError::Malformed`], checked in that order.
pub fn open(key: &SecretsKey, bytes: &[u8]) -> Result<Credentials, SecretsError> {
    if bytes.len() >= MAGIC.len() && &bytes[..MAGIC.len()] != MAGIC {
        return Err(SecretsError::BadMagic);
    }
    if bytes.len() < MIN_FILE_LEN {
        return Err(SecretsError::Truncated {
            len: bytes.len(),
            min: MIN_FILE_LEN,
        });
    }
    let version = bytes[MAGIC.len()];
    if version != VERSION {
        return Err(SecretsError::UnsupportedVersion(version));
    }
    if bytes[MAGIC.len() + 1..AAD_LEN] != key.check() {
        return Err(SecretsError::WrongKey);
    }
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(&bytes[AAD_LEN..HEADER_LEN]);
    let cipher = Aes256Gcm::new(&(*key.0).into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                &Nonce::<Aes256Gcm>::from(nonce_bytes),
                Payload {
                    msg: &bytes[HEADER_LEN..],
                    aad: &bytes[..AAD_LEN],
                },
            )
            .map_err(|_| SecretsError::Tampered)?,
    );
    let (api_key, rest) = take_field(&plaintext)?;
    let (secret, rest) = take_field(rest)?;
    if !rest.is_empty() {
        return Err(SecretsError::Malformed("bytes after the secret"));
    }
    let api_key = std::str::from_utf8(api_key)
        .map_err(|_| SecretsError::Malformed("the API key is not text"))?;
    let secret = std::str::from_utf8(secret)
        .map_err(|_| SecretsError::Malformed("the secret is not text"))?;
    Credentials::new(api_key, secret)
}

fn take_field(bytes: &[u8]) -> Result<(&[u8], &[u8]), SecretsError> {
    let Some((len, rest)) = bytes.split_first_chunk::<2>() else {
        return Err(SecretsError::Malformed("a length prefix is cut short"));
    };
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(SecretsError::Malformed("a field is cut short"));
    }
    Ok(rest.split_at(len))
}

/// Seals `credentials` and writes them to `path`, created (or replaced) with mode 0600 on
/// unix. The file is written next to `path` under a temporary name and renamed over it, so a
/// crash leaves either the old file or the new one.
pub fn save(path: &Path, key: &SecretsKey, credentials: &Credentials) -> Result<(), SecretsError> {
    let sealed = seal(key, credentials)?;
    let io = |source| SecretsError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(io)?;
    file.write_all(&sealed).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(io)
}

/// Reads and opens a file written by [`save`].
pub fn load(path: &Path, key: &SecretsKey) -> Result<Credentials, SecretsError> {
    let mut bytes = std::fs::read(path).map_err(|source| SecretsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let result = open(key, &bytes);
    // The file is ciphertext, but nothing is lost by not leaving it around.
    bytes.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_documented_offsets() {
        let key = SecretsKey::from_bytes([1; 32]);
        let credentials = Credentials::new("abcdef", "s3cr3t").unwrap();
        let sealed = seal(&key, &credentials).unwrap();
        assert_eq!(&sealed[..8], b"AAITISEC");
        assert_eq!(sealed[8], 1);
        assert_eq!(sealed[9..13], key.check());
        // plaintext = 2 + 6 + 2 + 6 bytes
        assert_eq!(sealed.len(), 25 + 16 + 16);
        assert_eq!(MIN_FILE_LEN, 25 + 6 + 16);
        // Two seals of the same content differ (fresh nonce).
        let again = seal(&key, &credentials).unwrap();
        assert_ne!(sealed[13..25], again[13..25]);
        assert_ne!(sealed[25..], again[25..]);
    }

    #[test]
    fn key_parsing() {
        let hex_key = "00".repeat(31) + "ff";
        assert!(SecretsKey::from_hex(&hex_key).is_ok());
        assert!(SecretsKey::from_hex(&format!(" {hex_key}\n")).is_ok());
        assert!(matches!(
            SecretsKey::from_hex(&hex_key[..62]),
            Err(SecretsError::KeyFormat(_))
        ));
        assert!(matches!(
            SecretsKey::from_hex(&("zz".to_owned() + &hex_key[2..])),
            Err(SecretsError::KeyFormat(_))
        ));
        assert_eq!(
            format!("{:?}", SecretsKey::from_hex(&hex_key).unwrap()),
            "SecretsKey(<redacted>)"
        );
    }

    #[test]
    fn credentials_are_validated() {
        assert!(matches!(
            Credentials::new("", "x"),
            Err(SecretsError::InvalidCredentials(_))
        ));
        assert!(matches!(
            Credentials::new("key", "se cret"),
            Err(SecretsError::InvalidCredentials(_))
        ));
        assert!(matches!(
            Credentials::new("key\r\nX-Evil: 1", "secret"),
            Err(SecretsError::InvalidCredentials(_))
        ));
        let short = Credentials::new("ab", "secret").unwrap();
        assert_eq!(
            format!("{short:?}"),
            r#"Credentials { api_key: "a…", secret: <redacted> }"#
        );
    }
}
