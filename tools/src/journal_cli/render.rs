//! Turning records into text, JSON and CSV: one field list per record, three renderings.

use std::fmt::Write as _;

use aaiti_journal::{Frame, FrameBody};
use aaiti_model::{
    AccountId, BookAction, BookCheck, BookDelta, ChecksumMethod, ClientOrderId, Control,
    ControlAction, Envelope, FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry,
    ModelEvent, ModelEventKind, OrderAction, OrderCommand, OrderEvent, OrderEventKind, OrderFlags,
    OrderType, RecordKind, RejectReason, RiskEvent, RiskEventKind, Scale, Side, Signal,
    TimeInForce, TopOfBook, Trade, VenueAction, VenueId, VenueReport, VenueReportKind,
    VenueRequest,
};
use serde_json::Value as Json;

use super::time::format_rfc3339;

/// One payload field's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    /// Absent ("none", unknown).
    Null,
    /// Unsigned integer.
    U64(u64),
    /// Signed integer.
    I64(i64),
    /// Float.
    F64(f64),
    /// Text (enum names, ids, symbols).
    Str(String),
    /// A fixed-point mantissa and, when the instrument is known, its scale.
    Fixed {
        /// Mantissa.
        raw: i64,
        /// Scale, if the instrument is registered.
        scale: Option<Scale>,
    },
    /// Nanoseconds since the epoch (0: none).
    Time(u64),
}

impl Val {
    fn fixed_text(raw: i64, scale: Option<Scale>) -> Option<String> {
        scale.map(|s| aaiti_model::Price(raw).display(s).to_string())
    }

    /// Human text of the value.
    fn text(&self) -> String {
        match self {
            Self::Null => "-".into(),
            Self::U64(v) => v.to_string(),
            Self::I64(v) => v.to_string(),
            Self::F64(v) => v.to_string(),
            Self::Str(s) if s.is_empty() => "-".into(),
            Self::Str(s) => s.clone(),
            Self::Fixed { raw, scale } => {
                Self::fixed_text(*raw, *scale).unwrap_or_else(|| format!("raw:{raw}"))
            }
            Self::Time(0) => "-".into(),
            Self::Time(ns) => format_rfc3339(*ns),
        }
    }

    fn json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::U64(v) => Json::from(*v),
            Self::I64(v) => Json::from(*v),
            Self::F64(v) => serde_json::Number::from_f64(*v).map_or(Json::Null, Json::Number),
            Self::Str(s) => Json::from(s.as_str()),
            Self::Fixed { raw, scale } => {
                Self::fixed_text(*raw, *scale).map_or(Json::Null, Json::from)
            }
            Self::Time(ns) => Json::from(*ns),
        }
    }

    /// CSV cell text (no quoting).
    fn cell(&self) -> String {
        match self {
            Self::Null => String::new(),
            Self::Str(s) => s.clone(),
            Self::Fixed { raw, scale } => Self::fixed_text(*raw, *scale).unwrap_or_default(),
            Self::Time(ns) => ns.to_string(),
            other => other.text(),
        }
    }
}

/// A named payload field. Names are the record struct's field names; `symbol`, `venue_name`
/// and the `*_raw` mantissas are added beside the fields they explain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Field name.
    pub(crate) name: &'static str,
    /// Value.
    pub(crate) val: Val,
}

/// The columns a field contributes to JSON and CSV: its own, plus `<name>_raw` for fixed
/// point values.
fn columns(field: &Field) -> impl Iterator<Item = (String, Json, String)> + '_ {
    let main = (field.name.to_owned(), field.val.json(), field.val.cell());
    let raw = match field.val {
        Val::Fixed { raw, .. } => Some((
            format!("{}_raw", field.name),
            Json::from(raw),
            raw.to_string(),
        )),
        _ => None,
    };
    std::iter::once(main).chain(raw)
}

/// A JSON object that keeps its fields in insertion order (struct order), which
/// `serde_json::Map` does not without a crate-wide feature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonRecord(Vec<(String, JsonItem)>);

/// A value of a [`JsonRecord`].
#[derive(Debug, Clone, PartialEq)]
pub enum JsonItem {
    /// A plain JSON value.
    Value(Json),
    /// A nested ordered object.
    Object(JsonRecord),
    /// An array of ordered objects.
    Objects(Vec<JsonRecord>),
}

