//! Record layout and envelope behaviour through the public API: byte offsets as documented,
//! round trips through the journal's byte form, and rejection of bytes that are not a valid
//! record.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use aaiti_model::records::{ENVELOPE_SIZE, HEADER_SIZE, PAYLOAD_CAPACITY};
use aaiti_model::{
    AccountId, BookAction, BookCheck, BookDelta, ChecksumMethod, ClientOrderId, Control,
    ControlAction, Envelope, FeedEvent, FeedEventKind, InstrumentId, ModelEvent, ModelEventKind,
    OrderAction, OrderCommand, OrderEvent, OrderEventKind, OrderFlags, OrderId, OrderType, Price,
    Qty, Record, RecordError, RecordHeader, RecordKind, RejectReason, RiskEvent, RiskEventKind,
    Side, Signal, StreamId, TimeInForce, TopOfBook, Trade, UnixNanos, VenueAction, VenueId,
    VenueReport, VenueReportKind, VenueRequest,
};

fn header(seq: u64) -> RecordHeader {
    RecordHeader::new(
        StreamId(7),
        seq,
        UnixNanos(1_723_161_253_000_000_000),
        UnixNanos(1_723_161_253_000_123_456),
    )
}

fn order_command() -> OrderCommand {
    OrderCommand {
        action: OrderAction::New.code(),
        side: Side::Buy.code(),
        order_type: OrderType::StopLimit.code(),
        time_in_force: TimeInForce::Gtd.code(),
        flags: OrderFlags::POST_ONLY.0,
        _pad: [0; 3],
        account: AccountId(3),
        instrument: InstrumentId(1),
        order_id: OrderId(0),
        price: Price(6_173_763),
        stop_price: Price(6_170_000),
        qty: Qty(241_000),
        expire_at: UnixNanos(1_723_200_000_000_000_000),
        client_order_id: ClientOrderId::new(b"8c1f0f2e-6a55-4e8b-9d6c-2d7f6f1a9b3e").unwrap(),
        orig_client_order_id: ClientOrderId::NONE,
    }
}

fn every_kind() -> Vec<Envelope> {
    vec![
        Envelope::new(
            header(1),
            &BookDelta {
                instrument: InstrumentId(1),
                side: Side::Sell.code(),
                action: BookAction::Set.code(),
                flags: BookDelta::FLAG_LAST,
                _pad: 0,
                price: Price(6_173_764),
                qty: Qty(12_345),
                venue_seq: 51_245_334_567,
            },
        ),
        Envelope::new(
            header(2),
            &Trade {
                instrument: InstrumentId(1),
                aggressor: Side::Buy.code(),
                _pad: [0; 3],
                price: Price(6_173_763),
                qty: Qty(241),
                trade_id: 3_734_567_111,
            },
        ),
        Envelope::new(
            header(3),
            &TopOfBook {
                instrument: InstrumentId(1),
                _pad: 0,
                bid_price: Price(6_173_763),
                bid_qty: Qty(1),
                ask_price: Price(6_173_764),
                ask_qty: Qty(2),
                venue_seq: 9,
            },
        ),
        Envelope::new(header(4), &order_command()),
        Envelope::new(
            header(5),
            &OrderEvent {
                kind: OrderEventKind::PartiallyFilled.code(),
                side: Side::Buy.code(),
                liquidity: 2,
                reject_reason: RejectReason::None.code(),
                account: AccountId(3),
                instrument: InstrumentId(1),
                order_id: OrderId(42),
                exec_id: 7,
                last_qty: Qty(100),
                cum_qty: Qty(100),
                leaves_qty: Qty(140_900),
                ..OrderEvent::default()
            },
        ),
        Envelope::new(
            header(6),
            &RiskEvent {
                kind: RiskEventKind::CheckRejected.code(),
                reason: RejectReason::PriceBand.code(),
                action: 0,
                account: AccountId(3),
                order_id: OrderId(42),
                value: 700,
                limit: 500,
                ..RiskEvent::default()
            },
        ),
        Envelope::new(
            header(7),
            &Signal {
                model: 1,
                model_version: 3,
                instrument: InstrumentId(1),
                horizon_ms: 1000,
                prediction: 0.00012,
                confidence: 0.7,
                flags: Signal::FLAG_SHADOW,
                feature_count: 16,
            },
        ),
        Envelope::new(
            header(8),
            &Control::new(ControlAction::Halt, AccountId(3), 0),
        ),
        Envelope::new(
            header(9),
            &FeedEvent {
                instrument: InstrumentId(1),
                kind: FeedEventKind::Gap.code(),
                venue: VenueId(0),
                venue_seq: 51_245_334_567,
                expected: 51_245_334_560,
                value: 0,
            },
        ),
        Envelope::new(
            header(10),
            &BookCheck {
                instrument: InstrumentId(2),
                checksum: 3_310_070_434,
                method: ChecksumMethod::KrakenCrc32.code(),
                depth: 10,
                _pad: [0; 6],
                venue_seq: 12,
            },
        ),
        Envelope::new(
            header(11),
            &VenueReport {
                kind: VenueReportKind::Fill.code(),
                liquidity: 1,
                venue: VenueId(0),
                instrument: InstrumentId(1),
                order_id: OrderId(42),
                exec_id: 3_734_567_112,
                price: Price(6_173_700),
                qty: Qty(100),
                leaves: Qty(140_900),
                cum: Qty(100),
                fee: -3,
                venue_ts: UnixNanos(1_723_161_253_000_000_000),
                venue_order_id: 28_457,
                venue_error: 0,
                ..VenueReport::default()
            },
        ),
        Envelope::new(
            header(12),
            &VenueRequest {
                action: VenueAction::New.code(),
                side: Side::Buy.code(),
                order_type: OrderType::Limit.code(),
                time_in_force: TimeInForce::Gtc.code(),
                account: AccountId(3),
                instrument: InstrumentId(1),
                order_id: OrderId(42),
                price: Price(6_173_700),
                qty: Qty(141_000),
                venue: VenueId(0),
                client_order_id: ClientOrderId::new(b"desk-7").unwrap(),
                ..VenueRequest::default()
            },
        ),
        Envelope::new(
            header(13),
            &ModelEvent {
                kind: ModelEventKind::Drift.code(),
                level: 2,
                model: 0,
                version: 1,
                instrument: InstrumentId(1),
                subject: 4,
                value: 0.31,
                threshold: 0.25,
                count: 1000,
                ..ModelEvent::default()
            },
        ),
    ]
}

