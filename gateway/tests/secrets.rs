#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! API secrets at rest: round trip, wrong key, tampering of every region of the file,
//! truncation, key files, and the redacted `Debug`.

use std::path::PathBuf;

use aaiti_gateway::secrets::{self, Credentials, MIN_FILE_LEN, SecretsError, SecretsKey};

const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

fn key(byte: u8) -> SecretsKey {
    SecretsKey::from_bytes([byte; 32])
}

fn credentials() -> Credentials {
    Credentials::new(API_KEY, SECRET).unwrap()
}

/// A fresh scratch directory under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-secrets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn round_trip() {
    let sealed = secrets::seal(&key(1), &credentials()).unwrap();
    // Nothing of the plaintext is visible in the file.
    let text = String::from_utf8_lossy(&sealed);
    assert!(!text.contains(SECRET) && !text.contains(API_KEY));
    assert!(!sealed.windows(8).any(|w| w == &SECRET.as_bytes()[..8]));
    let opened = secrets::open(&key(1), &sealed).unwrap();
    assert_eq!(opened, credentials());
    assert_eq!(opened.api_key(), API_KEY);
}

#[test]
fn wrong_key_is_named() {
    let sealed = secrets::seal(&key(1), &credentials()).unwrap();
    assert!(matches!(
        secrets::open(&key(2), &sealed),
        Err(SecretsError::WrongKey)
    ));
}

#[test]
fn tampering_with_each_region_is_detected() {
    let sealed = secrets::seal(&key(1), &credentials()).unwrap();
    let len = sealed.len();
    // (region, byte offset, expected error)
    type Expected = fn(&SecretsError) -> bool;
    let cases: [(&str, usize, Expected); 7] = [
        ("magic", 0, |e| matches!(e, SecretsError::BadMagic)),
        ("version", 8, |e| {
            matches!(e, SecretsError::UnsupportedVersion(_))
        }),
        ("key check", 10, |e| matches!(e, SecretsError::WrongKey)),
        ("nonce", 13, |e| matches!(e, SecretsError::Tampered)),
        ("nonce end", 24, |e| matches!(e, SecretsError::Tampered)),
        ("ciphertext", 30, |e| matches!(e, SecretsError::Tampered)),
        ("tag", len - 1, |e| matches!(e, SecretsError::Tampered)),
    ];
    for (region, offset, expected) in cases {
        for flip in [0x01u8, 0x80] {
            let mut bytes = sealed.clone();
            bytes[offset] ^= flip;
            let error = secrets::open(&key(1), &bytes).unwrap_err();
            assert!(expected(&error), "{region} at {offset}: got {error:?}");
        }
    }
    // Every single-bit change anywhere is refused.
    for offset in 0..len {
        let mut bytes = sealed.clone();
        bytes[offset] ^= 0x04;
        assert!(secrets::open(&key(1), &bytes).is_err(), "byte {offset}");
    }
    // Appending bytes is tampering too.
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        secrets::open(&key(1), &longer),
        Err(SecretsError::Tampered)
    ));
}

#[test]
fn truncation_is_detected() {
    let sealed = secrets::seal(&key(1), &credentials()).unwrap();
    for len in 0..sealed.len() {
        let error = secrets::open(&key(1), &sealed[..len]).unwrap_err();
        if len < MIN_FILE_LEN {
            assert!(
                matches!(error, SecretsError::Truncated { len: l, .. } if l == len),
                "{len}: {error:?}"
            );
        } else {
            assert!(matches!(error, SecretsError::Tampered), "{len}: {error:?}");
        }
    }
}

#[test]
fn debug_is_redacted() {
    let credentials = credentials();
    let shown = format!("{credentials:?}");
    assert_eq!(
        shown,
        r#"Credentials { api_key: "vmPU…", secret: <redacted> }"#
    );
    assert!(!shown.contains(&SECRET[..4]));
    let shown = format!("{:#?}", key(9));
    assert_eq!(shown, "SecretsKey(<redacted>)");
    let error = secrets::open(&key(2), &secrets::seal(&key(1), &credentials).unwrap())
        .unwrap_err()
        .to_string();
    assert!(!error.contains(SECRET) && !error.contains(API_KEY));
}

#[test]
fn files_and_key_files() {
    let dir = scratch("files");
    let path = dir.join("binance.sec");
    secrets::save(&path, &key(3), &credentials()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(secrets::load(&path, &key(3)).unwrap(), credentials());
    // Saving again replaces the file.
    let other = Credentials::new("otherkey", "othersecret").unwrap();
    secrets::save(&path, &key(3), &other).unwrap();
    assert_eq!(secrets::load(&path, &key(3)).unwrap(), other);
    assert!(matches!(
        secrets::load(&dir.join("missing.sec"), &key(3)),
        Err(SecretsError::Io { .. })
    ));

    // Key files: 64 hex characters (with a newline) or 32 raw bytes, owner-only.
    let hex_path = dir.join("key.hex");
    std::fs::write(&hex_path, format!("{}\n", "ab".repeat(32))).unwrap();
    let raw_path = dir.join("key.raw");
    std::fs::write(&raw_path, [0xab; 32]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&hex_path, &raw_path] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let from_hex = SecretsKey::from_file(&hex_path).unwrap();
    let from_raw = SecretsKey::from_file(&raw_path).unwrap();
    let sealed = secrets::seal(&from_hex, &credentials()).unwrap();
    assert_eq!(secrets::open(&from_raw, &sealed).unwrap(), credentials());
    assert_eq!(
        secrets::open(&SecretsKey::from_hex(&"ab".repeat(32)).unwrap(), &sealed).unwrap(),
        credentials()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hex_path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            SecretsKey::from_file(&hex_path),
            Err(SecretsError::KeyFileInsecure { mode: 0o640, .. })
        ));
    }
    let bad_path = dir.join("key.bad");
    std::fs::write(&bad_path, "not a key").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bad_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert!(matches!(
        SecretsKey::from_file(&bad_path),
        Err(SecretsError::KeyFormat(_))
    ));
    assert!(matches!(
        SecretsKey::from_env("AAITI_TEST_SECRETS_KEY_THAT_IS_NOT_SET"),
        Err(SecretsError::KeyMissing(_))
    ));
    // A generated key works and differs from another.
    let (a, b) = (
        SecretsKey::generate().unwrap(),
        SecretsKey::generate().unwrap(),
    );
    let sealed = secrets::seal(&a, &credentials()).unwrap();
    assert!(secrets::open(&a, &sealed).is_ok());
    assert!(matches!(
        secrets::open(&b, &sealed),
        Err(SecretsError::WrongKey)
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