impl JsonRecord {
    /// Appends a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Json>) {
        self.0.push((name.into(), JsonItem::Value(value.into())));
    }

    /// Appends a nested object.
    pub fn push_object(&mut self, name: impl Into<String>, value: JsonRecord) {
        self.0.push((name.into(), JsonItem::Object(value)));
    }

    /// Appends an array of objects.
    pub fn push_objects(&mut self, name: impl Into<String>, value: Vec<JsonRecord>) {
        self.0.push((name.into(), JsonItem::Objects(value)));
    }

    /// As a `serde_json` value (fields then sort by name).
    pub fn to_value(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        JsonItem::Value(v) => v.clone(),
                        JsonItem::Object(o) => o.to_value(),
                        JsonItem::Objects(list) => {
                            Json::Array(list.iter().map(JsonRecord::to_value).collect())
                        }
                    };
                    (k.clone(), v)
                })
                .collect(),
        )
    }
}

impl serde::Serialize for JsonRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match v {
                JsonItem::Value(v) => map.serialize_entry(k, v)?,
                JsonItem::Object(o) => map.serialize_entry(k, o)?,
                JsonItem::Objects(list) => map.serialize_entry(k, list)?,
            }
        }
        map.end()
    }
}

/// Renders payloads with the instrument registry (symbols, scales, venue names).
#[derive(Debug, Clone)]
pub struct Renderer {
    registry: InstrumentRegistry,
}

/// Names of the flag bits set in `bits`, joined with `|` (empty when none).
fn flag_names(bits: u64, names: &[(u64, &str)]) -> String {
    let mut out = String::new();
    let mut left = bits;
    for (bit, name) in names {
        if bits & bit != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            left &= !bit;
        }
    }
    if left != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        let _ = write!(out, "0x{left:x}");
    }
    out
}

macro_rules! enum_val {
    ($ty:ty, $code:expr) => {
        match <$ty>::try_from($code) {
            Ok(v) => Val::Str(v.name().to_owned()),
            Err(code) => Val::U64(u64::from(code)),
        }
    };
}

/// An enum code where 0 means "none".
macro_rules! enum_or_none {
    ($ty:ty, $code:expr) => {
        if $code == 0 {
            Val::Null
        } else {
            enum_val!($ty, $code)
        }
    };
}

fn client_order_id(id: &ClientOrderId) -> Val {
    if id.is_none() {
        Val::Null
    } else {
        Val::Str(id.as_str().to_owned())
    }
}

const ALL_U32: u32 = u32::MAX;

impl Renderer {
    /// A renderer for `registry`'s instruments.
    pub fn new(registry: InstrumentRegistry) -> Self {
        Self { registry }
    }

    /// The registry.
    pub fn registry(&self) -> &InstrumentRegistry {
        &self.registry
    }

    /// The symbol of an instrument, if registered.
    pub fn symbol(&self, id: InstrumentId) -> Option<&str> {
        self.registry.get(id).map(|i| i.symbol.as_str())
    }

    fn scales(&self, id: InstrumentId) -> (Option<Scale>, Option<Scale>) {
        self.registry
            .get(id)
            .map_or((None, None), |i| (Some(i.price_scale), Some(i.qty_scale)))
    }

    fn instrument_fields(&self, out: &mut Vec<Field>, id: InstrumentId) {
        if id.0 == ALL_U32 {
            out.push(Field {
                name: "instrument",
                val: Val::Str("all".into()),
            });
            out.push(Field {
                name: "symbol",
                val: Val::Null,
            });
            return;
        }
        out.push(Field {
            name: "instrument",
            val: Val::U64(u64::from(id.0)),
        });
        let symbol = self
            .symbol(id)
            .map_or(Val::Null, |s| Val::Str(s.to_owned()));
        out.push(Field {
            name: "symbol",
            val: symbol,
        });
    }

    fn account(id: AccountId) -> Val {
        if id.0 == ALL_U32 {
            Val::Str("all".into())
        } else {
            Val::U64(u64::from(id.0))
        }
    }

    fn venue(&self, id: VenueId) -> Val {
        self.registry
            .venue_name(id)
            .map_or(Val::Null, |n| Val::Str(n.to_owned()))
    }