#[test]
fn venue_and_model_records_at_documented_offsets() {
    let all = every_kind();
    let report = all[10].as_bytes();
    let p = &report[HEADER_SIZE..];
    assert_eq!(p[0], VenueReportKind::Fill.code());
    assert_eq!(p[1], 1);
    assert_eq!(&p[16..24], &42_u64.to_le_bytes());
    assert_eq!(&p[24..32], &3_734_567_112_u64.to_le_bytes());
    assert_eq!(&p[64..72], &(-3_i64).to_le_bytes());
    assert_eq!(&p[80..88], &28_457_u64.to_le_bytes());
    let request = all[11].as_bytes();
    let p = &request[HEADER_SIZE..];
    assert_eq!(p[0], VenueAction::New.code());
    assert_eq!(&p[40..48], &141_000_i64.to_le_bytes());
    assert_eq!(&p[64..70], b"desk-7");
    let event = all[12].as_bytes();
    let p = &event[HEADER_SIZE..];
    assert_eq!(p[0], ModelEventKind::Drift.code());
    assert_eq!(p[1], 2);
    assert_eq!(&p[16..20], &4_u32.to_le_bytes());
    assert_eq!(&p[24..32], &0.31_f64.to_le_bytes());
    assert_eq!(&p[40..48], &1000_u64.to_le_bytes());
    // Codes this build does not know are refused, not trusted.
    let mut bytes = all[10].as_bytes().to_vec();
    bytes[HEADER_SIZE] = 99;
    assert!(Envelope::from_bytes(&bytes).is_err());
}

#[test]
fn sizes_are_fixed() {
    assert_eq!(size_of::<Envelope>(), ENVELOPE_SIZE);
    assert_eq!(ENVELOPE_SIZE, 192);
    assert_eq!(HEADER_SIZE, 32);
    assert_eq!(align_of::<Envelope>(), 64);
    for kind in RecordKind::ALL {
        assert!(kind.payload_len() <= PAYLOAD_CAPACITY, "{kind:?}");
        assert_eq!(kind.payload_len() % 8, 0, "{kind:?} keeps 8-byte framing");
    }
}

#[test]
fn header_bytes_are_little_endian_at_documented_offsets() {
    let envelope = Envelope::new(header(0x0102_0304_0506_0708), &Trade::default());
    let bytes = envelope.as_bytes();
    assert_eq!(bytes.len(), HEADER_SIZE + 32);
    assert_eq!(&bytes[0..8], &0x0102_0304_0506_0708_u64.to_le_bytes());
    assert_eq!(&bytes[8..16], &1_723_161_253_000_000_000_u64.to_le_bytes());
    assert_eq!(&bytes[16..24], &1_723_161_253_000_123_456_u64.to_le_bytes());
    assert_eq!(&bytes[24..26], &RecordKind::Trade.code().to_le_bytes());
    assert_eq!(&bytes[26..28], &7_u16.to_le_bytes());
    assert_eq!(&bytes[28..30], &32_u16.to_le_bytes());
    assert_eq!(&bytes[30..32], &0_u16.to_le_bytes());
}

