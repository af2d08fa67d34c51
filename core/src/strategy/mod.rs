//! Strategies: code that reads the market and its own orders and emits order intents. Every
//! intent is an [`OrderCommand`] that goes through the order manager and pre-trade risk like
//! a desk order; a strategy never talks to a venue.
//!
//! Strategies run on the trading stage's thread, in event order, on engine time (event
//! timestamps), so a replay of the journal reproduces their decisions exactly. Their state
//! is part of engine snapshots ([`Strategy::snapshot`]).

pub mod flow;
pub mod ml;
pub mod rule;

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, OrderCommand, OrderEvent, Signal, Trade, UnixNanos,
};

use crate::market::Market;

/// Order intents a strategy emits during one callback. Pre-sized; a strategy that emits more
/// than [`Intents::CAPACITY`] in one callback has the excess dropped and counted.
pub struct Intents {
    commands: Vec<OrderCommand>,
    dropped: u64,
}

impl Intents {
    /// Most intents per callback.
    pub const CAPACITY: usize = 64;

    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            commands: Vec::with_capacity(Self::CAPACITY),
            dropped: 0,
        }
    }

    /// Adds an intent.
    #[inline]
    pub fn push(&mut self, command: OrderCommand) {
        if self.commands.len() < Self::CAPACITY {
            self.commands.push(command);
        } else {
            self.dropped += 1;
        }
    }

    /// Takes the intents (the buffer keeps its capacity).
    pub fn drain(&mut self) -> std::vec::Drain<'_, OrderCommand> {
        self.commands.drain(..)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Intents dropped for lack of room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Default for Intents {
    fn default() -> Self {
        Self::new()
    }
}

/// A trading strategy hosted by the trading stage.
pub trait Strategy: Send {
    /// Name (config, reports, client order id prefix).
    fn name(&self) -> &str;

    /// The account it trades.
    fn account(&self) -> AccountId;

    /// A complete book update of `instrument` (the book is valid).
    fn on_book(
        &mut self,
        _market: &Market,
        _instrument: InstrumentId,
        _now: UnixNanos,
        _out: &mut Intents,
    ) {
    }

    /// A trade printed on a venue.
    fn on_trade(&mut self, _market: &Market, _trade: &Trade, _now: UnixNanos, _out: &mut Intents) {}

    /// A model prediction.
    fn on_signal(
        &mut self,
        _market: &Market,
        _signal: &Signal,
        _now: UnixNanos,
        _out: &mut Intents,
    ) {
    }

    /// An event of one of its own orders (acknowledged, filled, canceled, rejected...).
    fn on_order_event(
        &mut self,
        _market: &Market,
        _event: &OrderEvent,
        _now: UnixNanos,
        _out: &mut Intents,
    ) {
    }

    /// Its state for an engine snapshot (cold path).
    ///
    /// # Errors
    ///
    /// The state cannot be encoded (the snapshot is then not written).
    fn snapshot(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    /// Restores [`Strategy::snapshot`]'s bytes.
    ///
    /// # Errors
    ///
    /// The bytes do not fit this strategy.
    fn restore(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// Counters for the run summary.
    fn report(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// `{prefix}-{n}` as a client order id (prefix cut to leave room for the number). Does not
/// allocate.
pub fn client_order_id(prefix: &str, n: u64) -> ClientOrderId {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    let room = ClientOrderId::CAPACITY - 1 - digits.len();
    let prefix = &prefix.as_bytes()[..prefix.len().min(room)];
    let mut buffer = [0_u8; ClientOrderId::CAPACITY];
    buffer[..prefix.len()].copy_from_slice(prefix);
    buffer[prefix.len()] = b'-';
    let len = prefix.len() + 1 + digits.len();
    buffer[prefix.len() + 1..len].copy_from_slice(digits);
    ClientOrderId::new(&buffer[..len]).unwrap_or(ClientOrderId::NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_order_ids() {
        assert_eq!(client_order_id("flow", 17).as_str(), "flow-17");
        let long = "x".repeat(60);
        let id = client_order_id(&long, u64::MAX);
        assert_eq!(id.as_bytes().len(), ClientOrderId::CAPACITY);
        assert!(id.as_str().ends_with(&format!("-{}", u64::MAX)));
    }
}
