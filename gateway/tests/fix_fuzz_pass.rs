//! A short fuzz pass on stable Rust: the FIX codec, the dictionary and the application
//! layer on random bytes and on mutated valid messages never panic and keep their
//! invariants; the encoder's output always frames and parses; a stream of messages split
//! anywhere frames back into the same messages. (`gateway/fuzz` holds the cargo-fuzz
//! targets for longer runs on nightly.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use aaiti_gateway::fix::app::{
    self, AccountSet, AppReject, DeskContext, DeskRequest, ReportStamp, Role, SessionScope,
};
use aaiti_gateway::fix::codec::{Encoder, Framing, Parser, SOH, checksum, frame, parse_u64};
use aaiti_gateway::fix::dictionary;
use aaiti_model::{
    AccountId, InstrumentRegistry, InstrumentSpec, Price, Record, Scale, UnixNanos, VenueId,
};
use proptest::prelude::*;

const MAX_MESSAGE: usize = 4096;

fn registry() -> InstrumentRegistry {
    let spec = |venue: &str, symbol: &str| InstrumentSpec {
        venue: venue.into(),
        symbol: symbol.into(),
        base: "B".into(),
        quote: "Q".into(),
        price_scale: 2,
        qty_scale: 5,
        tick_size: "0.01".into(),
        lot_size: "0.00001".into(),
        min_notional: "0".into(),
    };
    InstrumentRegistry::from_specs(&[spec("binance", "BTCUSDT"), spec("coinbase", "BTC-USD")])
        .unwrap()
}

fn scopes() -> [SessionScope; 3] {
    let mut allowed = AccountSet::EMPTY;
    allowed.insert(AccountId(0));
    let scope = |role| SessionScope {
        role,
        default_account: AccountId(0),
        allowed_accounts: allowed,
        default_venue: VenueId(0),
    };
    [scope(Role::Trader), scope(Role::Viewer), scope(Role::Admin)]
}

/// Valid inbound messages of every type the gateway reads: the seeds of the mutations.
const CORPUS: &[(&str, &str)] = &[
    (
        "D",
        "11=ord-1|1=acct|55=BTCUSDT|54=1|60=20240101-12:00:00.000|38=0.25|40=2|44=65000.5|\
         59=1|18=6|453=1|448=trader|447=D|452=11|",
    ),
    (
        "D",
        "11=ord-2|55=BTC-USD|207=coinbase|54=2|60=20240101-12:00:00|38=1|40=4|44=1|99=2|\
         59=6|126=20240102-00:00:00|",
    ),
    (
        "F",
        "41=ord-1|11=cxl-1|55=BTCUSDT|54=1|60=20240101-12:00:00|37=42|",
    ),
    (
        "G",
        "41=ord-1|11=rep-1|55=BTCUSDT|54=1|60=20240101-12:00:00|38=1|40=2|44=64000|",
    ),
    ("H", "11=ord-1|55=BTCUSDT|54=1|790=st-1|"),
    (
        "V",
        "262=md-1|263=1|264=10|265=1|267=2|269=0|269=1|146=2|55=BTCUSDT|55=BTC-USD|\
         207=coinbase|",
    ),
    ("AN", "710=p-1|724=0|60=20240101-12:00:00|1=acct|"),
    ("U1", "20000=a-1|20001=S|1=acct|"),
    ("A", "98=0|108=30|141=Y|553=desk|554=secret|"),
    ("0", "112=T1|"),
    ("2", "7=1|16=0|"),
    ("3", "45=3|371=44|372=D|373=5|58=bad|"),
    ("4", "36=10|123=Y|"),
    ("E", "66=L1|"),
];

/// Splits a corpus entry into its fields (`tag=value` without SOH), header included.
fn corpus_fields(index: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (msg_type, body) = CORPUS[index % CORPUS.len()];
    let text = format!("49=DESK|56=AAITI|34=7|52=20240101-12:00:00.000|{body}");
    let fields = text
        .split('|')
        .filter(|f| !f.is_empty())
        .map(|f| f.as_bytes().to_vec())
        .collect();
    (msg_type.as_bytes().to_vec(), fields)
}