    /// The payload fields of a valid envelope, in struct order (padding left out).
    pub(crate) fn payload_fields(&self, envelope: &Envelope) -> Vec<Field> {
        let mut f = Vec::with_capacity(24);
        let push = |f: &mut Vec<Field>, name: &'static str, val: Val| f.push(Field { name, val });
        let Ok(kind) = envelope.kind() else { return f };
        match kind {
            RecordKind::BookDelta => {
                if let Some(r) = envelope.payload::<BookDelta>() {
                    let (ps, qs) = self.scales(r.instrument);
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "side", enum_or_none!(Side, r.side));
                    push(&mut f, "action", enum_val!(BookAction, r.action));
                    let flags = flag_names(
                        u64::from(r.flags),
                        &[
                            (u64::from(BookDelta::FLAG_SNAPSHOT), "snapshot"),
                            (u64::from(BookDelta::FLAG_LAST), "last"),
                        ],
                    );
                    push(&mut f, "flags", Val::Str(flags));
                    push(
                        &mut f,
                        "price",
                        Val::Fixed {
                            raw: r.price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "qty",
                        Val::Fixed {
                            raw: r.qty.0,
                            scale: qs,
                        },
                    );
                    push(&mut f, "venue_seq", Val::U64(r.venue_seq));
                }
            }
            RecordKind::Trade => {
                if let Some(r) = envelope.payload::<Trade>() {
                    let (ps, qs) = self.scales(r.instrument);
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "aggressor", enum_or_none!(Side, r.aggressor));
                    push(
                        &mut f,
                        "price",
                        Val::Fixed {
                            raw: r.price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "qty",
                        Val::Fixed {
                            raw: r.qty.0,
                            scale: qs,
                        },
                    );
                    push(&mut f, "trade_id", Val::U64(r.trade_id));
                }
            }
            RecordKind::TopOfBook => {
                if let Some(r) = envelope.payload::<TopOfBook>() {
                    let (ps, qs) = self.scales(r.instrument);
                    self.instrument_fields(&mut f, r.instrument);
                    push(
                        &mut f,
                        "bid_price",
                        Val::Fixed {
                            raw: r.bid_price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "bid_qty",
                        Val::Fixed {
                            raw: r.bid_qty.0,
                            scale: qs,
                        },
                    );
                    push(
                        &mut f,
                        "ask_price",
                        Val::Fixed {
                            raw: r.ask_price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "ask_qty",
                        Val::Fixed {
                            raw: r.ask_qty.0,
                            scale: qs,
                        },
                    );
                    push(&mut f, "venue_seq", Val::U64(r.venue_seq));
                }
            }
            RecordKind::FeedEvent => {
                if let Some(r) = envelope.payload::<FeedEvent>() {
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "kind", enum_val!(FeedEventKind, r.kind));
                    push(&mut f, "venue", Val::U64(u64::from(r.venue.0)));
                    push(&mut f, "venue_name", self.venue(r.venue));
                    push(&mut f, "venue_seq", Val::U64(r.venue_seq));
                    push(&mut f, "expected", Val::U64(r.expected));
                    push(&mut f, "value", Val::I64(r.value));
                }
            }
            RecordKind::BookCheck => {
                if let Some(r) = envelope.payload::<BookCheck>() {
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "checksum", Val::U64(u64::from(r.checksum)));
                    push(&mut f, "method", enum_val!(ChecksumMethod, r.method));
                    push(&mut f, "depth", Val::U64(u64::from(r.depth)));
                    push(&mut f, "venue_seq", Val::U64(r.venue_seq));
                }
            }
            RecordKind::OrderCommand => {
                if let Some(r) = envelope.payload::<OrderCommand>() {
                    let (ps, qs) = self.scales(r.instrument);
                    push(&mut f, "action", enum_val!(OrderAction, r.action));
                    push(&mut f, "side", enum_or_none!(Side, r.side));
                    push(&mut f, "order_type", enum_or_none!(OrderType, r.order_type));
                    push(
                        &mut f,
                        "time_in_force",
                        enum_or_none!(TimeInForce, r.time_in_force),
                    );
                    push(&mut f, "flags", Val::Str(order_flags(r.flags)));
                    push(&mut f, "account", Self::account(r.account));
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "order_id", Val::U64(r.order_id.0));
                    push(
                        &mut f,
                        "price",
                        Val::Fixed {
                            raw: r.price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "stop_price",
                        Val::Fixed {
                            raw: r.stop_price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "qty",
                        Val::Fixed {
                            raw: r.qty.0,
                            scale: qs,
                        },
                    );
                    push(&mut f, "expire_at", Val::Time(r.expire_at.0));
                    push(
                        &mut f,
                        "client_order_id",
                        client_order_id(&r.client_order_id),
                    );
                    push(
                        &mut f,
                        "orig_client_order_id",
                        client_order_id(&r.orig_client_order_id),
                    );
                }
            }
            RecordKind::OrderEvent => {
                if let Some(r) = envelope.payload::<OrderEvent>() {
                    let (ps, qs) = self.scales(r.instrument);
                    push(&mut f, "kind", enum_val!(OrderEventKind, r.kind));
                    push(&mut f, "side", enum_or_none!(Side, r.side));
                    let liquidity = match r.liquidity {
                        1 => Val::Str("maker".into()),
                        2 => Val::Str("taker".into()),
                        _ => Val::Null,
                    };
                    push(&mut f, "liquidity", liquidity);
                    push(
                        &mut f,
                        "reject_reason",
                        enum_val!(RejectReason, r.reject_reason),
                    );
                    push(&mut f, "account", Self::account(r.account));
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "order_id", Val::U64(r.order_id.0));
                    push(&mut f, "exec_id", Val::U64(r.exec_id));
                    push(
                        &mut f,
                        "price",
                        Val::Fixed {
                            raw: r.price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "last_price",
                        Val::Fixed {
                            raw: r.last_price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "last_qty",
                        Val::Fixed {
                            raw: r.last_qty.0,
                            scale: qs,
                        },
                    );
                    push(
                        &mut f,
                        "cum_qty",
                        Val::Fixed {
                            raw: r.cum_qty.0,
                            scale: qs,
                        },
                    );
                    push(
                        &mut f,
                        "leaves_qty",
                        Val::Fixed {
                            raw: r.leaves_qty.0,
                            scale: qs,
                        },
                    );
                    push(
                        &mut f,
                        "avg_price",
                        Val::Fixed {
                            raw: r.avg_price.0,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "fee",
                        Val::Fixed {
                            raw: r.fee,
                            scale: ps,
                        },
                    );
                    push(
                        &mut f,
                        "client_order_id",
                        client_order_id(&r.client_order_id),
                    );
                }
            }
            RecordKind::RiskEvent => {
                if let Some(r) = envelope.payload::<RiskEvent>() {
                    push(&mut f, "kind", enum_val!(RiskEventKind, r.kind));
                    push(&mut f, "reason", enum_val!(RejectReason, r.reason));
                    let action = match r.action {
                        0 => "alert",
                        1 => "reduce_only",
                        2 => "halt",
                        3 => "cancel_all",
                        4 => "flatten",
                        _ => "unknown",
                    };
                    push(&mut f, "action", Val::Str(action.into()));
                    push(&mut f, "account", Self::account(r.account));
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "order_id", Val::U64(r.order_id.0));
                    push(&mut f, "value", Val::I64(r.value));
                    push(&mut f, "limit", Val::I64(r.limit));
                }
            }
            RecordKind::VenueReport => {
                if let Some(r) = envelope.payload::<VenueReport>() {
                    let (ps, qs) = self.scales(r.instrument);
                    let fixed = |raw: i64, scale| Val::Fixed { raw, scale };
                    push(&mut f, "kind", enum_val!(VenueReportKind, r.kind));
                    let liquidity = match r.liquidity {
                        1 => Val::Str("maker".into()),
                        2 => Val::Str("taker".into()),
                        _ => Val::Null,
                    };
                    push(&mut f, "liquidity", liquidity);
                    push(&mut f, "reason", enum_val!(RejectReason, r.reason));
                    push(&mut f, "venue", Val::U64(u64::from(r.venue.0)));
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "order_id", Val::U64(r.order_id.0));
                    push(&mut f, "exec_id", Val::U64(r.exec_id));
                    push(&mut f, "price", fixed(r.price.0, ps));
                    push(&mut f, "qty", fixed(r.qty.0, qs));
                    push(&mut f, "leaves", fixed(r.leaves.0, qs));
                    push(&mut f, "cum", fixed(r.cum.0, qs));
                    push(&mut f, "fee", fixed(r.fee, ps));
                    push(&mut f, "venue_ts", Val::Time(r.venue_ts.0));
                    push(&mut f, "venue_order_id", Val::U64(r.venue_order_id));
                    push(&mut f, "venue_error", Val::I64(i64::from(r.venue_error)));
                    push(
                        &mut f,
                        "kept_priority",
                        Val::U64(u64::from(r.kept_priority)),
                    );
                }
            }
            RecordKind::VenueRequest => {
                if let Some(r) = envelope.payload::<VenueRequest>() {
                    let (ps, qs) = self.scales(r.instrument);
                    let fixed = |raw: i64, scale| Val::Fixed { raw, scale };
                    push(&mut f, "action", enum_val!(VenueAction, r.action));
                    push(&mut f, "side", enum_or_none!(Side, r.side));
                    push(&mut f, "order_type", enum_or_none!(OrderType, r.order_type));
                    push(
                        &mut f,
                        "time_in_force",
                        enum_or_none!(TimeInForce, r.time_in_force),
                    );
                    push(&mut f, "flags", Val::U64(u64::from(r.flags)));
                    push(&mut f, "account", Self::account(r.account));
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "order_id", Val::U64(r.order_id.0));
                    push(&mut f, "price", fixed(r.price.0, ps));
                    push(&mut f, "stop_price", fixed(r.stop_price.0, ps));
                    push(&mut f, "qty", fixed(r.qty.0, qs));
                    push(&mut f, "expire_at", Val::Time(r.expire_at.0));
                    push(&mut f, "venue", Val::U64(u64::from(r.venue.0)));
                    push(
                        &mut f,
                        "client_order_id",
                        client_order_id(&r.client_order_id),
                    );
                }
            }
            RecordKind::ModelEvent => {
                if let Some(r) = envelope.payload::<ModelEvent>() {
                    push(&mut f, "kind", enum_val!(ModelEventKind, r.kind));
                    push(&mut f, "level", Val::U64(u64::from(r.level)));
                    push(&mut f, "model", Val::U64(u64::from(r.model)));
                    push(&mut f, "version", Val::U64(u64::from(r.version)));
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "subject", Val::U64(u64::from(r.subject)));
                    push(&mut f, "previous", Val::U64(u64::from(r.previous)));
                    push(&mut f, "value", Val::F64(r.value));
                    push(&mut f, "threshold", Val::F64(r.threshold));
                    push(&mut f, "count", Val::U64(r.count));
                }
            }
            RecordKind::Signal => {
                if let Some(r) = envelope.payload::<Signal>() {
                    push(&mut f, "model", Val::U64(u64::from(r.model)));
                    push(
                        &mut f,
                        "model_version",
                        Val::U64(u64::from(r.model_version)),
                    );
                    self.instrument_fields(&mut f, r.instrument);
                    push(&mut f, "horizon_ms", Val::U64(u64::from(r.horizon_ms)));
                    push(&mut f, "prediction", Val::F64(r.prediction));
                    push(&mut f, "confidence", Val::F64(r.confidence));
                    let flags = flag_names(
                        u64::from(r.flags),
                        &[
                            (u64::from(Signal::FLAG_SHADOW), "shadow"),
                            (u64::from(Signal::FLAG_ENSEMBLE), "ensemble"),
                        ],
                    );
                    push(&mut f, "flags", Val::Str(flags));
                    push(
                        &mut f,
                        "feature_count",
                        Val::U64(u64::from(r.feature_count)),
                    );
                }
            }
            RecordKind::Control => {
                if let Some(r) = envelope.payload::<Control>() {
                    push(&mut f, "action", enum_val!(ControlAction, r.action));
                    push(&mut f, "account", Self::account(r.account));
                    push(&mut f, "arg", Val::U64(r.arg));
                    let end = r.text.iter().position(|&b| b == 0).unwrap_or(r.text.len());
                    let text = String::from_utf8_lossy(&r.text[..end]).into_owned();
                    push(&mut f, "text", Val::Str(text));
                }
            }
        }
        f
    }

    /// The CSV columns of a record kind: the common columns, then its payload's.
    pub(crate) fn csv_header(&self, kind: Option<RecordKind>) -> Vec<String> {
        let mut names: Vec<String> = match kind {
            Some(_) => ENVELOPE_COLUMNS.iter().map(|s| (*s).to_owned()).collect(),
            None => BLOB_COLUMNS.iter().map(|s| (*s).to_owned()).collect(),
        };
        if let Some(kind) = kind {
            for field in self.payload_fields(&default_envelope(kind)) {
                names.extend(columns(&field).map(|(name, _, _)| name));
            }
        }
        names
    }

    /// One human-readable line (no newline).
    pub fn text_line(&self, frame: &Frame<'_>) -> String {
        let mut line = String::with_capacity(160);
        let _ = write!(
            line,
            "{:>8} {}",
            frame.seq(),
            format_rfc3339(frame.ts_recv().0)
        );
        match frame.body() {
            FrameBody::Envelope(bytes) => match Envelope::from_bytes(bytes) {
                Ok(envelope) => {
                    let h = envelope.header;
                    let kind = envelope.kind().map_or("?", RecordKind::name);
                    let _ = write!(line, " {kind:<13} s{}#{}", h.stream.0, h.seq);
                    for field in self.payload_fields(&envelope) {
                        match (field.name, &field.val) {
                            // The symbol replaces the id when known.
                            ("symbol", _) => {}
                            ("instrument", Val::U64(id)) => {
                                let id = InstrumentId(*id as u32);
                                match self.symbol(id) {
                                    Some(symbol) => {
                                        let _ = write!(line, " {symbol}");
                                    }
                                    None => {
                                        let _ = write!(line, " instrument=#{}", id.0);
                                    }
                                }
                            }
                            (name, val) => {
                                let _ = write!(line, " {name}={}", val.text());
                            }
                        }
                    }
                    if h.ts_event.0 != 0 {
                        let _ = write!(line, " ts_event={}", format_rfc3339(h.ts_event.0));
                    }
                    if h.flags != 0 {
                        let _ = write!(line, " header_flags={}", h.flags);
                    }
                }
                Err(error) => {
                    let _ = write!(line, " INVALID envelope ({error}): {}", hex(bytes));
                }
            },
            FrameBody::Blob { kind, data, .. } => {
                let _ = write!(line, " {:<13} kind={kind} len={}", "blob", data.len());
                if is_texty(data) {
                    let _ = write!(line, " \"{}\"", data.escape_ascii());
                } else {
                    let _ = write!(line, " hex={}", hex(data));
                }
            }
        }
        line
    }

    /// The record as a JSON object: `seq`, `segment`, `offset`, `ts_recv`, `time` (RFC 3339),
    /// then for envelopes `kind`, `ts_event`, `stream`, `stream_seq`, `header_flags` and
    /// `payload` (struct field names; enums by name; prices as exact decimal strings plus
    /// `*_raw` mantissas), for blobs `kind: "blob"`, `blob_kind`, `len` and `text` or `hex`.
    pub fn json(&self, frame: &Frame<'_>) -> JsonRecord {
        let mut obj = JsonRecord::default();
        obj.push("seq", frame.seq());
        obj.push("segment", frame.segment());
        obj.push("offset", frame.offset());
        obj.push("ts_recv", frame.ts_recv().0);
        obj.push("time", format_rfc3339(frame.ts_recv().0));
        match frame.body() {
            FrameBody::Envelope(bytes) => match Envelope::from_bytes(bytes) {
                Ok(envelope) => {
                    let h = envelope.header;
                    let kind = envelope.kind().map_or("?", RecordKind::name);
                    obj.push("kind", kind);
                    obj.push("ts_event", h.ts_event.0);
                    obj.push("stream", h.stream.0);
                    obj.push("stream_seq", h.seq);
                    obj.push("header_flags", h.flags);
                    let mut payload = JsonRecord::default();
                    for field in self.payload_fields(&envelope) {
                        for (name, json, _) in columns(&field) {
                            payload.push(name, json);
                        }
                    }
                    obj.push_object("payload", payload);
                }
                Err(error) => {
                    obj.push("kind", "invalid");
                    obj.push("error", error.to_string());
                    obj.push("hex", hex(bytes));
                }
            },
            FrameBody::Blob { kind, data, .. } => {
                obj.push("kind", "blob");
                obj.push("blob_kind", kind);
                obj.push("len", data.len());
                if is_texty(data) {
                    obj.push("text", String::from_utf8_lossy(data));
                } else {
                    obj.push("hex", hex(data));
                }
            }
        }
        obj
    }

    /// The record as CSV cells matching [`csv_header`](Self::csv_header) for its kind.
    pub(crate) fn csv_row(&self, frame: &Frame<'_>) -> Option<Vec<String>> {
        let mut row = vec![
            frame.seq().to_string(),
            format_rfc3339(frame.ts_recv().0),
            frame.ts_recv().0.to_string(),
        ];
        match frame.body() {
            FrameBody::Envelope(bytes) => {
                let envelope = Envelope::from_bytes(bytes).ok()?;
                let h = envelope.header;
                row.extend([
                    h.ts_event.0.to_string(),
                    h.stream.0.to_string(),
                    h.seq.to_string(),
                    h.flags.to_string(),
                ]);
                for field in self.payload_fields(&envelope) {
                    row.extend(columns(&field).map(|(_, _, cell)| cell));
                }
            }
            FrameBody::Blob { kind, data, .. } => {
                row.push(kind.to_string());
                row.push(data.len().to_string());
                if is_texty(data) {
                    row.push(String::from_utf8_lossy(data).into_owned());
                    row.push(String::new());
                } else {
                    row.push(String::new());
                    row.push(hex(data));
                }
            }
        }
        Some(row)
    }
}

