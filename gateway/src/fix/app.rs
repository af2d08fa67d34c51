//! Application messages: FIX requests from the desk to the engine's order commands, and the
//! engine's order events, books and positions to FIX responses.
//!
//! Pure functions, no I/O, no clock: [`decode`] turns a validated inbound message
//! ([`super::dictionary::validate`] passed) into a [`DeskRequest`] or an [`AppReject`];
//! the `encode_*` functions write the *body* of a response (the caller has called
//! [`Encoder::begin`](super::codec::Encoder::begin) with the MsgType and written the
//! standard header; it calls `finish` afterwards). Nothing allocates per message: ids
//! live inline ([`ReqId`], [`aaiti_model::ClientOrderId`]), symbols are looked up in an
//! index built once ([`DeskContext::new`]), values are written straight into the encoder.
//!
//! # Requests
//!
//! | MsgType | becomes | who may send it |
//! |---|---|---|
//! | D NewOrderSingle | [`DeskRequest::Order`] (`OrderAction::New`) | trader, admin |
//! | F OrderCancelRequest | [`DeskRequest::Order`] (`Cancel`) | trader, admin |
//! | G OrderCancelReplaceRequest | [`DeskRequest::Order`] (`Replace`) | trader, admin |
//! | H OrderStatusRequest | [`DeskRequest::Status`] (`OrderAction::Status`) | every role |
//! | V MarketDataRequest | [`DeskRequest::MarketData`] | every role |
//! | AN RequestForPositions | [`DeskRequest::Positions`] | every role |
//! | U1 AdminRequest | [`DeskRequest::Admin`] | admin |
//!
//! Order fields: 54 Side `1` buy, `2` sell; 40 OrdType `1` market, `2` limit, `3` stop,
//! `4` stop-limit; 59 TimeInForce `0` Day (also when absent), `1` GTC, `3` IOC, `4` FOK,
//! `6` GTD with 126 ExpireTime (required with GTD, refused without); 18 ExecInst `6`
//! (participate, don't initiate) = post-only, `E` (do not increase) = reduce-only, any
//! other value refused; 21 HandlInst `1`/`2` (automated) or absent, `3` (manual) refused;
//! 1 Account by name (absent: the session's default account), which must be one the
//! session may use; 55 Symbol on 207 SecurityExchange, the venue's name (absent: the
//! session's default venue); 38/44/99 parsed exactly at the instrument's quantity and price
//! scales (more significant decimals than the scale are refused, never rounded; ticks, lots
//! and limits are the engine's to check); 44 on a type without a limit price or 99 on one
//! without a stop is refused; 11 ClOrdID and 41 OrigClOrdID must be 1 to 40 printable
//! ASCII bytes; 37 OrderID, when given, must be an engine order id (digits). For H the
//! order is named by 37 and/or 11 (carried in `orig_client_order_id`).
//!
//! # Rejects
//!
//! An [`AppReject`] says what to answer; [`AppReject::msg_type`] gives the MsgType and
//! [`encode_app_reject`] writes it from the request itself (so nothing is copied out of the
//! request on the reject path, and the desk gets its own values back byte for byte):
//!
//! | variant | answer |
//! |---|---|
//! | [`AppReject::Session`] | Reject (3): a field missing or malformed in a message that skipped [`validate`](super::dictionary::validate), an id too long |
//! | [`AppReject::Business`] | BusinessMessageReject (j), BusinessRejectRefID = the request's id (11, 790, 262, 710 or 20000): role not allowed (6), unsupported type (3), conditionally required field missing (5), status requests that name nothing we know |
//! | [`AppReject::Order`] | D: ExecutionReport (8) ExecType/OrdStatus `8` with OrdRejReason; F/G: OrderCancelReject (9) with CxlRejReason |
//! | [`AppReject::MarketData`] | MarketDataRequestReject (Y) |
//! | [`AppReject::Positions`] | RequestForPositionsAck (AO), PosReqStatus 2 |
//! | [`AppReject::Admin`] | AdminResponse (U2), AdminStatus 1 |
//!
//! # Engine events to ExecutionReports
//!
//! | OrderEventKind | ExecType (150) | OrdStatus (39) |
//! |---|---|---|
//! | PendingNew | `A` pending new | `A` |
//! | Accepted | `0` new | `0` (`1` if already partly filled) |
//! | Rejected | `8` rejected | `8`, with 103 OrdRejReason and 58 the reason's name |
//! | PartiallyFilled | `F` trade | `1` |
//! | Filled | `F` trade | `2` |
//! | PendingCancel | `6` pending cancel | `6` |
//! | Canceled | `4` canceled | `4` |
//! | PendingReplace | `E` pending replace | `E` |
//! | Replaced | `5` replaced | `0`, `1` or `2` from the quantities |
//! | Expired | `C` expired | `C` |
//! | Triggered | `L` triggered or activated by system | `0` or `1` |
//! | CancelRejected | answered with OrderCancelReject (9), see [`order_event_msg_type`] | (`I` order status, if encoded as a report anyway) |
//!
//! ExecID (17) is `<OrderID>-<exec_id>` for fills (the venue's execution id, unique per
//! order), `<OrderID>-e<seq>` for other events (`seq` = the event record's sequence in the
//! engine's order-event stream, [`ReportStamp::seq`]), and `r<seq>` for the gateway's own
//! rejects of D. OrderID (37) is the engine's order id, `NONE` when there is none.
//! Fills carry 32/31, 851 LastLiquidityInd when the venue said, and 12 Commission with
//! 13 CommType `3` (absolute; negative for a rebate).
//!
//! [`aaiti_model::RejectReason`] to OrdRejReason (103) and CxlRejReason (102): see
//! [`ord_rej_reason`] and [`cxl_rej_reason`].
//!
//! # The admin messages (user-defined)
//!
//! `35=U1` AdminRequest, desk to gateway, admin sessions only. Body fields, in this order
//! (`|` stands for SOH):
//!
//! | tag | name | type | required | meaning |
//! |---:|---|---|---|---|
//! | 20000 | AdminReqID | String, 1-40 bytes | yes | echoed in the response |
//! | 20001 | AdminAction | char | yes | `H` halt, `R` resume, `K` kill switch, `F` kill switch and flatten, `S` risk state request |
//! | 1 | Account | String | no | the account acted on; absent: global |
//!
//! ```text
//! 8=FIX.4.4|9=83|35=U1|49=DESK|56=AAITI|34=12|52=20240101-12:00:00.000|20000=adm-7|20001=H|1=acct-a|10=NNN|
//! ```
//!
//! `35=U2` AdminResponse, gateway to desk:
//!
//! | tag | name | type | required | meaning |
//! |---:|---|---|---|---|
//! | 20000 | AdminReqID | String | yes | the request's |
//! | 20001 | AdminAction | char | no | the request's, when known |
//! | 1 | Account | String | no | the request's |
//! | 20002 | AdminStatus | int | yes | `0` applied, `1` refused |
//! | 58 | Text | String | no | why refused, or a note |
//! | 20003 | RiskState | String | no | the risk state as JSON text (UTF-8; never contains SOH, JSON escapes control bytes), for `S` |
//!
//! ```text
//! 8=FIX.4.4|9=...|35=U2|49=AAITI|56=DESK|34=40|52=...|20000=adm-7|20001=S|20002=0|20003={"halted":false}|10=NNN|
//! ```