/// A message with correct BodyLength and CheckSum from its MsgType and fields.
fn assemble(msg_type: &[u8], fields: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"35=".to_vec();
    body.extend_from_slice(msg_type);
    body.push(SOH);
    for field in fields {
        body.extend_from_slice(field);
        body.push(SOH);
    }
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(&body);
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

/// Runs one framed message through parse, validate, decode and the reject encoder for
/// every role, checking the invariants.
fn process(bytes: &[u8], ctx: &DeskContext<'_>, parser: &mut Parser, enc: &mut Encoder) {
    let Ok(msg) = parser.parse(bytes) else {
        return;
    };
    let valid = dictionary::validate(&msg).is_ok();
    for scope in scopes() {
        match app::decode(&msg, ctx, &scope) {
            Ok(DeskRequest::Order(command) | DeskRequest::Status { command, .. }) => {
                // Whatever the input, a decoded command is a valid record.
                assert_eq!(command.validate(), Ok(()), "{command:?}");
            }
            Ok(_) => {}
            Err(reject) => {
                if let AppReject::Session(session) = reject {
                    // The dictionary already checks presence and formats: after it, the
                    // decoder only refuses values (ids too long, unprintable ClOrdIDs).
                    assert!(
                        !valid || session.reason == 5,
                        "validated message rejected by the decoder: {session:?}"
                    );
                }
                enc.begin(reject.msg_type(msg.msg_type()));
                enc.str(49, b"AAITI");
                enc.str(56, b"DESK");
                enc.uint(34, 1);
                enc.timestamp(52, UnixNanos(1_704_110_400_000_000_000));
                let stamp = ReportStamp {
                    seq: 1,
                    time: UnixNanos(1),
                };
                app::encode_app_reject(enc, &msg, &reject, &stamp).unwrap();
                let answer = enc.finish().to_vec();
                assert_eq!(frame(&answer, 1 << 20), Framing::Complete(answer.len()));
                let mut answer_parser = Parser::new();
                let parsed = answer_parser.parse(&answer).unwrap();
                // The answer is itself acceptable to the dictionary (header, and the body
                // of a session Reject).
                assert_eq!(dictionary::validate(&parsed), Ok(()));
            }
        }
    }
}

/// Frames a whole buffer the way the acceptor does and processes every message.
fn pipeline(bytes: &[u8], max_len: usize) {
    let registry = registry();
    let accounts = vec!["acct".to_owned()];
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let mut parser = Parser::new();
    let mut enc = Encoder::new(1024);
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        match frame(rest, max_len) {
            Framing::Complete(len) => {
                assert!(len > 0 && len <= rest.len() && len <= max_len, "{len}");
                process(&rest[..len], &ctx, &mut parser, &mut enc);
                at += len;
            }
            Framing::Garbled { skip, .. } => {
                assert!(skip > 0 && skip <= rest.len(), "{skip}");
                at += skip;
            }
            Framing::Incomplete | Framing::WrongBeginString => break,
        }
    }
}

/// A change to a message's field list (before BodyLength and CheckSum are computed).
#[derive(Clone, Debug)]
enum FieldMutation {
    Duplicate(usize),
    Drop(usize),
    Swap(usize, usize),
    SetValue(usize, Vec<u8>),
    SetTag(usize, u32),
    Insert(usize, u32, Vec<u8>),
}

/// A change to the serialized bytes.
#[derive(Clone, Debug)]
enum ByteMutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    BodyLength(u32),
    CheckSum(u8),
}

fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::collection::vec(
            prop::sample::select(b"0123456789.-YNABCDEFGHRKS6 ".to_vec()),
            1..6
        ),
        Just(b"20240101-12:00:00".to_vec()),
        Just(b"99999999999999999999999".to_vec()),
    ]
}