/// Common CSV columns of envelope records.
const ENVELOPE_COLUMNS: &[&str] = &[
    "seq",
    "time",
    "ts_recv",
    "ts_event",
    "stream",
    "stream_seq",
    "header_flags",
];
/// CSV columns of blobs.
const BLOB_COLUMNS: &[&str] = &["seq", "time", "ts_recv", "blob_kind", "len", "text", "hex"];

fn order_flags(bits: u8) -> String {
    flag_names(
        u64::from(bits),
        &[
            (u64::from(OrderFlags::POST_ONLY.0), "post_only"),
            (u64::from(OrderFlags::REDUCE_ONLY.0), "reduce_only"),
        ],
    )
}

/// An envelope of `kind` with a default payload (for column names).
fn default_envelope(kind: RecordKind) -> Envelope {
    use aaiti_model::RecordHeader;
    let h = RecordHeader::default();
    match kind {
        RecordKind::BookDelta => Envelope::new(h, &BookDelta::default()),
        RecordKind::Trade => Envelope::new(h, &Trade::default()),
        RecordKind::TopOfBook => Envelope::new(h, &TopOfBook::default()),
        RecordKind::FeedEvent => Envelope::new(h, &FeedEvent::default()),
        RecordKind::BookCheck => Envelope::new(h, &BookCheck::default()),
        RecordKind::OrderCommand => Envelope::new(h, &OrderCommand::default()),
        RecordKind::OrderEvent => Envelope::new(h, &OrderEvent::default()),
        RecordKind::RiskEvent => Envelope::new(h, &RiskEvent::default()),
        RecordKind::VenueReport => Envelope::new(h, &VenueReport::default()),
        RecordKind::VenueRequest => Envelope::new(h, &VenueRequest::default()),
        RecordKind::Signal => Envelope::new(h, &Signal::default()),
        RecordKind::ModelEvent => Envelope::new(h, &ModelEvent::default()),
        RecordKind::Control => Envelope::new(h, &Control::default()),
    }
}

