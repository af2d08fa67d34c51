//! The order manager: every order's lifecycle as a deterministic state machine.
//!
//! [`OrderManager`] validates client commands, creates orders, applies the venue's reports
//! and holds stop orders until they trigger. It does no I/O, starts no thread, reads no
//! clock and calls no risk code: every entry point takes the engine time and a sink for the
//! [`OrderEvent`](aaiti_model::OrderEvent)s to journal and forward, and returns what the
//! engine must send to the venue. The same inputs always give the same outputs.
//!
//! # State machine
//!
//! An order has a [`OrderStatus`] and at most one outstanding cancel/replace request
//! ([`Pending`]). Events (kinds of `OrderEvent`) are emitted on each change:
//!
//! ```text
//!  New cmd ──(validation/risk reject: Rejected, no order)
//!     │ PendingNew
//!     ├───────────────► Armed (stop, held here) ──Triggered──┐
//!     ▼                   │ Canceled / Expired / Replaced    │
//!  PendingNew ◄───────────┼──────────────────────────────────┘
//!     │ Accepted          │ Rejected (venue) ──► Rejected ■
//!     ▼                   ▼
//!    New ──PartiallyFilled──► PartiallyFilled ──Filled──► Filled ■
//!     │                          │
//!     └──── Canceled / Expired ──┴──► Canceled ■ / Expired ■
//!
//!  orthogonal, while PendingNew / New / PartiallyFilled:
//!     PendingCancel ──(venue Canceled)──► Canceled (Expired if the manager's expiry cancel)
//!                   ──(venue reject)────► CancelRejected, request dropped
//!     PendingReplace ──(venue Replaced)─► Replaced (new price/qty/client id)
//!                    ──(venue reject)───► CancelRejected, request dropped
//! ```
//!
//! Fills are accepted in PendingNew (implicit ack), New, PartiallyFilled, and while a request
//! is pending (a fill racing a cancel or replace). ■ states are terminal: nothing changes
//! an order after them, except that a cancel reject the venue still owed is forwarded.
//!
//! Illegal venue reports — a fill after cancel or after completion, an overfill, a duplicate
//! execution id, a fill through the limit, an ack for an acknowledged order, a report for an
//! unknown order... — return an [`IllegalTransition`], are counted in [`OmsCounters`] and
//! change nothing else. Bad commands — zero or negative quantities, prices off tick, unknown
//! instruments or accounts, duplicate client ids, absurd sizes — are rejected with a precise
//! [`RejectReason`](aaiti_model::RejectReason) and change no order
//! (see [`OrderManager::validate_new`] for the order of the checks).
//!
//! # How the engine drives it
//!
//! * **Start:** `OrderManager::new(config, &registry)`; raise the known accounts with
//!   [`set_accounts`](OrderManager::set_accounts); or [`restore`](OrderManager::restore) a
//!   snapshot.
//! * **New order:** `validate_new(&cmd, now)`; on `Err(reason)` call
//!   `reject_new(&cmd, reason, out)`; on `Ok(view)` run pre-trade risk on the view; if risk
//!   rejects, `reject_new(&cmd, risk_reason, out)`; else `accept_new(&view, now, out)`, which
//!   returns [`CommandOutcome::Route`] (send the order to the venue) or
//!   [`CommandOutcome::Held`] (a stop, nothing to send). `on_command` does the same without
//!   the risk step.
//! * **Cancel / Replace / Status:** `on_command(&cmd, now, out)`: `SendCancel(id)` /
//!   `SendReplace(id)` (the new values are in `order(id).pending`) mean send the request to
//!   the venue; `Done(id)` means it was handled locally (an armed stop); `Rejected(reason)`
//!   came with a `CancelRejected` event.
//! * **Venue reports:** `on_venue_ack`, `on_venue_fill`, `on_venue_canceled`,
//!   `on_venue_replaced`, `on_venue_rejected`, `on_venue_expired`, `on_cancel_rejected`.
//!   An `Err` is journaled as an illegal-transition record and alerted on.
//! * **Stops:** on every price of the configured [`TriggerSource`] (last trade by default),
//!   `on_trigger_price(instrument, source, price, now, out)`; send every order that gets a
//!   `Triggered` event (as [`Order::venue_type`]: Market or Limit).
//! * **Time:** `on_time(now, out)` on every engine time step (a `Tick` control or any
//!   event); send a cancel for every `PendingCancel` it emits.
//! * **Kill switch:** `cancel_all(account or None, now, out)`, sending each `PendingCancel`.
//! * **Session roll:** `reset_session()` after the Day orders expired.
//! * **Snapshot:** `snapshot()` (postcard bytes of the whole state; the type is also plain
//!   serde) and `OrderManager::restore(&bytes)`.
//!
//! In short, the venue gets: a new order for each `Route` and each `Triggered` event, a
//! cancel for each `PendingCancel` event, a replace for each `PendingReplace` event.
//!
//! # Policies
//!
//! * **Order ids** are assigned from a counter (1, 2, ...) that is part of the state; a
//!   rejected new order consumes none.
//! * **Client order ids** are unique per account for the session: an id stays taken after
//!   its order is done (and after it is retired from memory) until
//!   [`reset_session`](OrderManager::reset_session). A replace may give the order a new id
//!   (reserved at request time); the old one keeps naming the order. An empty id is allowed
//!   and not indexed.
//! * **Execution ids** must be non-zero and unique per order for the session.
//! * **Average price** is `Σ(price × qty) / cum_qty` on mantissas, the sum exact in `i128`,
//!   the division truncated toward zero, at the price scale. **Fees** are the venue's (it
//!   applies its maker/taker schedule and reports each fill's fee); the manager sums them.
//! * **Replace priority:** a price change or a quantity increase loses time priority, a
//!   quantity decrease keeps it ([`PriorityEffect`]); the venue applies it, the manager
//!   records it in [`Order::priority_at`]. The new quantity must exceed the filled quantity
//!   when requested; side, type, time in force, flags and instrument cannot change; one
//!   request at a time (a second gets `CancelRejected` with `UnsupportedOrder`).
//! * **Stops** wait here, not at the venue, in per-instrument sorted books; they trigger on
//!   the configured price source, gaps included, and one placed through the last price
//!   triggers at once. Triggering is journaled (`Triggered`, `last_price` = trigger price).
//! * **Time in force:** Day orders expire at the next `day_session_end_utc_ns`, GTD orders
//!   at `expire_at` (must be in the future); see [`ExpiryMode`]. IOC and FOK are the venue's
//!   to enforce (it reports the remainder canceled or expired); they are recorded. Post-only
//!   needs a limit price and a resting time in force; FOK stops are not supported;
//!   reduce-only is recorded for the venue and risk.
//! * **Memory:** the order table holds `max_live_orders` open orders plus `done_retention`
//!   done ones (oldest retired first) and is allocated at start; the hot paths (commands,
//!   fills, cancels, trigger checks) do not allocate in steady state. The client-id and
//!   execution-id indices grow with the session (pre-sized by configuration) and shrink at
//!   `reset_session`. No call panics on any input.

mod config;
mod error;
mod manager;
mod order;
mod snapshot;
mod stops;

#[cfg(test)]
mod tests;

pub use config::{DAY_NS, ExpiryMode, OmsConfig, TriggerSource};
pub use error::{IllegalTransition, InvariantViolation, OmsConfigError, SnapshotError, VenueEvent};
pub use manager::{CommandOutcome, NewOrderView, OmsCounters, OpenOrders, OrderManager};
pub use order::{
    Deferred, Fill, Liquidity, Order, OrderStatus, Pending, PriorityEffect, ReplaceRequest,
};
