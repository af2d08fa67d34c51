//! [`RecordBuffer`]: the caller-owned, reusable output of the normalizers.

use aaiti_model::{Envelope, Record, RecordHeader};

/// A growable array of [`Envelope`]s that normalizers append to.
///
/// Envelopes are written in place with [`Envelope::set`]; the backing storage only grows
/// when a message produces more records than any message before it, so in steady state
/// nothing is allocated. [`RecordBuffer::clear`] keeps the storage.
#[derive(Debug, Default, Clone)]
pub struct RecordBuffer {
    envelopes: Vec<Envelope>,
    len: usize,
}

impl RecordBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty buffer with room for `capacity` records before it has to grow.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            envelopes: vec![Envelope::default(); capacity],
            len: 0,
        }
    }

    /// Appends `record` under `header` (its `kind` and `payload_len` are filled in).
    #[inline]
    pub fn push<R: Record>(&mut self, header: RecordHeader, record: &R) {
        if let Some(slot) = self.envelopes.get_mut(self.len) {
            slot.set(header, record);
        } else {
            self.envelopes.push(Envelope::new(header, record));
        }
        self.len += 1;
    }

    /// The records appended since the last [`RecordBuffer::clear`].
    #[inline]
    pub fn as_slice(&self) -> &[Envelope] {
        &self.envelopes[..self.len]
    }

    /// Number of records held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no record is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the records, keeping the storage.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Number of records the buffer holds without growing.
    pub fn capacity(&self) -> usize {
        self.envelopes.len()
    }

    /// Iterates over the records.
    pub fn iter(&self) -> std::slice::Iter<'_, Envelope> {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a RecordBuffer {
    type Item = &'a Envelope;
    type IntoIter = std::slice::Iter<'a, Envelope>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use aaiti_model::{StreamId, Trade, UnixNanos};

    use super::*;

    #[test]
    fn reuses_storage() {
        let mut buffer = RecordBuffer::new();
        let header = RecordHeader::new(StreamId(1), 1, UnixNanos(1), UnixNanos(2));
        buffer.push(header, &Trade::default());
        buffer.push(header, &Trade::default());
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.capacity(), 2);
        buffer.clear();
        assert!(buffer.is_empty());
        buffer.push(
            header,
            &Trade {
                trade_id: 7,
                ..Trade::default()
            },
        );
        assert_eq!(buffer.capacity(), 2);
        assert_eq!(buffer.as_slice()[0].payload::<Trade>().unwrap().trade_id, 7);
    }
}
