//! Where a session keeps its sequence numbers and the messages it sent (for resends).
//!
//! [`MessageStore`] is the session layer's only persistence: the next MsgSeqNum (34) it
//! will send, the next one it expects, and the bytes of sent messages so that a peer's
//! ResendRequest (35=2) can be answered. The engine implements it on its journal; the
//! gateway ships [`MemoryStore`], which keeps the last N application messages in memory.
//!
//! Contract, for implementations:
//!
//! * Sequence numbers start at 1; [`MessageStore::reset`] puts both back to 1 and forgets
//!   every stored message.
//! * [`MessageStore::store_sent`] is called once per message sent, in increasing `seq`
//!   order, and sets the next sender number to `seq + 1`. A store may drop the bytes of
//!   administrative messages (MsgType 0, 1, 2, 3, 4, 5, A): a resend replaces them by a
//!   SequenceReset-GapFill anyway.
//! * [`MessageStore::sent`] calls back, in increasing order, with every stored message whose
//!   number lies in `begin..=end`; numbers it no longer has (or never had bytes for) are
//!   simply skipped and the session gap-fills them.
//! * Errors are I/O errors: the session stops (disconnects) on any of them, since a session
//!   whose numbers cannot be persisted must not go on.

use std::collections::VecDeque;
use std::io;

use crate::fix::session::is_admin;

/// Sequence numbers and sent messages of one session (see the [module
/// documentation](self)). Object safe: the acceptor holds a `Box<dyn MessageStore>` per
/// session.
pub trait MessageStore: Send {
    /// The MsgSeqNum of the next message this side sends.
    fn next_sender_seq(&self) -> u64;

    /// The MsgSeqNum expected on the next message from the peer.
    fn next_target_seq(&self) -> u64;

    /// Records that the next message expected from the peer is `seq`.
    ///
    /// # Errors
    ///
    /// The number could not be persisted.
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()>;

    /// Records a sent message (the whole wire bytes) and makes `seq + 1` the next sender
    /// number.
    ///
    /// # Errors
    ///
    /// The message could not be persisted.
    fn store_sent(&mut self, seq: u64, bytes: &[u8]) -> io::Result<()>;

    /// Calls `each(seq, bytes)` for the stored messages with `begin <= seq <= end`, in
    /// increasing order.
    ///
    /// # Errors
    ///
    /// The messages could not be read.
    fn sent(&mut self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()>;

    /// Both numbers back to 1 and every stored message forgotten (ResetSeqNumFlag).
    ///
    /// # Errors
    ///
    /// The reset could not be persisted.
    fn reset(&mut self) -> io::Result<()>;

    /// Housekeeping the store would rather not do on the hot path (for a journal: preparing
    /// the next segment, faulting in the pages ahead of the writer). The acceptor calls it
    /// when a poll found nothing to do; it must be cheap when there is nothing pending.
    fn maintain(&mut self) {}
}

/// An in-memory [`MessageStore`] keeping the last `capacity` application messages (older
/// ones, and every administrative message, are gap-filled on resend). Nothing survives the
/// process; the buffers of evicted messages are reused, so a full store stops allocating.
#[derive(Debug)]
pub struct MemoryStore {
    next_sender: u64,
    next_target: u64,
    capacity: usize,
    /// Stored messages in increasing sequence order.
    messages: VecDeque<(u64, Vec<u8>)>,
    /// Buffers of forgotten messages, reused by the next ones.
    spare: Vec<Vec<u8>>,
}

impl MemoryStore {
    /// Application messages a store keeps by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A store at sequence numbers 1/1 keeping up to `capacity` application messages
    /// (0 keeps none: every resend is a gap fill).
    pub fn new(capacity: usize) -> Self {
        Self {
            next_sender: 1,
            next_target: 1,
            capacity,
            messages: VecDeque::with_capacity(capacity.min(1 << 16)),
            spare: Vec::new(),
        }
    }