/// Printable ASCII plus tab, CR, LF and SOH (FIX's field separator): shown as escaped text.
pub(crate) fn is_texty(data: &[u8]) -> bool {
    data.iter()
        .all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\r' | b'\n' | 0x01))
}

/// Lowercase hex.
pub(crate) fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// One CSV line (RFC 4180 quoting), without the line end.
pub(crate) fn csv_line(cells: &[String]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ') {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(cell);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_csv_quoting() {
        assert_eq!(order_flags(3), "post_only|reduce_only");
        assert_eq!(order_flags(0x81), "post_only|0x80");
        assert_eq!(
            csv_line(&["a".into(), "b,c".into(), "d\"e".into()]),
            "a,\"b,c\",\"d\"\"e\""
        );
        assert!(is_texty(b"8=FIX.4.4\x0135=D\x01"));
        assert!(!is_texty(&[0, 1, 2]));
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }

    #[test]
    fn csv_header_has_raw_columns() {
        let renderer = Renderer::new(InstrumentRegistry::default());
        let header = renderer.csv_header(Some(RecordKind::Trade));
        assert_eq!(
            header,
            [
                "seq",
                "time",
                "ts_recv",
                "ts_event",
                "stream",
                "stream_seq",
                "header_flags",
                "instrument",
                "symbol",
                "aggressor",
                "price",
                "price_raw",
                "qty",
                "qty_raw",
                "trade_id"
            ]
        );
    }
}
