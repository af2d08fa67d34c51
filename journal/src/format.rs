//! The on-disk format: segment header and frame layout (specified in the crate docs), encoding
//! and the checks every reader runs on a frame before it hands the frame out.

use std::fmt;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"AAITIJNL";
/// Segment format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_SIZE: usize = 64;
/// Size of a frame's header (length word, CRC, sequence).
pub const FRAME_HEADER_SIZE: usize = 16;
/// Frames start and end on multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Largest frame body the 24-bit length field can describe.
pub const MAX_BODY_LEN: usize = (1 << 24) - 1;
/// Size of the header in front of a blob's data.
pub const BLOB_HEADER_SIZE: usize = 16;
/// Smallest segment size [`JournalConfig`](crate::JournalConfig) accepts.
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// Largest segment size [`JournalConfig`](crate::JournalConfig) accepts (1 TiB).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 40;

/// Frame type code of an [`Envelope`](aaiti_model::Envelope) frame.
pub(crate) const TYPE_ENVELOPE: u8 = 1;
/// Frame type code of a blob frame.
pub(crate) const TYPE_BLOB: u8 = 2;
/// The word that seals a segment: the writer moved on to the next segment.
pub(crate) const SEAL_WORD: u32 = 0xFF00_0000;

/// Offset of `first_seq` in the segment header (outside the header CRC).
pub(crate) const HEADER_FIRST_SEQ_OFFSET: usize = 56;
/// Bytes of the header the header CRC covers.
const HEADER_CRC_COVERS: usize = 44;

/// Envelope header size (see `aaiti_model::records`).
const ENVELOPE_HEADER_SIZE: usize = aaiti_model::records::HEADER_SIZE;
const ENVELOPE_MAX_BODY: usize = aaiti_model::records::ENVELOPE_SIZE;

const _: () = assert!(SEGMENT_HEADER_SIZE.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(FRAME_HEADER_SIZE + BLOB_HEADER_SIZE <= 32);
const _: () = assert!((MIN_SEGMENT_SIZE as usize) > SEGMENT_HEADER_SIZE + FRAME_HEADER_SIZE);

/// Rounds `len` up to the frame alignment.
#[inline]
pub(crate) const fn align_frame(len: usize) -> usize {
    (len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// The padded size of a frame with a body of `body_len` bytes.
#[inline]
pub(crate) const fn frame_len(body_len: usize) -> usize {
    align_frame(FRAME_HEADER_SIZE + body_len)
}

/// The length word of a frame.
#[inline]
pub(crate) const fn frame_word(frame_type: u8, body_len: usize) -> u32 {
    ((frame_type as u32) << 24) | (body_len as u32)
}

/// CRC-32C of a frame: over bytes `8..end` (sequence, body, padding), continued from the
/// length word (`crc32c_append(word, ..)`: the CRC register starts at `!word` instead of the
/// standard `!0`), so one pass covers the word too. A different word gives a different CRC
/// for the same bytes (the register's initial value propagates through an invertible map).
#[inline]
pub(crate) fn frame_crc(word: u32, seq_body_pad: &[u8]) -> u32 {
    crc32c::crc32c_append(word, seq_body_pad)
}

/// Reads a little-endian `u16` at `at` (the caller checked the bounds).
#[inline]
pub(crate) fn le_u16(bytes: &[u8], at: usize) -> u16 {
    let mut raw = [0; 2];
    raw.copy_from_slice(&bytes[at..at + 2]);
    u16::from_le_bytes(raw)
}

/// Reads a little-endian `u32` at `at` (the caller checked the bounds).
#[inline]
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

/// Reads a little-endian `u64` at `at` (the caller checked the bounds).
#[inline]
pub(crate) fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Why a frame is not valid. Carried by [`JournalError::CorruptFrame`](crate::JournalError)
/// and [`TornTail`](crate::TornTail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer than 4 bytes (a whole length word) are left before the end of the file, and they
    /// are not all zero.
    PartialWord {
        /// Bytes left.
        available: u64,
    },
    /// The length word names an unknown frame type or a body too short for its type.
    BadWord {
        /// The length word.
        word: u32,
    },
    /// The frame runs past the end of the file or segment.
    Truncated {
        /// Padded frame length the length word announces.
        frame_len: u64,
        /// Bytes left in the file or segment.
        available: u64,
    },
    /// The stored CRC does not match the frame's bytes.
    Crc {
        /// CRC in the frame.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The CRC is right but the sequence is not the next one.
    Sequence {
        /// Sequence the journal expects here.
        expected: u64,
        /// Sequence in the frame.
        found: u64,
    },
    /// The body is inconsistent with its type (an envelope's `payload_len` disagrees with the
    /// frame length, or a blob's reserved bytes are not zero).
    BadBody {
        /// What is wrong.
        reason: &'static str,
    },
    /// The end-of-data marker (a zero length word or a seal) is followed by non-zero bytes.
    DataAfterEnd {
        /// Offset of the first non-zero byte.
        first_nonzero: u64,
    },
}

impl fmt::Display for FrameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PartialWord { available } => {
                write!(
                    f,
                    "partial length word ({available} non-zero bytes before end of file)"
                )
            }
            Self::BadWord { word } => write!(f, "invalid length word {word:#010x}"),
            Self::Truncated {
                frame_len,
                available,
            } => {
                write!(
                    f,
                    "frame of {frame_len} bytes truncated ({available} bytes left)"
                )
            }
            Self::Crc { stored, computed } => {
                write!(
                    f,
                    "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::Sequence { expected, found } => {
                write!(f, "sequence {found} where {expected} was expected")
            }
            Self::BadBody { reason } => write!(f, "bad body: {reason}"),
            Self::DataAfterEnd { first_nonzero } => {
                write!(
                    f,
                    "non-zero bytes after the end of data (first at offset {first_nonzero})"
                )
            }
        }
    }
}

/// A frame header decoded from its length word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WordInfo {
    pub(crate) frame_type: u8,
    pub(crate) body_len: usize,
    pub(crate) frame_len: usize,
}

