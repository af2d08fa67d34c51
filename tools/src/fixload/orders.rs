//! One session's orders: choosing what to send, encoding it, and matching the acceptor's
//! answers to what is in flight.
//!
//! # ClOrdID (11)
//!
//! `FL` + the run tag (10 lowercase hex digits, different for each run) + `-` + the
//! session number (decimal, 1-based) + `-` + the order counter (decimal, from 1, per
//! session), e.g. `FL01a2b3c4d5-2-17`: at most 40 bytes, the engine's `ClientOrderId`
//! capacity. Cancels and replaces get their own ClOrdID and name the order they act on in
//! OrigClOrdID (41); after a replace is acknowledged the order goes by the replace's
//! ClOrdID. An answer is matched by parsing the counter back out of its ClOrdID, so no
//! string is stored or allocated per order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aaiti_gateway::fix::codec::{Message, parse_u64};

use super::config::OrderParams;
use super::report::Recorder;
use super::session::Fix;

/// Order kinds the generator sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// NewOrderSingle (D).
    New,
    /// OrderCancelRequest (F).
    Cancel,
    /// OrderCancelReplaceRequest (G).
    Replace,
}

impl Kind {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Cancel => "cancel",
            Self::Replace => "replace",
        }
    }
}

/// An order acknowledged as New (or Replaced) and not the target of a request in flight.
#[derive(Copy, Clone, Debug)]
struct Open {
    /// Counter of its current ClOrdID.
    id: u64,
    /// `1` buy or `2` sell (Side, 54).
    side: u8,
    /// Its limit price (mantissa).
    price: i64,
}

/// A request waiting for its acknowledgement.
#[derive(Copy, Clone, Debug)]
struct Pending {
    kind: Kind,
    /// When it should have been sent (the open-loop schedule).
    intended: Instant,
    /// When it was handed to the socket.
    sent: Instant,
    /// Sent after the warmup: its latency is recorded.
    measured: bool,
    /// Its MsgSeqNum, to match a session-level Reject (RefSeqNum 45).
    seq: u64,
    side: u8,
    price: i64,
    /// The order a cancel or replace acts on (taken out of the open list while in flight).
    target: Option<Open>,
}

/// How an answer ended a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    /// Rejected; `keep_target` puts the canceled/replaced order back among the open ones
    /// (the acceptor did not say it is gone).
    Rejected {
        keep_target: bool,
    },
}

/// Longest ClOrdID this module writes (see the module docs).
const CLORDID_MAX: usize = 40;

/// Room for an id written by [`write_id`].
pub(super) const ID_BUF: usize = 48;

/// Requests in flight that fit without the table growing.
const PENDING_CAPACITY: usize = 4096;

/// The orders of one session.
#[derive(Debug)]
pub(super) struct Flow {
    params: Arc<OrderParams>,
    /// `FL<run tag>-<session>-`.
    prefix: Vec<u8>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    open: Vec<Open>,
    rng: SplitMix64,
}