    /// Application messages currently held.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// No message held.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl MessageStore for MemoryStore {
    fn next_sender_seq(&self) -> u64 {
        self.next_sender
    }

    fn next_target_seq(&self) -> u64 {
        self.next_target
    }

    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        self.next_target = seq;
        Ok(())
    }

    fn store_sent(&mut self, seq: u64, bytes: &[u8]) -> io::Result<()> {
        self.next_sender = seq.saturating_add(1);
        if self.capacity == 0 || wire_msg_type(bytes).is_none_or(is_admin) {
            return Ok(());
        }
        // Keep the order strictly increasing even if a caller went back (it should not).
        while self.messages.back().is_some_and(|(last, _)| *last >= seq) {
            if let Some((_, buf)) = self.messages.pop_back() {
                self.spare.push(buf);
            }
        }
        let mut buf = if self.messages.len() >= self.capacity {
            self.messages.pop_front().map(|(_, buf)| buf)
        } else {
            self.spare.pop()
        }
        .unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        self.messages.push_back((seq, buf));
        Ok(())
    }

    fn sent(&mut self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()> {
        let first = self.messages.partition_point(|(seq, _)| *seq < begin);
        for (seq, bytes) in self.messages.range(first..) {
            if *seq > end {
                break;
            }
            each(*seq, bytes);
        }
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.next_sender = 1;
        self.next_target = 1;
        self.spare
            .extend(self.messages.drain(..).map(|(_, buf)| buf));
        Ok(())
    }
}

/// The MsgType (35) of a whole message, found without a full parse: the field right after
/// BodyLength (`8=...<SOH>9=...<SOH>35=<type><SOH>`).
fn wire_msg_type(bytes: &[u8]) -> Option<&[u8]> {
    let at = bytes.windows(4).position(|w| w == b"\x0135=")? + 4;
    let len = bytes[at..].iter().position(|&b| b == 0x01)?;
    Some(&bytes[at..at + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(msg_type: &str, seq: u64) -> Vec<u8> {
        format!("8=FIX.4.4\x019=20\x0135={msg_type}\x0134={seq}\x0110=000\x01").into_bytes()
    }

    fn collect(store: &mut MemoryStore, begin: u64, end: u64) -> Vec<u64> {
        let mut seen = Vec::new();
        store
            .sent(begin, end, &mut |seq, bytes| {
                assert_eq!(bytes, message("8", seq).as_slice());
                seen.push(seq);
            })
            .unwrap();
        seen
    }

    #[test]
    fn keeps_the_last_application_messages() {
        let mut store = MemoryStore::new(3);
        assert_eq!((store.next_sender_seq(), store.next_target_seq()), (1, 1));
        for seq in 1..=6 {
            let kind = if seq == 4 { "0" } else { "8" };
            store.store_sent(seq, &message(kind, seq)).unwrap();
        }
        assert_eq!(store.next_sender_seq(), 7);
        // 4 was a heartbeat: not kept; 1 and 2 evicted.
        assert_eq!(collect(&mut store, 1, u64::MAX), vec![3, 5, 6]);
        assert_eq!(collect(&mut store, 4, 5), vec![5]);
        assert_eq!(collect(&mut store, 7, 9), Vec::<u64>::new());
        store.set_next_target_seq(42).unwrap();
        assert_eq!(store.next_target_seq(), 42);
        store.reset().unwrap();
        assert_eq!((store.next_sender_seq(), store.next_target_seq()), (1, 1));
        assert!(store.is_empty());
        store.store_sent(1, &message("8", 1)).unwrap();
        assert_eq!(collect(&mut store, 1, 1), vec![1]);
    }

    #[test]
    fn zero_capacity_keeps_numbers_only() {
        let mut store = MemoryStore::new(0);
        store.store_sent(1, &message("8", 1)).unwrap();
        assert_eq!(store.next_sender_seq(), 2);
        assert_eq!(collect(&mut store, 1, 1), Vec::<u64>::new());
    }
}