mod decode;
mod encode;
mod orders;

use aaiti_model::{AccountId, Instrument, InstrumentId, InstrumentRegistry, VenueId};

pub use decode::decode;
pub use encode::{
    AdminResponse, AdminStatus, EncodeError, LevelAction, LevelChange, PositionReport,
    PositionsAck, ReportStamp, StatusReport, cxl_rej_reason, encode_admin_response,
    encode_app_reject, encode_business_reject, encode_cancel_reject, encode_execution_report,
    encode_md_incremental, encode_md_reject, encode_md_snapshot, encode_order_event,
    encode_position_report, encode_positions_ack, encode_status_report, ord_rej_reason,
    order_event_msg_type,
};
pub use orders::{DeskOrders, DeskOrdersFull, OrderInfo, OrderSlot, PendingRequest, RequestKind};

use super::Reject;
use super::codec::{Field, Message, value_word};

// ---------------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------------

/// What the gateway knows about the engine, shared by every session: instruments and
/// accounts (an account's id is its index in `accounts`). Built once at start-up.
#[derive(Debug, Clone)]
pub struct DeskContext<'a> {
    registry: &'a InstrumentRegistry,
    accounts: &'a [String],
    /// Instrument ids sorted by (symbol bytes, venue): binary search without allocating
    /// (the registry's own lookup takes an owned `String`). Used for symbols longer than
    /// [`NameKey::MAX`].
    by_symbol: Vec<InstrumentId>,
    /// Every instrument by (symbol key, venue) in an open-addressing hash table (linear
    /// probing, a power of two at least twice the instruments, empty places hold
    /// [`NameKey::NONE`]): the lookup of an order's symbol is a hash and a compare or two
    /// of integers. Symbols longer than [`NameKey::MAX`] are not in it.
    by_key: Vec<(NameKey, VenueId, InstrumentId)>,
    /// The key of each account name, in id order ([`NameKey::NONE`] for long names).
    account_keys: Vec<NameKey>,
    /// The key of each venue name, in id order ([`NameKey::NONE`] for long names).
    venue_keys: Vec<NameKey>,
}