impl Flow {
    pub(super) fn new(params: Arc<OrderParams>, run_tag: u64, session: usize, seed: u64) -> Self {
        let prefix = format!("FL{:010x}-{session}-", run_tag & 0xff_ffff_ffff).into_bytes();
        // Any u64 counter (20 digits) must still fit; config validation bounds `session`.
        debug_assert!(prefix.len() + 20 <= CLORDID_MAX);
        Self {
            params,
            prefix,
            next_id: 1,
            pending: HashMap::with_capacity(PENDING_CAPACITY),
            open: Vec::with_capacity(PENDING_CAPACITY),
            // Each session its own stream, reproducible from the seed.
            rng: SplitMix64(seed ^ (session as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }

    /// Requests in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Measured requests in flight (unacknowledged when the run ends).
    pub(super) fn measured_in_flight(&self) -> u64 {
        self.pending.values().filter(|p| p.measured).count() as u64
    }

    /// Sends one request (chosen by the mix) through `fix`.
    pub(super) fn send(
        &mut self,
        fix: &mut Fix,
        intended: Instant,
        now: Instant,
        measured: bool,
        rec: &mut Recorder,
    ) {
        let params = Arc::clone(&self.params);
        let mix = params.mix;
        let pick = self.rng.below(mix.total());
        let wanted = if pick < u64::from(mix.new) {
            Kind::New
        } else if pick < u64::from(mix.new) + u64::from(mix.cancel) {
            Kind::Cancel
        } else {
            Kind::Replace
        };
        let (kind, target) = if wanted == Kind::New {
            (Kind::New, None)
        } else if self.open.is_empty() {
            rec.fallback_new(measured);
            (Kind::New, None)
        } else {
            let index = self.rng.below(self.open.len() as u64) as usize;
            (wanted, Some(self.open.swap_remove(index)))
        };
        let id = self.next_id;
        self.next_id += 1;
        let side = match target {
            Some(open) => open.side,
            None if self.rng.next() & 1 == 0 => b'1',
            None => b'2',
        };
        let price = match (kind, target) {
            (Kind::Cancel, Some(open)) => open.price,
            _ => self.away_price(side),
        };
        let seq = fix.next_out();
        let mut id_buf = [0_u8; ID_BUF];
        let mut orig_buf = [0_u8; ID_BUF];
        let msg_type: &[u8] = match kind {
            Kind::New => b"D",
            Kind::Cancel => b"F",
            Kind::Replace => b"G",
        };
        let wall = super::session::wall_clock();
        let enc = fix.begin(msg_type, wall);
        enc.str(11, write_id(&self.prefix, id, &mut id_buf));
        if let Some(open) = target {
            enc.str(41, write_id(&self.prefix, open.id, &mut orig_buf));
        }
        enc.str(1, &params.account);
        enc.str(55, &params.symbol);
        enc.str(207, &params.exchange);
        enc.char(54, side);
        enc.timestamp(60, wall);
        enc.decimal(38, params.qty, params.places);
        if kind != Kind::Cancel {
            enc.char(40, b'2');
            enc.decimal(44, price, params.places);
            enc.char(59, b'1');
        }
        fix.commit(now);
        self.pending.insert(
            id,
            Pending {
                kind,
                intended,
                sent: now,
                measured,
                seq,
                side,
                price,
                target,
            },
        );
        rec.sent(kind, measured);
    }

    /// A limit price on `side`'s passive side of the reference: 1 to `jitter + 1` ticks
    /// away (config validation keeps it positive and in range).
    fn away_price(&mut self, side: u8) -> i64 {
        let params = &self.params;
        let ticks = 1 + self.rng.below(u64::from(params.jitter_ticks) + 1) as i64;
        let distance = ticks * params.tick;
        if side == b'1' {
            params.price - distance
        } else {
            params.price + distance
        }
    }

    /// The counter of one of our ClOrdIDs.
    fn id_of(&self, clordid: &[u8]) -> Option<u64> {
        clordid
            .strip_prefix(self.prefix.as_slice())
            .and_then(parse_u64)
    }

    /// An ExecutionReport (8).
    pub(super) fn on_execution_report(
        &mut self,
        msg: &Message<'_>,
        at: Instant,
        rec: &mut Recorder,
    ) {
        let exec_type = msg.get(150).unwrap_or_default();
        let id = msg.get(11).and_then(|clordid| self.id_of(clordid));
        let kind = id.and_then(|id| self.pending.get(&id)).map(|p| p.kind);
        let (Some(id), Some(kind)) = (id, kind) else {
            self.unsolicited(msg, rec);
            return;
        };
        let outcome = match (kind, exec_type) {
            (Kind::New, b"0") | (Kind::Cancel, b"4") | (Kind::Replace, b"5") => Outcome::Accepted,
            (_, b"8") => Outcome::Rejected {
                keep_target: !terminal(msg.get(39)),
            },
            // PendingNew, PendingCancel, ...: not the acknowledgement yet.
            _ => return,
        };
        if let Outcome::Rejected { .. } = outcome {
            match (msg.get(58), msg.get(103)) {
                (Some(text), _) => rec.reject(kind, "", text),
                (None, Some(code)) => rec.reject(kind, "OrdRejReason=", code),
                (None, None) => rec.reject(kind, "", b"(no text)"),
            }
        }
        self.complete(id, outcome, at, rec);
    }

    /// An OrderCancelReject (9): the answer to a cancel or replace.
    pub(super) fn on_cancel_reject(&mut self, msg: &Message<'_>, at: Instant, rec: &mut Recorder) {
        let id = msg.get(11).and_then(|clordid| self.id_of(clordid));
        let kind = id.and_then(|id| self.pending.get(&id)).map(|p| p.kind);
        let (Some(id), Some(kind @ (Kind::Cancel | Kind::Replace))) = (id, kind) else {
            rec.unmatched();
            return;
        };
        // CxlRejReason 0 (too late) and 1 (unknown order) say the order is gone.
        let gone = matches!(msg.get(102), Some(b"0" | b"1")) || terminal(msg.get(39));
        match (msg.get(58), msg.get(102)) {
            (Some(text), _) => rec.reject(kind, "", text),
            (None, Some(code)) => rec.reject(kind, "CxlRejReason=", code),
            (None, None) => rec.reject(kind, "", b"(no text)"),
        }
        self.complete(id, Outcome::Rejected { keep_target: !gone }, at, rec);
    }

    /// A session-level Reject (3) or BusinessMessageReject (j) of the request sent with
    /// MsgSeqNum `ref_seq` or with ClOrdID `ref_id`; `false` if none is in flight.
    pub(super) fn on_reject(
        &mut self,
        ref_seq: Option<u64>,
        ref_id: Option<&[u8]>,
        label: &str,
        text: &[u8],
        at: Instant,
        rec: &mut Recorder,
    ) -> bool {
        let by_id = ref_id
            .and_then(|clordid| self.id_of(clordid))
            .filter(|id| self.pending.contains_key(id));
        // A rare path: a scan is fine.
        let found = by_id.or_else(|| {
            ref_seq.and_then(|seq| {
                self.pending
                    .iter()
                    .find(|(_, p)| p.seq == seq)
                    .map(|(id, _)| *id)
            })
        });
        let Some(id) = found else {
            return false;
        };
        let kind = self.pending.get(&id).map_or(Kind::New, |p| p.kind);
        rec.reject(kind, label, text);
        self.complete(id, Outcome::Rejected { keep_target: true }, at, rec);
        true
    }

    /// An ExecutionReport for no request in flight: fills, unsolicited cancels, late
    /// duplicates. An order the report says is done leaves the open list.
    fn unsolicited(&mut self, msg: &Message<'_>, rec: &mut Recorder) {
        rec.unmatched();
        if terminal(msg.get(39))
            && let Some(id) = msg.get(11).and_then(|clordid| self.id_of(clordid))
            && let Some(index) = self.open.iter().position(|open| open.id == id)
        {
            self.open.swap_remove(index);
        }
    }

    fn complete(&mut self, id: u64, outcome: Outcome, at: Instant, rec: &mut Recorder) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let rejected = outcome != Outcome::Accepted;
        if pending.measured {
            rec.ack(pending.kind, pending.intended, pending.sent, at, rejected);
        }
        match (pending.kind, outcome) {
            (Kind::New | Kind::Replace, Outcome::Accepted) => self.open.push(Open {
                id,
                side: pending.side,
                price: pending.price,
            }),
            (Kind::Cancel | Kind::Replace, Outcome::Rejected { keep_target: true }) => {
                if let Some(target) = pending.target {
                    self.open.push(target);
                }
            }
            _ => {}
        }
    }

    /// Orders acknowledged and still open (for tests).
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.open.len()
    }
}

/// OrdStatus (39) values after which the order can no longer be canceled: filled,
/// canceled, done for day, rejected, expired.
fn terminal(ord_status: Option<&[u8]>) -> bool {
    matches!(ord_status, Some(b"2" | b"3" | b"4" | b"8" | b"C"))
}

/// `prefix` then `id` in decimal, in `buf` (cut to the buffer if the prefix were longer
/// than the 28 bytes that leave room for any `u64`).
pub(super) fn write_id<'a>(prefix: &[u8], id: u64, buf: &'a mut [u8; ID_BUF]) -> &'a [u8] {
    let mut digits = [0_u8; 20];
    let mut at = digits.len();
    let mut value = id;
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let len = prefix.len() + digits.len() - at;
    // The prefix is at most 19 bytes (`FL` + 10 + `-` + a 5-digit session + `-`), the
    // counter at most 20: both fit.
    let len = len.min(buf.len());
    let split = prefix.len().min(len);
    buf[..split].copy_from_slice(&prefix[..split]);
    buf[split..len].copy_from_slice(&digits[at..at + (len - split)]);
    &buf[..len]
}