/// Decodes a non-zero, non-seal length word.
#[inline]
pub(crate) fn decode_word(word: u32) -> Result<WordInfo, FrameFault> {
    let frame_type = (word >> 24) as u8;
    let body_len = (word & 0x00FF_FFFF) as usize;
    let ok = match frame_type {
        TYPE_ENVELOPE => (ENVELOPE_HEADER_SIZE..=ENVELOPE_MAX_BODY).contains(&body_len),
        TYPE_BLOB => body_len >= BLOB_HEADER_SIZE,
        _ => false,
    };
    if !ok {
        return Err(FrameFault::BadWord { word });
    }
    Ok(WordInfo {
        frame_type,
        body_len,
        frame_len: frame_len(body_len),
    })
}

/// What a verified frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameMeta {
    pub(crate) seq: u64,
    pub(crate) info: WordInfo,
    pub(crate) ts_recv: u64,
}

/// Verifies a whole frame (`frame.len() == info.frame_len`): CRC, sequence, body structure.
#[inline]
pub(crate) fn verify_frame(
    frame: &[u8],
    word: u32,
    info: WordInfo,
    expected_seq: u64,
) -> Result<FrameMeta, FrameFault> {
    debug_assert_eq!(frame.len(), info.frame_len);
    let stored = le_u32(frame, 4);
    let computed = frame_crc(word, &frame[8..]);
    if stored != computed {
        return Err(FrameFault::Crc { stored, computed });
    }
    let seq = le_u64(frame, 8);
    if seq != expected_seq {
        return Err(FrameFault::Sequence {
            expected: expected_seq,
            found: seq,
        });
    }
    let body = &frame[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + info.body_len];
    let ts_recv = check_body(info.frame_type, body)?;
    Ok(FrameMeta { seq, info, ts_recv })
}

/// Checks the body's structure and returns its receive timestamp.
#[inline]
pub(crate) fn check_body(frame_type: u8, body: &[u8]) -> Result<u64, FrameFault> {
    if frame_type == TYPE_ENVELOPE {
        let payload_len = usize::from(le_u16(body, 28));
        if ENVELOPE_HEADER_SIZE + payload_len != body.len() {
            return Err(FrameFault::BadBody {
                reason: "envelope payload_len disagrees with the frame length",
            });
        }
        Ok(le_u64(body, 16))
    } else {
        if body[10..BLOB_HEADER_SIZE].iter().any(|&b| b != 0) {
            return Err(FrameFault::BadBody {
                reason: "blob reserved bytes are not zero",
            });
        }
        Ok(le_u64(body, 0))
    }
}

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) index: u64,
    pub(crate) capacity: u64,
    pub(crate) created_unix_ns: u64,
}