/// A name of at most [`NameKey::MAX`] bytes as three integers, so that looking an
/// account, venue or symbol up in a request compares words rather than calling
/// `memcmp` on each candidate: its first eight bytes and its next eight, zero-padded, and
/// its length (which tells a name ending in NUL bytes from a shorter one). Two names get
/// the same key exactly when they are equal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct NameKey {
    head: u64,
    tail: u64,
    len: u64,
}

impl NameKey {
    /// Longest name with a key.
    const MAX: usize = 16;
    /// Matches no name (no name has this length).
    const NONE: Self = Self {
        head: 0,
        tail: 0,
        len: u64::MAX,
    };

    /// The key of `name`; `None` if it is longer than [`NameKey::MAX`].
    #[inline]
    fn new(name: &[u8]) -> Option<Self> {
        (name.len() <= Self::MAX).then(|| Self {
            head: value_word(name, 0),
            tail: value_word(name, 8),
            len: name.len() as u64,
        })
    }

    /// The key of `field`'s value in `msg`: two words loaded from the message and masked
    /// to the value's length where the message holds 16 bytes from its start (nearly
    /// always: fields follow), else from the value's bytes.
    #[inline(always)]
    fn in_message(msg: &Message<'_>, field: &Field) -> Option<Self> {
        let start = field.start as usize;
        let len = field.end.saturating_sub(field.start) as usize;
        if len > Self::MAX {
            return None;
        }
        let Some(words) = msg.bytes().get(start..).and_then(<[u8]>::first_chunk::<16>) else {
            return Self::new(msg.value(field));
        };
        let (head, tail) = words.split_at(8);
        let word = |half: &[u8]| {
            half.first_chunk::<8>()
                .map_or(0, |w| u64::from_le_bytes(*w))
        };
        let head_mask = if len >= 8 {
            u64::MAX
        } else {
            (1 << (8 * len)) - 1
        };
        let tail_mask = match len {
            16 => u64::MAX,
            9..=15 => (1 << (8 * (len - 8))) - 1,
            _ => 0,
        };
        Some(Self {
            head: word(head) & head_mask,
            tail: word(tail) & tail_mask,
            len: len as u64,
        })
    }

    /// The key of a configured name: [`NameKey::NONE`] if it is too long to have one (no
    /// name looked up by key can equal it).
    fn of(name: &str) -> Self {
        Self::new(name.as_bytes()).unwrap_or(Self::NONE)
    }

    /// Where (symbol `self`, `venue`) starts probing in a table of `mask + 1` places.
    #[inline]
    fn place(&self, venue: VenueId, mask: usize) -> usize {
        let mixed = self.head
            ^ self.tail.rotate_left(29)
            ^ self.len.rotate_left(53)
            ^ (u64::from(venue.0) << 40);
        (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
    }
}

/// A name from a request (account, venue, symbol): its bytes and, when it is short
/// enough, its [`NameKey`].
#[derive(Copy, Clone, Debug)]
struct Name<'a> {
    bytes: &'a [u8],
    key: Option<NameKey>,
}

