//! Record filters shared by `dump`, `export` and `tail`.

use aaiti_journal::{Frame, FrameBody};
use aaiti_model::{
    AccountId, BookCheck, BookDelta, Control, Envelope, FeedEvent, InstrumentId,
    InstrumentRegistry, ModelEvent, OrderCommand, OrderEvent, RecordKind, RiskEvent, Signal,
    TopOfBook, Trade, VenueReport, VenueRequest,
};

use super::error::CliError;

/// What a record is, for `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindSel {
    /// An envelope of this kind.
    Record(RecordKind),
    /// A blob (any blob kind).
    Blob,
}

/// Parses `--kind` names (comma-separated, repeatable): the record kind names
/// (`book_delta`, `trade`, ...) and `blob`.
///
/// # Errors
///
/// [`CliError::Usage`] naming the unknown kind and the known ones.
pub(crate) fn parse_kinds(names: &[String]) -> Result<Vec<KindSel>, CliError> {
    let mut kinds = Vec::new();
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let kind = if name == "blob" {
            KindSel::Blob
        } else if let Some(kind) = RecordKind::from_name(name) {
            KindSel::Record(kind)
        } else {
            let known: Vec<&str> = RecordKind::ALL.iter().map(|k| k.name()).collect();
            return Err(CliError::Usage(format!(
                "unknown record kind {name:?}; known kinds: {}, blob",
                known.join(", ")
            )));
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// Resolves `--instrument`: a registry id, a symbol, or `venue:symbol` when a symbol is
/// listed on several venues.
///
/// # Errors
///
/// [`CliError::Usage`] for an unknown or ambiguous symbol.
pub(crate) fn parse_instrument(
    text: &str,
    registry: &InstrumentRegistry,
) -> Result<InstrumentId, CliError> {
    if let Ok(id) = text.parse::<u32>() {
        return Ok(InstrumentId(id));
    }
    if let Some((venue, symbol)) = text.split_once(':')
        && let Some(venue_id) = registry.venue_id(venue)
        && let Some(id) = registry.find(venue_id, symbol)
    {
        return Ok(id);
    }
    let matches: Vec<&aaiti_model::Instrument> = registry
        .instruments()
        .iter()
        .filter(|i| i.symbol.eq_ignore_ascii_case(text))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CliError::Usage(format!(
            "unknown instrument {text:?}: give a registry id or one of the configured symbols \
             (see `stats`), optionally as venue:symbol"
        ))),
        several => Err(CliError::Usage(format!(
            "instrument {text:?} is listed on several venues ({}); write venue:symbol",
            several
                .iter()
                .filter_map(|i| registry.venue_name(i.venue))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// An order given as an engine order id (a number) or a client order id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    /// The text given.
    pub text: String,
    /// The text as a number, if it is one.
    pub id: Option<u64>,
}

impl OrderRef {
    /// Parses the argument.
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            id: text.parse().ok(),
        }
    }
}

/// The instrument a record concerns, if it has one.
pub(crate) fn instrument_of(envelope: &Envelope) -> Option<InstrumentId> {
    let kind = envelope.kind().ok()?;
    Some(match kind {
        RecordKind::BookDelta => envelope.payload::<BookDelta>()?.instrument,
        RecordKind::Trade => envelope.payload::<Trade>()?.instrument,
        RecordKind::TopOfBook => envelope.payload::<TopOfBook>()?.instrument,
        RecordKind::FeedEvent => envelope.payload::<FeedEvent>()?.instrument,
        RecordKind::BookCheck => envelope.payload::<BookCheck>()?.instrument,
        RecordKind::OrderCommand => envelope.payload::<OrderCommand>()?.instrument,
        RecordKind::OrderEvent => envelope.payload::<OrderEvent>()?.instrument,
        RecordKind::RiskEvent => envelope.payload::<RiskEvent>()?.instrument,
        RecordKind::VenueReport => envelope.payload::<VenueReport>()?.instrument,
        RecordKind::VenueRequest => envelope.payload::<VenueRequest>()?.instrument,
        RecordKind::Signal => envelope.payload::<Signal>()?.instrument,
        RecordKind::ModelEvent => envelope.payload::<ModelEvent>()?.instrument,
        RecordKind::Control => return None,
    })
}

/// The account a record concerns, if it has one.
pub(crate) fn account_of(envelope: &Envelope) -> Option<AccountId> {
    Some(match envelope.kind().ok()? {
        RecordKind::OrderCommand => envelope.payload::<OrderCommand>()?.account,
        RecordKind::OrderEvent => envelope.payload::<OrderEvent>()?.account,
        RecordKind::RiskEvent => envelope.payload::<RiskEvent>()?.account,
        RecordKind::VenueRequest => envelope.payload::<VenueRequest>()?.account,
        RecordKind::Control => envelope.payload::<Control>()?.account,
        _ => return None,
    })
}

/// True if an order record (command, event, risk event) refers to `order`, by engine order
/// id or client order id.
pub(crate) fn matches_order(envelope: &Envelope, order: &OrderRef) -> bool {
    let id_is = |id: u64| id != 0 && order.id == Some(id);
    let cl_is =
        |cl: &aaiti_model::ClientOrderId| !cl.is_none() && cl.as_bytes() == order.text.as_bytes();
    if let Some(c) = envelope.payload::<OrderCommand>() {
        return id_is(c.order_id.0) || cl_is(&c.client_order_id) || cl_is(&c.orig_client_order_id);
    }
    if let Some(e) = envelope.payload::<OrderEvent>() {
        return id_is(e.order_id.0) || cl_is(&e.client_order_id);
    }
    if let Some(r) = envelope.payload::<RiskEvent>() {
        return id_is(r.order_id.0);
    }
    if let Some(r) = envelope.payload::<VenueReport>() {
        return id_is(r.order_id.0);
    }
    if let Some(r) = envelope.payload::<VenueRequest>() {
        return id_is(r.order_id.0) || cl_is(&r.client_order_id);
    }
    false
}

/// A record filter; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Kinds to keep (empty: all).
    pub kinds: Vec<KindSel>,
    /// Instrument.
    pub instrument: Option<InstrumentId>,
    /// Account.
    pub account: Option<AccountId>,
    /// Order (engine or client order id).
    pub order: Option<OrderRef>,
    /// First journal sequence (inclusive).
    pub from_seq: Option<u64>,
    /// Last journal sequence (inclusive).
    pub to_seq: Option<u64>,
    /// Earliest `ts_recv` (inclusive, ns).
    pub from_time: Option<u64>,
    /// Latest `ts_recv` (inclusive, ns).
    pub to_time: Option<u64>,
}

impl Filter {
    /// True when the filter matches every record.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && !self.payload_filters()
            && self.from_seq.is_none()
            && self.to_seq.is_none()
            && self.from_time.is_none()
            && self.to_time.is_none()
    }

    fn payload_filters(&self) -> bool {
        self.instrument.is_some() || self.account.is_some() || self.order.is_some()
    }

    /// Whether `frame` passes.
    pub fn matches(&self, frame: &Frame<'_>) -> bool {
        let seq = frame.seq();
        if self.from_seq.is_some_and(|s| seq < s) || self.to_seq.is_some_and(|s| seq > s) {
            return false;
        }
        let ts = frame.ts_recv().0;
        if self.from_time.is_some_and(|t| ts < t) || self.to_time.is_some_and(|t| ts > t) {
            return false;
        }
        match frame.body() {
            FrameBody::Blob { .. } => {
                (self.kinds.is_empty() || self.kinds.contains(&KindSel::Blob))
                    && !self.payload_filters()
            }
            FrameBody::Envelope(bytes) => {
                let Ok(envelope) = Envelope::from_bytes(bytes) else {
                    // Invalid records show up unless a filter needs their contents.
                    return self.kinds.is_empty() && !self.payload_filters();
                };
                let Ok(kind) = envelope.kind() else {
                    return false;
                };
                if !self.kinds.is_empty() && !self.kinds.contains(&KindSel::Record(kind)) {
                    return false;
                }
                if let Some(want) = self.instrument
                    && instrument_of(&envelope) != Some(want)
                {
                    return false;
                }
                if let Some(want) = self.account
                    && account_of(&envelope) != Some(want)
                {
                    return false;
                }
                if let Some(order) = &self.order
                    && !matches_order(&envelope, order)
                {
                    return false;
                }
                true
            }
        }
    }

    /// True once `seq` is past the range: nothing later can match.
    pub fn past_end(&self, seq: u64) -> bool {
        self.to_seq.is_some_and(|s| seq > s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse() {
        let kinds =
            parse_kinds(&["trade,book_delta".into(), "blob".into(), "trade".into()]).unwrap();
        assert_eq!(
            kinds,
            [
                KindSel::Record(RecordKind::Trade),
                KindSel::Record(RecordKind::BookDelta),
                KindSel::Blob
            ]
        );
        assert!(parse_kinds(&["trades".into()]).is_err());
    }
}