fn field_mutation() -> impl Strategy<Value = FieldMutation> {
    let tag = prop_oneof![
        prop::sample::select(vec![
            1_u32, 11, 18, 21, 34, 35, 37, 38, 40, 41, 44, 49, 52, 54, 55, 56, 59, 60, 99, 126,
            146, 207, 262, 263, 264, 265, 266, 267, 269, 447, 448, 452, 453, 710, 715, 724, 790,
            20_000, 20_001, 20_003
        ]),
        1_u32..50_000,
    ];
    prop_oneof![
        any::<usize>().prop_map(FieldMutation::Duplicate),
        any::<usize>().prop_map(FieldMutation::Drop),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| FieldMutation::Swap(a, b)),
        (any::<usize>(), value_bytes()).prop_map(|(i, v)| FieldMutation::SetValue(i, v)),
        (any::<usize>(), tag.clone()).prop_map(|(i, t)| FieldMutation::SetTag(i, t)),
        (any::<usize>(), tag, value_bytes()).prop_map(|(i, t, v)| FieldMutation::Insert(i, t, v)),
    ]
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<usize>(), 0_u8..8).prop_map(|(at, bit)| ByteMutation::Flip(at, bit)),
        any::<usize>().prop_map(ByteMutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| ByteMutation::Insert(at, b)),
        (0_u32..10_000).prop_map(ByteMutation::BodyLength),
        any::<u8>().prop_map(ByteMutation::CheckSum),
    ]
}

fn apply_fields(fields: &mut Vec<Vec<u8>>, mutation: &FieldMutation) {
    let len = fields.len();
    if len == 0 {
        return;
    }
    let set_tag = |field: &mut Vec<u8>, tag: u32| {
        let value = field
            .iter()
            .position(|&b| b == b'=')
            .map_or_else(Vec::new, |eq| field[eq..].to_vec());
        *field = tag.to_string().into_bytes();
        field.extend_from_slice(&value);
    };
    match mutation {
        FieldMutation::Duplicate(i) => {
            let copy = fields[i % len].clone();
            fields.insert(i % len, copy);
        }
        FieldMutation::Drop(i) => {
            fields.remove(i % len);
        }
        FieldMutation::Swap(a, b) => fields.swap(a % len, b % len),
        FieldMutation::SetValue(i, value) => {
            let field = &mut fields[i % len];
            let eq = field.iter().position(|&b| b == b'=').unwrap_or(field.len());
            field.truncate(eq);
            field.push(b'=');
            field.extend_from_slice(value);
        }
        FieldMutation::SetTag(i, tag) => set_tag(&mut fields[i % len], *tag),
        FieldMutation::Insert(i, tag, value) => {
            let mut field = tag.to_string().into_bytes();
            field.push(b'=');
            field.extend_from_slice(value);
            fields.insert(i % (len + 1), field);
        }
    }
}

fn apply_bytes(bytes: &mut Vec<u8>, mutation: &ByteMutation) {
    let len = bytes.len();
    match mutation {
        ByteMutation::Flip(at, bit) => {
            if len > 0 {
                bytes[at % len] ^= 1 << bit;
            }
        }
        ByteMutation::Truncate(at) => bytes.truncate(at % (len + 1)),
        ByteMutation::Insert(at, byte) => bytes.insert(at % (len + 1), *byte),
        ByteMutation::BodyLength(n) => {
            // Replace the digits of field 9.
            if let Some(start) = bytes.windows(3).position(|w| w == b"\x019=") {
                let digits = start + 3;
                let end = bytes[digits..]
                    .iter()
                    .position(|&b| b == SOH)
                    .map_or(len, |e| digits + e);
                bytes.splice(digits..end, n.to_string().into_bytes());
            }
        }
        ByteMutation::CheckSum(sum) => {
            if len >= 4 && bytes.ends_with(&[SOH]) {
                let at = len - 4;
                bytes.splice(at..len - 1, format!("{sum:03}").into_bytes());
            }
        }
    }
}