impl<'a> Name<'a> {
    /// `bytes` as a name.
    #[inline]
    fn of(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            key: NameKey::new(bytes),
        }
    }

    /// The value of `field` as a name, its key read from the message a word at a time.
    #[inline(always)]
    fn in_message(msg: &Message<'a>, field: &Field) -> Self {
        Self {
            bytes: msg.value(field),
            key: NameKey::in_message(msg, field),
        }
    }
}

/// The open-addressing table of [`DeskContext::by_key`] for `instruments`.
fn symbol_table(instruments: &[Instrument]) -> Vec<(NameKey, VenueId, InstrumentId)> {
    let places = (2 * instruments.len()).next_power_of_two().max(2);
    let mut table = vec![(NameKey::NONE, VenueId(0), InstrumentId(0)); places];
    let mask = places - 1;
    for instrument in instruments {
        let Some(key) = NameKey::new(instrument.symbol.as_bytes()) else {
            continue;
        };
        let mut place = key.place(instrument.venue, mask);
        // At least half the places stay empty: a free one is always found.
        while table[place].0 != NameKey::NONE {
            place = (place + 1) & mask;
        }
        table[place] = (key, instrument.venue, instrument.id);
    }
    table
}

/// Why a [`DeskContext`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// More accounts than an [`AccountSet`] holds.
    #[error("{count} accounts configured; the FIX gateway serves at most {max}")]
    TooManyAccounts {
        /// Accounts given.
        count: usize,
        /// [`AccountSet::CAPACITY`].
        max: usize,
    },
    /// A name the gateway would write into FIX fields is empty or has a control byte (SOH
    /// would break the framing).
    #[error("{what} name {name:?} is empty or contains a control byte")]
    BadName {
        /// "account", "symbol" or "venue".
        what: &'static str,
        /// The name.
        name: String,
    },
}

fn is_fix_text(name: &str) -> bool {
    !name.is_empty() && !name.bytes().any(|b| b < 0x20 || b == 0x7f)
}

impl<'a> DeskContext<'a> {
    /// Indexes `registry` and `accounts`.
    ///
    /// # Errors
    ///
    /// More than [`AccountSet::CAPACITY`] accounts, or a name that cannot go into a FIX
    /// field.
    pub fn new(
        registry: &'a InstrumentRegistry,
        accounts: &'a [String],
    ) -> Result<Self, ContextError> {
        if accounts.len() > AccountSet::CAPACITY {
            return Err(ContextError::TooManyAccounts {
                count: accounts.len(),
                max: AccountSet::CAPACITY,
            });
        }
        let bad = |what, name: &str| ContextError::BadName {
            what,
            name: name.to_owned(),
        };
        if let Some(name) = accounts.iter().find(|a| !is_fix_text(a)) {
            return Err(bad("account", name));
        }
        for instrument in registry.instruments() {
            if !is_fix_text(&instrument.symbol) {
                return Err(bad("symbol", &instrument.symbol));
            }
            let venue = registry.venue_name(instrument.venue).unwrap_or("");
            if !is_fix_text(venue) {
                return Err(bad("venue", venue));
            }
        }
        let mut by_symbol: Vec<InstrumentId> =
            registry.instruments().iter().map(|i| i.id).collect();
        by_symbol.sort_by(|a, b| {
            let key = |id: &InstrumentId| registry.get(*id).map(|i| (i.symbol.as_bytes(), i.venue));
            key(a).cmp(&key(b))
        });
        let venue_keys = (0..=u16::MAX)
            .map_while(|id| registry.venue_name(VenueId(id)))
            .map(NameKey::of)
            .collect();
        Ok(Self {
            registry,
            accounts,
            by_symbol,
            by_key: symbol_table(registry.instruments()),
            account_keys: accounts.iter().map(|a| NameKey::of(a)).collect(),
            venue_keys,
        })
    }

