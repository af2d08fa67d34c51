//! Shared by the fuzz targets: the instruments and accounts, and the invariants of the
//! inbound path.
#![allow(dead_code, reason = "each target uses a subset")]

use std::sync::OnceLock;

use aaiti_gateway::fix::app::{
    self, AccountSet, AppReject, DeskContext, DeskRequest, ReportStamp, Role, SessionScope,
};
use aaiti_gateway::fix::codec::{Encoder, Framing, Parser, frame};
use aaiti_gateway::fix::dictionary;
use aaiti_model::{AccountId, InstrumentRegistry, InstrumentSpec, Record, UnixNanos, VenueId};

pub const MAX_MESSAGE: usize = 4096;

fn fixtures() -> &'static (InstrumentRegistry, Vec<String>) {
    static FIXTURES: OnceLock<(InstrumentRegistry, Vec<String>)> = OnceLock::new();
    FIXTURES.get_or_init(|| {
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
        let registry = InstrumentRegistry::from_specs(&[
            spec("binance", "BTCUSDT"),
            spec("coinbase", "BTC-USD"),
        ])
        .expect("valid specs");
        (registry, vec!["acct".to_owned(), "other".to_owned()])
    })
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

/// One framed message through parse, validate, decode and the reject encoder.
fn process(bytes: &[u8], ctx: &DeskContext<'_>, parser: &mut Parser, enc: &mut Encoder) {
    let Ok(msg) = parser.parse(bytes) else {
        return;
    };
    let valid = dictionary::validate(&msg).is_ok();
    for scope in scopes() {
        match app::decode(&msg, ctx, &scope) {
            Ok(DeskRequest::Order(command) | DeskRequest::Status { command, .. }) => {
                assert_eq!(command.validate(), Ok(()), "{command:?}");
            }
            Ok(_) => {}
            Err(reject) => {
                if let AppReject::Session(session) = reject {
                    assert!(!valid || session.reason == 5, "{session:?}");
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
                app::encode_app_reject(enc, &msg, &reject, &stamp).expect("static texts");
                let answer = enc.finish().to_vec();
                assert_eq!(frame(&answer, 1 << 20), Framing::Complete(answer.len()));
                let mut answer_parser = Parser::new();
                let parsed = answer_parser.parse(&answer).expect("answer parses");
                assert_eq!(dictionary::validate(&parsed), Ok(()));
            }
        }
    }
}

/// Frames a whole buffer and processes every message.
pub fn pipeline(bytes: &[u8], max_len: usize) {
    let (registry, accounts) = fixtures();
    let ctx = DeskContext::new(registry, accounts).expect("valid names");
    let mut parser = Parser::new();
    let mut enc = Encoder::new(1024);
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        match frame(rest, max_len) {
            Framing::Complete(len) => {
                assert!(len > 0 && len <= rest.len() && len <= max_len);
                process(&rest[..len], &ctx, &mut parser, &mut enc);
                at += len;
            }
            Framing::Garbled { skip, .. } => {
                assert!(skip > 0 && skip <= rest.len());
                at += skip;
            }
            Framing::Incomplete | Framing::WrongBeginString => break,
        }
    }
}

/// Feeds `stream` to the framer in pieces ending at `cuts` (as the acceptor reads a
/// socket) and returns the messages it frames.
pub fn feed(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
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
