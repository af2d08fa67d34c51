//! Dense id newtypes. Strings (symbols, CompIDs) are resolved to these at the edges; the hot
//! path indexes arrays with them.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(
            Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable,
            Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The id as an array index.
            #[inline]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

dense_id!(
    /// A trading venue (exchange or the paper venue), dense from 0 in configuration order.
    VenueId(u16)
);
dense_id!(
    /// An instrument on one venue, dense from 0 in registry order.
    InstrumentId(u32)
);
dense_id!(
    /// A trading account, dense from 0 in configuration order.
    AccountId(u32)
);
dense_id!(
    /// An engine-assigned order id, unique for the life of a journal; 0 means "none".
    OrderId(u64)
);
dense_id!(
    /// A producer of records (a feed connection, a FIX session, the engine's output...).
    /// Each stream numbers its records 1, 2, 3... without gaps.
    StreamId(u16)
);

/// A client order id (FIX ClOrdID, tag 11) stored inline: up to 40 printable ASCII bytes,
/// zero-padded. Inline storage keeps order records `Pod` and fixed-size.
#[repr(transparent)]
#[derive(Copy, Clone, Eq, Pod, Zeroable)]
pub struct ClientOrderId(pub [u8; ClientOrderId::CAPACITY]);

impl std::hash::Hash for ClientOrderId {
    /// The bytes, as the equality compares them.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for ClientOrderId {
    /// Byte equality, as five 8-byte words: the engine compares ids in every order lookup,
    /// and the derived comparison of a 40-byte array is a call to `memcmp`.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let mut difference = 0;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let mut left = [0; 8];
            let mut right = [0; 8];
            left.copy_from_slice(a);
            right.copy_from_slice(b);
            difference |= u64::from_ne_bytes(left) ^ u64::from_ne_bytes(right);
        }
        difference == 0
    }
}

// The word-wise comparison above covers every byte only if the capacity is whole words.
const _: () = assert!(ClientOrderId::CAPACITY.is_multiple_of(8));

/// Why a byte string cannot be a [`ClientOrderId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientOrderIdError {
    /// Empty id.
    #[error("client order id is empty")]
    Empty,
    /// Longer than [`ClientOrderId::CAPACITY`].
    #[error("client order id is {len} bytes; at most {max} are supported", max = ClientOrderId::CAPACITY)]
    TooLong {
        /// Length given.
        len: usize,
    },
    /// A byte outside printable ASCII (0x21..=0x7e).
    #[error("client order id has byte 0x{byte:02x} at {position}; only printable ASCII is allowed")]
    InvalidByte {
        /// Offending byte.
        byte: u8,
        /// Its position.
        position: usize,
    },
}

impl ClientOrderId {
    /// Maximum length in bytes.
    pub const CAPACITY: usize = 40;
    /// The empty id ("none").
    pub const NONE: Self = Self([0; Self::CAPACITY]);

    /// Validates and copies `bytes`.
    pub fn new(bytes: &[u8]) -> Result<Self, ClientOrderIdError> {
        if bytes.is_empty() {
            return Err(ClientOrderIdError::Empty);
        }
        if bytes.len() > Self::CAPACITY {
            return Err(ClientOrderIdError::TooLong { len: bytes.len() });
        }
        if let Some(position) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
            return Err(ClientOrderIdError::InvalidByte {
                byte: bytes[position],
                position,
            });
        }
        let mut id = Self::NONE;
        id.0[..bytes.len()].copy_from_slice(bytes);
        Ok(id)
    }

    /// The id's bytes without padding.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(Self::CAPACITY);
        &self.0[..len]
    }

    /// The id as text (always ASCII when built through [`ClientOrderId::new`]).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("<non-ascii>")
    }

    /// True for [`ClientOrderId::NONE`].
    pub fn is_none(&self) -> bool {
        self.0[0] == 0
    }
}

impl Default for ClientOrderId {
    fn default() -> Self {
        Self::NONE
    }
}

impl std::fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientOrderId({:?})", self.as_str())
    }
}

impl std::fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its bytes without padding (snapshots, JSON); deserializing validates.
impl Serialize for ClientOrderId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for ClientOrderId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ClientOrderId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a client order id (0..=40 printable ASCII bytes)")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ClientOrderId, E> {
                if bytes.is_empty() {
                    return Ok(ClientOrderId::NONE);
                }
                ClientOrderId::new(bytes).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ClientOrderId, E> {
                self.visit_bytes(text.as_bytes())
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_order_id_validates() {
        let id = ClientOrderId::new(b"ORD-1700000000-42").unwrap();
        assert_eq!(id.as_str(), "ORD-1700000000-42");
        assert_eq!(ClientOrderId::new(b""), Err(ClientOrderIdError::Empty));
        assert_eq!(
            ClientOrderId::new(&[b'a'; 41]),
            Err(ClientOrderIdError::TooLong { len: 41 })
        );
        assert_eq!(
            ClientOrderId::new(b"a b"),
            Err(ClientOrderIdError::InvalidByte {
                byte: b' ',
                position: 1
            })
        );
        let full = ClientOrderId::new(&[b'z'; 40]).unwrap();
        assert_eq!(full.as_bytes().len(), 40);
        assert!(ClientOrderId::NONE.is_none());
    }

    #[test]
    fn client_order_ids_differing_in_any_byte_are_unequal() {
        let base = ClientOrderId::new(&[b'a'; 40]).unwrap();
        assert_eq!(base, ClientOrderId::new(&[b'a'; 40]).unwrap());
        for position in 0..ClientOrderId::CAPACITY {
            let mut other = base;
            other.0[position] = b'b';
            assert_ne!(base, other, "byte {position}");
        }
        assert_ne!(
            ClientOrderId::new(b"abc").unwrap(),
            ClientOrderId::new(b"abcd").unwrap()
        );
    }
}