    /// The instrument registry.
    pub fn registry(&self) -> &'a InstrumentRegistry {
        self.registry
    }

    /// The account named `name` (FIX tag 1).
    pub fn account_id(&self, name: &[u8]) -> Option<AccountId> {
        self.account_named(Name::of(name))
    }

    /// [`DeskContext::account_id`] of a name from a request.
    #[inline]
    fn account_named(&self, name: Name<'_>) -> Option<AccountId> {
        let index = match name.key {
            Some(key) => self.account_keys.iter().position(|&k| k == key),
            None => self
                .accounts
                .iter()
                .position(|a| a.as_bytes() == name.bytes),
        };
        index.map(|index| AccountId(index as u32))
    }

    /// The name of account `id`.
    pub fn account_name(&self, id: AccountId) -> Option<&'a str> {
        self.accounts.get(id.index()).map(String::as_str)
    }

    /// The venue named `name` (FIX tag 207).
    pub fn venue_id(&self, name: &[u8]) -> Option<VenueId> {
        self.venue_named(Name::of(name))
    }

    /// [`DeskContext::venue_id`] of a name from a request.
    #[inline]
    fn venue_named(&self, name: Name<'_>) -> Option<VenueId> {
        if let Some(key) = name.key {
            return self
                .venue_keys
                .iter()
                .position(|&k| k == key)
                .map(|index| VenueId(index as u16));
        }
        // Bytes against the registry's names in id order (no UTF-8 check on the hot path).
        (0..=u16::MAX)
            .map(VenueId)
            .map_while(|id| self.registry.venue_name(id).map(|venue| (id, venue)))
            .find(|(_, venue)| venue.as_bytes() == name.bytes)
            .map(|(id, _)| id)
    }

    /// The instrument `symbol` on `venue`.
    pub fn instrument(&self, venue: VenueId, symbol: &[u8]) -> Option<&'a Instrument> {
        self.instrument_named(venue, Name::of(symbol))
    }

    /// [`DeskContext::instrument`] of a symbol from a request.
    #[inline]
    fn instrument_named(&self, venue: VenueId, symbol: Name<'_>) -> Option<&'a Instrument> {
        let registry = self.registry;
        if let Some(key) = symbol.key {
            let mask = self.by_key.len() - 1;
            let mut place = key.place(venue, mask);
            // Probing ends at an empty place (there is always one).
            for _ in 0..self.by_key.len() {
                let &(k, v, id) = self.by_key.get(place)?;
                if k == key && v == venue {
                    return registry.get(id);
                }
                if k == NameKey::NONE {
                    return None;
                }
                place = (place + 1) & mask;
            }
            return None;
        }
        let index = self
            .by_symbol
            .binary_search_by(|id| match registry.get(*id) {
                Some(i) => (i.symbol.as_bytes(), i.venue).cmp(&(symbol.bytes, venue)),
                None => std::cmp::Ordering::Less,
            })
            .ok()?;
        self.by_symbol.get(index).and_then(|id| registry.get(*id))
    }
}

pub use super::session::Role;

impl Role {
    /// May send D, F, G.
    pub const fn may_trade(self) -> bool {
        matches!(self, Self::Trader | Self::Admin)
    }

    /// May send U1.
    pub const fn may_administer(self) -> bool {
        matches!(self, Self::Admin)
    }
}

/// A set of account ids below [`AccountSet::CAPACITY`], as a bitset (`Copy`, 32 bytes).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccountSet([u64; 4]);

impl AccountSet {
    /// Accounts a set can hold (ids `0..256`).
    pub const CAPACITY: usize = 256;
    /// No account.
    pub const EMPTY: Self = Self([0; 4]);

    /// Adds `id`; false if it is beyond the capacity (and so not added).
    pub fn insert(&mut self, id: AccountId) -> bool {
        let index = id.index();
        match self.0.get_mut(index / 64) {
            Some(word) => {
                *word |= 1 << (index % 64);
                true
            }
            None => false,
        }
    }

    /// True if `id` is in the set.
    pub fn contains(&self, id: AccountId) -> bool {
        let index = id.index();
        self.0
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }
}

/// Per-session parameters (from the session's configuration).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SessionScope {
    /// What the session may do.
    pub role: Role,
    /// The account of requests without tag 1 (it must be in `allowed_accounts` too).
    pub default_account: AccountId,
    /// The accounts the session's orders, status and position requests may name. Admin
    /// requests (U1) may name any account.
    pub allowed_accounts: AccountSet,
    /// The venue of instruments without tag 207.
    pub default_venue: VenueId,
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A request id (MDReqID 262, PosReqID 710, AdminReqID 20000, OrdStatusReqID 790) kept
/// inline: 1 to [`ReqId::CAPACITY`] bytes, no SOH.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct ReqId {
    len: u8,
    bytes: [u8; ReqId::CAPACITY],
}