impl SegmentHeader {
    /// The 64 header bytes with `first_seq` (outside the CRC) set to `first_seq`.
    pub(crate) fn encode(&self, first_seq: u64) -> [u8; SEGMENT_HEADER_SIZE] {
        let mut out = [0u8; SEGMENT_HEADER_SIZE];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(SEGMENT_HEADER_SIZE as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.index.to_le_bytes());
        out[24..32].copy_from_slice(&self.capacity.to_le_bytes());
        out[32..40].copy_from_slice(&self.created_unix_ns.to_le_bytes());
        // 40..44: flags, 0.
        let crc = crc32c::crc32c(&out[..HEADER_CRC_COVERS]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        // 48..56: reserved, 0.
        out[56..64].copy_from_slice(&first_seq.to_le_bytes());
        out
    }
}

/// Why a segment header is rejected (the caller adds the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    NotAJournal { found: [u8; 8] },
    Truncated { len: u64 },
    Version { found: u32 },
    Corrupt { reason: &'static str },
}

/// Decodes and validates the first bytes of a file (`bytes` holds up to 64 of them, fewer if
/// the file is shorter).
pub(crate) fn decode_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderFault> {
    let magic_len = bytes.len().min(SEGMENT_MAGIC.len());
    if bytes[..magic_len] != SEGMENT_MAGIC[..magic_len] {
        let mut found = [0u8; 8];
        found[..magic_len].copy_from_slice(&bytes[..magic_len]);
        return Err(HeaderFault::NotAJournal { found });
    }
    if bytes.len() < SEGMENT_HEADER_SIZE {
        return Err(HeaderFault::Truncated {
            len: bytes.len() as u64,
        });
    }
    let version = le_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderFault::Version { found: version });
    }
    if le_u32(bytes, 12) as usize != SEGMENT_HEADER_SIZE {
        return Err(HeaderFault::Corrupt {
            reason: "header size field is not 64",
        });
    }
    if crc32c::crc32c(&bytes[..HEADER_CRC_COVERS]) != le_u32(bytes, 44) {
        return Err(HeaderFault::Corrupt {
            reason: "header CRC mismatch",
        });
    }
    let header = SegmentHeader {
        index: le_u64(bytes, 16),
        capacity: le_u64(bytes, 24),
        created_unix_ns: le_u64(bytes, 32),
    };
    let capacity_ok = (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&header.capacity)
        && header.capacity.is_multiple_of(FRAME_ALIGN as u64);
    if !capacity_ok {
        return Err(HeaderFault::Corrupt {
            reason: "segment capacity out of range",
        });
    }
    if le_u32(bytes, 40) != 0 || le_u64(bytes, 48) != 0 {
        return Err(HeaderFault::Corrupt {
            reason: "reserved header bytes are not zero",
        });
    }
    Ok(header)
}

/// File name of segment `index`.
pub(crate) fn segment_file_name(index: u64) -> String {
    format!("journal-{index:08}.seg")
}

/// The index in a segment file name, if `name` is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("journal-")?.strip_suffix(".seg")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_first_seq_is_outside_the_crc() {
        let header = SegmentHeader {
            index: 7,
            capacity: 1 << 20,
            created_unix_ns: 42,
        };
        let bytes = header.encode(0);
        assert_eq!(decode_header(&bytes), Ok(header));
        let mut activated = bytes;
        activated[56..64].copy_from_slice(&99u64.to_le_bytes());
        assert_eq!(decode_header(&activated), Ok(header));
        let mut bad = bytes;
        bad[17] ^= 1;
        assert_eq!(
            decode_header(&bad),
            Err(HeaderFault::Corrupt {
                reason: "header CRC mismatch"
            })
        );
        let mut v2 = bytes;
        v2[8] = 2;
        assert_eq!(decode_header(&v2), Err(HeaderFault::Version { found: 2 }));
        assert_eq!(
            decode_header(b"AAITI"),
            Err(HeaderFault::Truncated { len: 5 })
        );
        assert!(matches!(
            decode_header(b"hello world"),
            Err(HeaderFault::NotAJournal { .. })
        ));
    }

    #[test]
    fn the_crc_covers_the_length_word() {
        let data = [7u8; 72];
        let a = frame_crc(frame_word(TYPE_ENVELOPE, 64), &data);
        assert_ne!(a, frame_crc(frame_word(TYPE_BLOB, 64), &data));
        assert_ne!(a, frame_crc(frame_word(TYPE_ENVELOPE, 56), &data));
        // Reference: the register starts at !word, i.e. CRC-32C with that initial value.
        let mut reg = !frame_word(TYPE_ENVELOPE, 64);
        for &byte in &data {
            reg ^= u32::from(byte);
            for _ in 0..8 {
                reg = if reg & 1 == 1 {
                    (reg >> 1) ^ 0x82F6_3B78
                } else {
                    reg >> 1
                };
            }
        }
        assert_eq!(a, !reg);
    }

    #[test]
    fn words_decode_and_reject_nonsense() {
        let word = frame_word(TYPE_ENVELOPE, 64);
        assert_eq!(
            decode_word(word),
            Ok(WordInfo {
                frame_type: TYPE_ENVELOPE,
                body_len: 64,
                frame_len: 80
            })
        );
        assert_eq!(
            decode_word(frame_word(TYPE_BLOB, 17)).map(|i| i.frame_len),
            Ok(40)
        );
        assert!(decode_word(frame_word(TYPE_ENVELOPE, 8)).is_err());
        assert!(decode_word(frame_word(TYPE_ENVELOPE, 200)).is_err());
        assert!(decode_word(frame_word(3, 64)).is_err());
        assert!(decode_word(frame_word(TYPE_BLOB, 15)).is_err());
    }

    #[test]
    fn file_names_sort_and_parse() {
        assert_eq!(segment_file_name(3), "journal-00000003.seg");
        assert_eq!(parse_segment_file_name("journal-00000003.seg"), Some(3));
        assert_eq!(
            parse_segment_file_name("journal-123456789.seg"),
            Some(123_456_789)
        );
        assert_eq!(parse_segment_file_name("journal-3.seg"), None);
        assert_eq!(parse_segment_file_name("journal-00000003.seg.tmp"), None);
        assert_eq!(parse_segment_file_name("journal-0000000x.seg"), None);
    }
}
