//! Snapshot of the whole manager (serde; the engine writes it with postcard).
//!
//! The order table, free list, done queue, account lists, stop books, counters and
//! configuration are written as they are. The lookup maps are not written as maps (their
//! iteration order would make the bytes depend on hashing): the id index is rebuilt from
//! the table, and the client-id and execution-id indices are written as sorted lists. The
//! expiry queue is written sorted. The same state therefore always gives the same bytes,
//! and a restored manager behaves exactly like the original: every choice it makes depends
//! only on the ordered structures. A restored snapshot is checked with
//! [`OrderManager::check_invariants`] before it is used.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use aaiti_model::{AccountId, ClientOrderId, OrderId, Price};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::config::OmsConfig;
use super::error::{InvariantViolation, SnapshotError};
use super::manager::{ExpiryEntry, ListEnds, OmsCounters, OrderManager, Rules};
use super::order::Order;
use super::stops::StopBook;
use crate::hash::{FixedMap, FixedSet};

/// The serialized form, borrowing the manager.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    config: &'a OmsConfig,
    rules: &'a [Rules],
    next_order_id: u64,
    slots: &'a [Option<Order>],
    free: &'a [u32],
    done: &'a VecDeque<u32>,
    lists: &'a [ListEnds],
    stops: &'a [StopBook],
    last_trigger: &'a [Price],
    expiry: Vec<ExpiryEntry>,
    expiry_stale: u64,
    live: u32,
    counters: &'a OmsCounters,
    client_ids: Vec<(AccountId, ClientOrderId, OrderId)>,
    exec_ids: Vec<(OrderId, u64)>,
}

/// The serialized form, owned (field for field the same as [`SnapshotRef`]).
#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    config: OmsConfig,
    rules: Vec<Rules>,
    next_order_id: u64,
    slots: Vec<Option<Order>>,
    free: Vec<u32>,
    done: VecDeque<u32>,
    lists: Vec<ListEnds>,
    stops: Vec<StopBook>,
    last_trigger: Vec<Price>,
    expiry: Vec<ExpiryEntry>,
    expiry_stale: u64,
    live: u32,
    counters: OmsCounters,
    client_ids: Vec<(AccountId, ClientOrderId, OrderId)>,
    exec_ids: Vec<(OrderId, u64)>,
}

impl Serialize for OrderManager {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut expiry: Vec<ExpiryEntry> = self.expiry.iter().map(|Reverse(e)| *e).collect();
        expiry.sort_unstable();
        let mut client_ids: Vec<(AccountId, ClientOrderId, OrderId)> = self
            .by_client_id
            .iter()
            .map(|(&(account, client_id), &id)| (account, client_id, id))
            .collect();
        client_ids.sort_unstable_by_key(|&(account, client_id, _)| (account, client_id.0));
        let mut exec_ids: Vec<(OrderId, u64)> = self.exec_ids.iter().copied().collect();
        exec_ids.sort_unstable();
        SnapshotRef {
            version: Self::SNAPSHOT_VERSION,
            config: &self.config,
            rules: &self.rules,
            next_order_id: self.next_order_id,
            slots: &self.slots,
            free: &self.free,
            done: &self.done,
            lists: &self.lists,
            stops: &self.stops,
            last_trigger: &self.last_trigger,
            expiry,
            expiry_stale: self.expiry_stale,
            live: self.live,
            counters: &self.counters,
            client_ids,
            exec_ids,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OrderManager {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let snapshot = Snapshot::deserialize(deserializer)?;
        Self::from_snapshot(snapshot).map_err(serde::de::Error::custom)
    }
}

impl OrderManager {
    /// The whole state as postcard bytes (not a hot-path call: it allocates).
    ///
    /// # Errors
    ///
    /// Only if postcard fails to encode (it does not for this type in practice).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(postcard::to_allocvec(self)?)
    }

    /// A manager restored from [`snapshot`](Self::snapshot) bytes, with its tables
    /// allocated to the configured capacities again.
    ///
    /// # Errors
    ///
    /// The bytes do not decode, or describe an inconsistent manager.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot: Snapshot = postcard::from_bytes(bytes)?;
        Ok(Self::from_snapshot(snapshot)?)
    }

    fn from_snapshot(s: Snapshot) -> Result<Self, InvariantViolation> {
        let fail = |what| Err(InvariantViolation::new(what, OrderId(0)));
        if s.version != Self::SNAPSHOT_VERSION {
            return fail("snapshot version is not this build's");
        }
        if s.config.validate().is_err() {
            return fail("snapshot configuration is invalid");
        }
        if s.rules.iter().any(|r| r.tick < 1 || r.lot < 1) {
            return fail("snapshot instrument rules are invalid");
        }
        if !s.stops.iter().all(StopBook::is_sorted) {
            return fail("snapshot stop book is not sorted");
        }
        let mut manager = Self::from_parts(s.config, s.rules);
        let slot_capacity = manager.slots.capacity();
        manager.next_order_id = s.next_order_id;
        manager.slots = s.slots;
        manager
            .slots
            .reserve(slot_capacity.saturating_sub(manager.slots.len()));
        manager.free = s.free;
        manager
            .free
            .reserve(slot_capacity.saturating_sub(manager.free.len()));
        manager.done = s.done;
        manager.done.reserve(
            (manager.config.done_retention as usize + 1).saturating_sub(manager.done.len()),
        );
        manager.lists = s.lists;
        let stops_capacity = manager.config.stops_capacity as usize;
        manager.stops = s.stops;
        for book in &mut manager.stops {
            book.reserve(stops_capacity);
        }
        manager.last_trigger = s.last_trigger;
        manager.expiry = BinaryHeap::with_capacity(
            (manager.config.max_live_orders as usize).max(s.expiry.len()),
        );
        manager.expiry.extend(s.expiry.into_iter().map(Reverse));
        manager.expiry_stale = s.expiry_stale;
        manager.live = s.live;
        manager.counters = s.counters;
        if manager.counters.rejects_by_reason.len() < OmsCounters::default().rejects_by_reason.len()
        {
            return fail("snapshot counters are truncated");
        }
        let mut by_id = FixedMap::default();
        by_id.reserve(slot_capacity);
        for (slot, order) in manager.slots.iter().enumerate() {
            if let Some(order) = order
                && by_id.insert(order.id, slot as u32).is_some()
            {
                return Err(InvariantViolation::new("order id held twice", order.id));
            }
        }
        manager.by_id = by_id;
        let mut by_client_id = FixedMap::default();
        by_client_id
            .reserve((manager.config.session_orders_capacity as usize).max(s.client_ids.len()));
        by_client_id.extend(
            s.client_ids
                .into_iter()
                .map(|(account, client_id, id)| ((account, client_id), id)),
        );
        manager.by_client_id = by_client_id;
        let mut exec_ids = FixedSet::default();
        exec_ids.reserve((manager.config.session_fills_capacity as usize).max(s.exec_ids.len()));
        exec_ids.extend(s.exec_ids);
        manager.exec_ids = exec_ids;
        manager.check_invariants()?;
        Ok(manager)
    }
}