impl ReqId {
    /// Longest id accepted.
    pub const CAPACITY: usize = 40;

    /// Copies `value`; `None` if it is empty, longer than the capacity or has a SOH.
    pub fn new(value: &[u8]) -> Option<Self> {
        if value.is_empty() || value.len() > Self::CAPACITY || value.contains(&0x01) {
            return None;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..value.len()].copy_from_slice(value);
        Some(Self {
            len: value.len() as u8,
            bytes,
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(Self::CAPACITY)]
    }
}

impl std::fmt::Debug for ReqId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReqId({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// SubscriptionRequestType (263).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// `0`: one snapshot.
    Snapshot,
    /// `1`: a snapshot, then updates.
    Subscribe,
    /// `2`: end the subscription with this request id.
    Unsubscribe,
}

/// MDUpdateType (265): how a subscription's updates come.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MdUpdateType {
    /// `0`: a full snapshot (W) on every change.
    FullRefresh,
    /// `1`: level changes (X).
    Incremental,
}

/// Most instruments one MarketDataRequest may name.
pub const MAX_MD_INSTRUMENTS: usize = 16;

/// A MarketDataRequest (V).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MarketDataRequest {
    /// MDReqID (262).
    pub md_req_id: ReqId,
    /// SubscriptionRequestType (263).
    pub subscription: Subscription,
    /// MarketDepth (264): 0 the full book, 1 top of book, N levels.
    pub depth: u32,
    /// MDUpdateType (265); `FullRefresh` when absent (snapshots, unsubscribes).
    pub update_type: MdUpdateType,
    /// Bids requested (269 = `0`).
    pub bids: bool,
    /// Offers requested (269 = `1`).
    pub offers: bool,
    instruments: [InstrumentId; MAX_MD_INSTRUMENTS],
    instrument_count: u8,
}

impl MarketDataRequest {
    /// The instruments (146 NoRelatedSym), in request order.
    pub fn instruments(&self) -> &[InstrumentId] {
        &self.instruments[..usize::from(self.instrument_count).min(MAX_MD_INSTRUMENTS)]
    }
}

/// A RequestForPositions (AN).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PositionsRequest {
    /// PosReqID (710).
    pub pos_req_id: ReqId,
    /// Account (1, or the session's default).
    pub account: AccountId,
    /// One instrument (55/207), or all.
    pub instrument: Option<InstrumentId>,
    /// SubscriptionRequestType (263); `Snapshot` when absent.
    pub subscription: Subscription,
}

/// AdminAction (20001).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AdminAction {
    /// `H`: halt trading (cancels open orders).
    Halt,
    /// `R`: resume trading.
    Resume,
    /// `K`: engage the kill switch.
    KillSwitch,
    /// `F`: engage the kill switch and flatten positions.
    KillSwitchFlatten,
    /// `S`: report the risk state.
    RiskState,
}

impl AdminAction {
    /// The FIX character.
    pub const fn code(self) -> u8 {
        match self {
            Self::Halt => b'H',
            Self::Resume => b'R',
            Self::KillSwitch => b'K',
            Self::KillSwitchFlatten => b'F',
            Self::RiskState => b'S',
        }
    }

    /// The action of a FIX character.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            b'H' => Self::Halt,
            b'R' => Self::Resume,
            b'K' => Self::KillSwitch,
            b'F' => Self::KillSwitchFlatten,
            b'S' => Self::RiskState,
            _ => return None,
        })
    }
}

/// An AdminRequest (U1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    /// AdminReqID (20000).
    pub admin_req_id: ReqId,
    /// AdminAction (20001).
    pub action: AdminAction,
    /// Account (1); `None`: global.
    pub account: Option<AccountId>,
}

/// A decoded desk request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DeskRequest {
    /// D, F, G: a New, Cancel or Replace command for the engine.
    Order(aaiti_model::OrderCommand),
    /// H: an `OrderAction::Status` command (the order named by `order_id` and/or
    /// `orig_client_order_id`) and the OrdStatusReqID (790) to echo.
    Status {
        /// The command.
        command: aaiti_model::OrderCommand,
        /// OrdStatusReqID (790).
        ord_status_req_id: Option<ReqId>,
    },
    /// V.
    MarketData(MarketDataRequest),
    /// AN.
    Positions(PositionsRequest),
    /// U1.
    Admin(AdminRequest),
}