/// A small, fast generator (Vigna's SplitMix64); statistical quality is ample for picking
/// order kinds and prices.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`), by multiply-shift (bias below 2^-32 for the
    /// bounds used here).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixload::config::{LoadConfig, Mix};
    use aaiti_gateway::fix::codec::{Encoder, Parser};

    fn flow(mix: Mix) -> (Flow, Fix, Recorder) {
        let mut config = LoadConfig::new(([127, 0, 0, 1], 1).into());
        config.mix = mix;
        let params = Arc::new(config.validate().unwrap());
        let fix = Fix::new(b"DESK", b"AAITI", Instant::now());
        (
            Flow::new(params, 0xabc, 3, 7),
            fix,
            Recorder::new().unwrap(),
        )
    }

    /// An answer from the acceptor with the given body fields.
    fn answer(msg_type: &[u8], fields: &[(u32, &[u8])]) -> Vec<u8> {
        let mut enc = Encoder::new(256);
        enc.begin(msg_type);
        for (tag, value) in fields {
            enc.str(*tag, value);
        }
        enc.finish().to_vec()
    }

    #[test]
    fn clordid_round_trips() {
        let (flow, _, _) = flow(Mix::default());
        let mut buf = [0_u8; ID_BUF];
        let text = write_id(&flow.prefix, u64::MAX, &mut buf).to_vec();
        assert_eq!(text, b"FL0000000abc-3-18446744073709551615");
        assert!(text.len() <= CLORDID_MAX);
        // The codec reads up to 19 digits, far beyond any run's order count.
        let id = 1_234_567_890_123_456_789;
        let text = write_id(&flow.prefix, id, &mut buf).to_vec();
        assert_eq!(flow.id_of(&text), Some(id));
        assert_eq!(flow.id_of(b"FL0000000abc-4-1"), None);
        assert_eq!(flow.id_of(b"FL0000000abc-3-"), None);
    }

    #[test]
    fn new_then_cancel_then_reject_flow() {
        let (mut flow, mut fix, mut rec) = flow(Mix {
            new: 0,
            cancel: 1,
            replace: 0,
        });
        let now = Instant::now();
        // Nothing open: the cancel becomes a new order.
        flow.send(&mut fix, now, now, true, &mut rec);
        assert_eq!(rec.fallback_new_count(), 1);
        let mut parser = Parser::new();
        let sent = fix.take_tx();
        let msg = parser.parse(&sent).unwrap();
        assert_eq!(msg.msg_type(), b"D");
        assert_eq!(msg.get(11), Some(&b"FL0000000abc-3-1"[..]));
        assert_eq!(msg.get(40), Some(&b"2"[..]));
        let price = msg.get(44).unwrap().to_vec();
        // Acknowledge it: it becomes open.
        let ack = answer(b"8", &[(11, b"FL0000000abc-3-1"), (150, b"0"), (39, b"0")]);
        flow.on_execution_report(&parser.parse(&ack).unwrap(), Instant::now(), &mut rec);
        assert_eq!(flow.open_count(), 1);
        assert_eq!(flow.in_flight(), 0);
        // Now the cancel targets it.
        flow.send(&mut fix, now, now, true, &mut rec);
        let sent = fix.take_tx();
        let msg = parser.parse(&sent).unwrap();
        assert_eq!(msg.msg_type(), b"F");
        assert_eq!(msg.get(41), Some(&b"FL0000000abc-3-1"[..]));
        assert_eq!(msg.get(44), None);
        assert_eq!(flow.open_count(), 0);
        // Rejected for a reason that keeps the order open.
        let reject = answer(
            b"9",
            &[(11, b"FL0000000abc-3-2"), (102, b"2"), (58, b"busy")],
        );
        flow.on_cancel_reject(&parser.parse(&reject).unwrap(), Instant::now(), &mut rec);
        assert_eq!(flow.open_count(), 1);
        assert_eq!(rec.rejects_snapshot(), vec![("cancel: busy".to_owned(), 1)]);
        // A cancel rejected as unknown forgets the order.
        flow.send(&mut fix, now, now, true, &mut rec);
        let reject = answer(b"9", &[(11, b"FL0000000abc-3-3"), (102, b"1")]);
        flow.on_cancel_reject(&parser.parse(&reject).unwrap(), Instant::now(), &mut rec);
        assert_eq!(flow.open_count(), 0);
        assert!(!price.is_empty());
    }

    #[test]
    fn prices_rest_on_their_side() {
        let (mut flow, _, _) = flow(Mix::default());
        let params = Arc::clone(&flow.params);
        for _ in 0..1000 {
            let buy = flow.away_price(b'1');
            let sell = flow.away_price(b'2');
            assert!(buy < params.price && buy >= params.price - 101 * params.tick);
            assert!(sell > params.price && sell <= params.price + 101 * params.tick);
            assert_eq!((params.price - buy) % params.tick, 0);
        }
    }
}