/// A value the encoder can carry, with what the parser must read back.
#[derive(Clone, Debug)]
enum Value {
    Str(Vec<u8>),
    Uint(u64),
    Int(i64),
    Decimal(i64, u8),
    Char(u8),
    Timestamp(u64),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(any::<u8>().prop_filter("no SOH", |b| *b != SOH), 1..24)
            .prop_map(Value::Str),
        any::<u64>().prop_map(Value::Uint),
        any::<i64>().prop_map(Value::Int),
        (any::<i64>(), 0_u8..=18).prop_map(|(m, p)| Value::Decimal(m, p)),
        any::<u8>()
            .prop_filter("no SOH", |b| *b != SOH)
            .prop_map(Value::Char),
        // Whole milliseconds from 1970 to 2262.
        (0_u64..9_200_000_000_000).prop_map(|ms| Value::Timestamp(ms * 1_000_000)),
    ]
}

fn tag() -> impl Strategy<Value = u32> {
    (1_u32..1_000_000).prop_filter("not a framing tag", |t| !matches!(t, 8 | 9 | 10 | 35))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        max_len in prop::sample::select(vec![16_usize, 64, MAX_MESSAGE]),
    ) {
        pipeline(&bytes, max_len);
    }

    #[test]
    fn fix_shaped_bytes_never_panic(
        body in prop::collection::vec(
            prop::sample::select(b"0123456789=\x01=\x01ADFGHVNU1.-".to_vec()), 0..300),
        msg_type in prop::sample::select(vec!["D", "F", "G", "H", "V", "AN", "U1", "A", "0"]),
    ) {
        // A correct frame around random field-ish bytes reaches the parser and beyond.
        let mut fields = vec![
            b"49=DESK".to_vec(), b"56=AAITI".to_vec(), b"34=1".to_vec(),
            b"52=20240101-12:00:00".to_vec(),
        ];
        fields.extend(body.split(|&b| b == SOH).map(<[u8]>::to_vec));
        let bytes = assemble(msg_type.as_bytes(), &fields);
        pipeline(&bytes, MAX_MESSAGE);
    }

    #[test]
    fn mutated_messages_never_panic(
        index in 0..CORPUS.len(),
        field_mutations in prop::collection::vec(field_mutation(), 0..4),
        byte_mutations in prop::collection::vec(byte_mutation(), 0..3),
    ) {
        let (msg_type, mut fields) = corpus_fields(index);
        for mutation in &field_mutations {
            apply_fields(&mut fields, mutation);
        }
        // With the framing fixed up: the mutation reaches the dictionary and the decoder.
        let mut bytes = assemble(&msg_type, &fields);
        pipeline(&bytes, MAX_MESSAGE);
        // Byte-level damage, framing not fixed: mostly framing and parsing paths.
        for mutation in &byte_mutations {
            apply_bytes(&mut bytes, mutation);
        }
        pipeline(&bytes, MAX_MESSAGE);
    }

    #[test]
    fn encoded_messages_frame_and_parse(
        msg_type in prop::sample::select(vec!["8", "9", "W", "X", "AP", "U2", "j"]),
        fields in prop::collection::vec((tag(), value()), 0..40),
    ) {
        let mut enc = Encoder::new(64);
        enc.begin(msg_type.as_bytes());
        for (tag, value) in &fields {
            match value {
                Value::Str(bytes) => enc.str(*tag, bytes),
                Value::Uint(n) => enc.uint(*tag, *n),
                Value::Int(n) => enc.int(*tag, *n),
                Value::Decimal(m, p) => enc.decimal(*tag, *m, *p),
                Value::Char(c) => enc.char(*tag, *c),
                Value::Timestamp(ns) => enc.timestamp(*tag, UnixNanos(*ns)),
            }
        }
        let bytes = enc.finish().to_vec();
        prop_assert_eq!(frame(&bytes, 1 << 20), Framing::Complete(bytes.len()));
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        prop_assert_eq!(msg.msg_type(), msg_type.as_bytes());
        let body = &msg.fields()[3..msg.fields().len() - 1];
        prop_assert_eq!(body.len(), fields.len());
        for (field, (tag, value)) in body.iter().zip(&fields) {
            prop_assert_eq!(field.tag, *tag);
            let text = msg.value(field);
            match value {
                Value::Str(bytes) => prop_assert_eq!(text, &bytes[..]),
                Value::Uint(n) => {
                    let expected = n.to_string();
                    prop_assert_eq!(text, expected.as_bytes());
                    // parse_u64 reads up to 19 digits (no overflow check needed).
                    if *n < 10_000_000_000_000_000_000 {
                        prop_assert_eq!(parse_u64(text), Some(*n));
                    }
                }
                Value::Int(n) => {
                    let expected = n.to_string();
                    prop_assert_eq!(text, expected.as_bytes());
                }
                Value::Decimal(m, p) => {
                    let scale = Scale::new(*p).unwrap();
                    prop_assert_eq!(Price::parse(text, scale), Ok(Price(*m)));
                }
                Value::Char(c) => prop_assert_eq!(text, &[*c][..]),
                Value::Timestamp(ns) => prop_assert_eq!(
                    aaiti_gateway::fix::codec::parse_utc_timestamp(text),
                    Some(UnixNanos(*ns))
                ),
            }
        }
    }

    #[test]
    fn split_streams_frame_into_the_same_messages(
        picks in prop::collection::vec(0..CORPUS.len(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let messages: Vec<Vec<u8>> = picks
            .iter()
            .map(|&i| {
                let (msg_type, fields) = corpus_fields(i);
                assemble(&msg_type, &fields)
            })
            .collect();
        let stream = messages.concat();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let mut buffer = Vec::new();
        let mut framed = Vec::new();
        let mut from = 0;
        for point in points {
            buffer.extend_from_slice(&stream[from..point]);
            from = point;
            loop {
                match frame(&buffer, MAX_MESSAGE) {
                    Framing::Complete(len) => {
                        prop_assert!(len <= buffer.len());
                        framed.push(buffer.drain(..len).collect::<Vec<u8>>());
                    }
                    Framing::Incomplete => break,
                    other => prop_assert!(false, "{other:?} in a valid stream"),
                }
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(framed, messages);
    }
}

/// Feeds `stream` to the framer in pieces cut at `cuts`, as the acceptor does (drop what
/// is garbled, wait on incomplete, stop on another FIX version); returns the messages.
fn feed(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut buffer = Vec::new();
    let mut framed = Vec::new();
    let mut from = 0;
    for point in points {
        buffer.extend_from_slice(&stream[from..point]);
        from = point;
        loop {
            match frame(&buffer, MAX_MESSAGE) {
                Framing::Complete(len) => framed.push(buffer.drain(..len).collect()),
                Framing::Garbled { skip, .. } => {
                    buffer.drain(..skip);
                }
                Framing::Incomplete => break,
                Framing::WrongBeginString => return framed,
            }
        }
    }
    framed
}

/// A piece of a hostile stream.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    let message = (0..CORPUS.len()).prop_map(|i| {
        let (msg_type, fields) = corpus_fields(i);
        assemble(&msg_type, &fields)
    });
    prop_oneof![
        4 => message.clone(),
        2 => prop::collection::vec(any::<u8>(), 0..24),
        1 => (message, any::<usize>()).prop_map(|(m, cut)| m[..cut % m.len()].to_vec()),
        1 => prop::sample::select(vec![
            b"8".to_vec(), b"8=".to_vec(), b"8=F".to_vec(), b"8=FI".to_vec(),
            b"8=FIX".to_vec(), b"8=FIX.4.4\x019=".to_vec(), b"8=FIX.4.2\x01".to_vec(),
            b"\x0110=000\x01".to_vec(),
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn framing_does_not_depend_on_how_the_stream_is_cut(
        segments in prop::collection::vec(segment(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 1..16),
    ) {
        let stream = segments.concat();
        prop_assert_eq!(feed(&stream, &cuts), feed(&stream, &[]));
    }
}

#[test]
fn the_corpus_is_valid() {
    // The mutations start from messages that pass validation (so they test something).
    let mut parser = Parser::new();
    for (index, entry) in CORPUS.iter().enumerate() {
        let (msg_type, fields) = corpus_fields(index);
        let bytes = assemble(&msg_type, &fields);
        let msg = parser.parse(&bytes).unwrap();
        assert_eq!(dictionary::validate(&msg), Ok(()), "{entry:?}");
    }
}