// ---------------------------------------------------------------------------------------
// Rejects
// ---------------------------------------------------------------------------------------

/// BusinessRejectReason (380).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BusinessReason {
    /// 0.
    Other,
    /// 1: unknown id.
    UnknownId,
    /// 2: unknown security.
    UnknownSecurity,
    /// 3: unsupported message type.
    UnsupportedMsgType,
    /// 4: application not available.
    ApplicationNotAvailable,
    /// 5: conditionally required field missing.
    ConditionallyRequiredFieldMissing,
    /// 6: not authorized.
    NotAuthorized,
    /// 7: DeliverTo firm not available at this time.
    DeliverToFirmNotAvailable,
}

impl BusinessReason {
    /// The FIX code.
    pub const fn code(self) -> u32 {
        match self {
            Self::Other => 0,
            Self::UnknownId => 1,
            Self::UnknownSecurity => 2,
            Self::UnsupportedMsgType => 3,
            Self::ApplicationNotAvailable => 4,
            Self::ConditionallyRequiredFieldMissing => 5,
            Self::NotAuthorized => 6,
            Self::DeliverToFirmNotAvailable => 7,
        }
    }
}

/// MDReqRejReason (281).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MdRejectReason {
    /// `0`.
    UnknownSymbol,
    /// `1`.
    DuplicateMdReqId,
    /// `2` (also: more than [`MAX_MD_INSTRUMENTS`] instruments in one request).
    InsufficientBandwidth,
    /// `3`.
    InsufficientPermissions,
    /// `4`.
    UnsupportedSubscriptionRequestType,
    /// `5`.
    UnsupportedMarketDepth,
    /// `6`.
    UnsupportedMdUpdateType,
    /// `7`.
    UnsupportedAggregatedBook,
    /// `8`.
    UnsupportedMdEntryType,
}

impl MdRejectReason {
    /// The FIX character.
    pub const fn code(self) -> u8 {
        match self {
            Self::UnknownSymbol => b'0',
            Self::DuplicateMdReqId => b'1',
            Self::InsufficientBandwidth => b'2',
            Self::InsufficientPermissions => b'3',
            Self::UnsupportedSubscriptionRequestType => b'4',
            Self::UnsupportedMarketDepth => b'5',
            Self::UnsupportedMdUpdateType => b'6',
            Self::UnsupportedAggregatedBook => b'7',
            Self::UnsupportedMdEntryType => b'8',
        }
    }
}

/// PosReqResult (728).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PosReqResult {
    /// 0: valid request.
    Valid,
    /// 1: invalid or unsupported request.
    InvalidOrUnsupported,
    /// 2: no positions found.
    NoPositions,
    /// 3: not authorized.
    NotAuthorized,
    /// 4: request for position not supported.
    NotSupported,
    /// 99.
    Other,
}

impl PosReqResult {
    /// The FIX code.
    pub const fn code(self) -> u32 {
        match self {
            Self::Valid => 0,
            Self::InvalidOrUnsupported => 1,
            Self::NoPositions => 2,
            Self::NotAuthorized => 3,
            Self::NotSupported => 4,
            Self::Other => 99,
        }
    }
}

/// Why [`decode`] refused a request, and so what to answer (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AppReject {
    /// Reject (3).
    Session(Reject),
    /// BusinessMessageReject (j).
    Business {
        /// BusinessRejectReason (380).
        reason: BusinessReason,
        /// Text (58).
        text: &'static str,
    },
    /// D: ExecutionReport rejected; F/G: OrderCancelReject.
    Order {
        /// Mapped to OrdRejReason (103) or CxlRejReason (102).
        reason: aaiti_model::RejectReason,
        /// Text (58).
        text: &'static str,
    },
    /// MarketDataRequestReject (Y).
    MarketData {
        /// MDReqRejReason (281).
        reason: MdRejectReason,
        /// Text (58).
        text: &'static str,
    },
    /// RequestForPositionsAck (AO) rejecting the request.
    Positions {
        /// PosReqResult (728).
        result: PosReqResult,
        /// Text (58).
        text: &'static str,
    },
    /// AdminResponse (U2) refusing the request.
    Admin {
        /// Text (58).
        text: &'static str,
    },
}