#[test]
fn order_command_payload_offsets_match_the_docs() {
    let envelope = Envelope::new(header(1), &order_command());
    let payload = envelope.payload_bytes();
    assert_eq!(payload.len(), 136);
    assert_eq!(payload[0], OrderAction::New.code());
    assert_eq!(payload[2], OrderType::StopLimit.code());
    assert_eq!(&payload[8..12], &3_u32.to_le_bytes());
    assert_eq!(&payload[24..32], &6_173_763_i64.to_le_bytes());
    assert_eq!(&payload[40..48], &241_000_i64.to_le_bytes());
    assert_eq!(&payload[56..60], b"8c1f");
    assert_eq!(payload[96], 0, "orig_client_order_id empty");
}

#[test]
fn every_kind_round_trips_through_bytes() {
    for envelope in every_kind() {
        envelope.validate().unwrap();
        let bytes = envelope.as_bytes().to_vec();
        let kind = envelope.kind().unwrap();
        assert_eq!(bytes.len(), HEADER_SIZE + kind.payload_len());
        let back = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!(back.as_bytes(), &bytes[..], "{kind:?}");
        assert_eq!(back.header, envelope.header);
    }
}

#[test]
fn typed_payload_access_checks_the_kind() {
    let envelopes = every_kind();
    assert_eq!(
        envelopes.len(),
        RecordKind::ALL.len(),
        "one envelope per kind"
    );
    assert_eq!(
        envelopes[1].payload::<Trade>().unwrap().trade_id,
        3_734_567_111
    );
    assert!(envelopes[1].payload::<BookDelta>().is_none());
    assert_eq!(
        envelopes[3]
            .payload::<OrderCommand>()
            .unwrap()
            .client_order_id
            .as_str(),
        "8c1f0f2e-6a55-4e8b-9d6c-2d7f6f1a9b3e"
    );
    assert_eq!(
        envelopes[7].payload::<Control>().unwrap().action(),
        Some(ControlAction::Halt)
    );
}

#[test]
fn set_overwrites_only_what_it_uses_and_copy_from_keeps_meaning() {
    let mut slot = Envelope::new(header(1), &order_command());
    slot.set(
        header(2),
        &Trade {
            trade_id: 5,
            ..Trade::default()
        },
    );
    assert_eq!(slot.kind(), Ok(RecordKind::Trade));
    assert_eq!(slot.payload::<Trade>().unwrap().trade_id, 5);
    assert_eq!(slot.as_bytes().len(), HEADER_SIZE + 32);
    let mut copy = Envelope::default();
    copy.copy_from(&slot);
    assert_eq!(copy.as_bytes(), slot.as_bytes());
}

#[test]
fn invalid_bytes_are_typed_errors() {
    let good = every_kind()[3].as_bytes().to_vec();
    assert!(matches!(
        Envelope::from_bytes(&good[..10]),
        Err(RecordError::Truncated {
            len: 10,
            needed: 32
        })
    ));
    assert!(matches!(
        Envelope::from_bytes(&good[..100]),
        Err(RecordError::Truncated { len: 100, .. })
    ));

    let mut unknown_kind = good.clone();
    unknown_kind[24..26].copy_from_slice(&999_u16.to_le_bytes());
    assert_eq!(
        Envelope::from_bytes(&unknown_kind).unwrap_err(),
        RecordError::UnknownKind(999)
    );

    let mut wrong_len = good.clone();
    wrong_len[28..30].copy_from_slice(&32_u16.to_le_bytes());
    assert!(matches!(
        Envelope::from_bytes(&wrong_len),
        Err(RecordError::PayloadLength {
            expected: 136,
            got: 32,
            ..
        })
    ));

    let mut huge_len = good.clone();
    huge_len[28..30].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(Envelope::from_bytes(&huge_len).is_err());

    let mut bad_side = good.clone();
    bad_side[HEADER_SIZE + 1] = 9;
    assert!(matches!(
        Envelope::from_bytes(&bad_side),
        Err(RecordError::BadField {
            field: "side",
            value: 9,
            ..
        })
    ));

    let mut bad_flags = good;
    bad_flags[HEADER_SIZE + 4] = 0x80;
    assert!(matches!(
        Envelope::from_bytes(&bad_flags),
        Err(RecordError::BadField { field: "flags", .. })
    ));

    let nan = Signal {
        prediction: f64::NAN,
        ..Signal::default()
    };
    assert!(Envelope::new(header(1), &nan).validate().is_err());
    let over_confident = Signal {
        confidence: 1.5,
        ..Signal::default()
    };
    assert!(over_confident.validate().is_err());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A deterministic sweep of garbage: every prefix length and byte pattern class.
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for length in 0..=ENVELOPE_SIZE + 8 {
        for _ in 0..64 {
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if let Ok(envelope) = Envelope::from_bytes(&bytes) {
                envelope.validate().unwrap();
            }
        }
    }
}