impl AppReject {
    /// The MsgType of the answer to a request of type `request_msg_type`.
    pub fn msg_type(&self, request_msg_type: &[u8]) -> &'static [u8] {
        match self {
            Self::Session(_) => b"3",
            Self::Business { .. } => b"j",
            Self::Order { .. } if request_msg_type == b"D" => b"8",
            Self::Order { .. } => b"9",
            Self::MarketData { .. } => b"Y",
            Self::Positions { .. } => b"AO",
            Self::Admin { .. } => b"U2",
        }
    }

    /// The text (58) of the answer.
    pub fn text(&self) -> &'static str {
        match self {
            Self::Session(reject) => reject.text,
            Self::Business { text, .. }
            | Self::Order { text, .. }
            | Self::MarketData { text, .. }
            | Self::Positions { text, .. }
            | Self::Admin { text } => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::codec::{Parser, checksum};

    /// A name's key read from a message (masked words) equals its key from its bytes, for
    /// every length to past the limit, with fields after it and at the end of a message.
    #[test]
    fn name_keys_from_messages_match_keys_from_bytes() {
        let mut parser = Parser::new();
        for len in 1..=20 {
            let name: Vec<u8> = (0..len).map(|i| b'A' + (i as u8 % 26)).collect();
            for after in [&b""[..], b"58=a-long-trailing-text-field\x01"] {
                let mut body = b"35=D\x0155=".to_vec();
                body.extend_from_slice(&name);
                body.push(0x01);
                body.extend_from_slice(after);
                let mut bytes = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
                bytes.extend_from_slice(&body);
                let sum = checksum(&bytes);
                bytes.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
                let msg = parser.parse(&bytes).unwrap();
                let field = msg.fields()[3];
                assert_eq!(
                    NameKey::in_message(&msg, &field),
                    NameKey::new(&name),
                    "{len}"
                );
            }
        }
        // Names that differ only past their length, or by trailing NULs, differ.
        assert_ne!(NameKey::new(b"AB"), NameKey::new(b"AB\0"));
        assert_ne!(NameKey::new(b"ABCDEFGHI"), NameKey::new(b"ABCDEFGHJ"));
    }

    /// Lookups by key find what the byte comparisons found.
    #[test]
    fn context_lookups_find_every_name() {
        let spec = |venue: &str, symbol: &str| aaiti_model::InstrumentSpec {
            venue: venue.into(),
            symbol: symbol.into(),
            base: "B".into(),
            quote: "Q".into(),
            price_scale: 2,
            qty_scale: 5,
            tick_size: "0.01".into(),
            lot_size: "0.00001".into(),
            min_notional: "5".into(),
        };
        let mut specs = vec![
            spec("binance", "BTCUSDT"),
            spec("coinbase", "BTCUSDT"),
            spec("coinbase", "A-VERY-LONG-SYMBOL-NAME"),
            spec("a-venue-with-a-long-name", "X"),
        ];
        for i in 0..40 {
            specs.push(spec("kraken", &format!("S{i}")));
        }
        let registry = InstrumentRegistry::from_specs(&specs).unwrap();
        let accounts = vec![
            "desk-a".to_owned(),
            "an-account-with-a-long-name".to_owned(),
        ];
        let ctx = DeskContext::new(&registry, &accounts).unwrap();
        for instrument in registry.instruments() {
            assert_eq!(
                ctx.instrument(instrument.venue, instrument.symbol.as_bytes())
                    .map(|i| i.id),
                Some(instrument.id)
            );
            let venue = registry.venue_name(instrument.venue).unwrap();
            assert_eq!(ctx.venue_id(venue.as_bytes()), Some(instrument.venue));
        }
        assert!(ctx.instrument(VenueId(0), b"ETHUSDT").is_none());
        assert!(ctx.instrument(VenueId(2), b"BTCUSDT").is_none());
        assert!(ctx.venue_id(b"nowhere").is_none());
        assert_eq!(ctx.account_id(b"desk-a"), Some(AccountId(0)));
        assert_eq!(
            ctx.account_id(b"an-account-with-a-long-name"),
            Some(AccountId(1))
        );
        assert_eq!(ctx.account_id(b"desk-"), None);
    }
}
