//! Errors, and the mapping of Binance error codes to [`RejectReason`]s.

use aaiti_model::{InstrumentId, RejectReason};
use serde::{Deserialize, Serialize};

/// Why the adapter cannot start or a blocking call on it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinanceError {
    /// A configuration value is out of range.
    #[error("[binance] `{key}` is out of range: {fix}")]
    Config {
        /// The key.
        key: &'static str,
        /// What to write instead.
        fix: &'static str,
    },
    /// A URL in the configuration cannot be used.
    #[error("[binance] `{key}` = {url:?}: {reason}")]
    Url {
        /// The key.
        key: &'static str,
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The TLS configuration (extra roots) cannot be built.
    #[error("[binance] TLS setup failed: {0}")]
    Tls(String),
    /// An instrument cannot be traded through this adapter.
    #[error("instrument {id} ({symbol:?}): {reason}")]
    Instrument {
        /// The instrument.
        id: InstrumentId,
        /// Its symbol.
        symbol: String,
        /// Why.
        reason: &'static str,
    },
    /// The adapter thread could not be started.
    #[error("cannot start the Binance adapter thread: {0}")]
    Spawn(String),
    /// The adapter thread has stopped.
    #[error("the Binance adapter has stopped")]
    Stopped,
    /// A blocking call did not complete in time.
    #[error("the Binance adapter did not answer within {0} ms")]
    Timeout(u64),
}

/// An error answer from Binance (or a transport failure), kept with the events it caused so
/// that the journal holds the venue's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueError {
    /// HTTP status (0: no HTTP answer, e.g. a connection failure or a local refusal).
    pub http_status: u16,
    /// Binance error code, e.g. `-2010` (0 when the answer had none).
    pub code: i32,
    /// Binance's message, or a description of the local or transport failure.
    pub message: String,
}

impl std::fmt::Display for VenueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} code {}: {}",
            self.http_status, self.code, self.message
        )
    }
}

/// The closest [`RejectReason`] for a refused new order.
///
/// Binance's documented codes (errors.md): `-2010 NEW_ORDER_REJECTED` and `-1013
/// INVALID_MESSAGE` carry the real reason in the message ("Account has insufficient balance
/// for requested action.", "Filter failure: LOT_SIZE", ...), so both are looked at.
pub(crate) fn new_order_reason(http_status: u16, code: i32, message: &str) -> RejectReason {
    if http_status == 429 || http_status == 418 {
        return RejectReason::RateLimited;
    }
    match code {
        -2010 | -1010 => engine_message_reason(message),
        -1013 => filter_reason(message),
        -1003 | -1015 => RejectReason::RateLimited,
        -1002 | -1022 | -2014 | -2015 => RejectReason::NotAuthorized,
        -1121 => RejectReason::UnknownInstrument,
        -1014 | -1115 | -1116 | -1020 => RejectReason::UnsupportedOrder,
        -1111 if message.contains("quantity") => RejectReason::InvalidQuantity,
        -1111 => RejectReason::InvalidPrice,
        _ => RejectReason::VenueReject,
    }
}

/// The closest [`RejectReason`] for a refused cancel of an order we know.
pub(crate) fn cancel_reason(http_status: u16, code: i32, message: &str) -> RejectReason {
    if http_status == 429 || http_status == 418 {
        return RejectReason::RateLimited;
    }
    match code {
        // "Unknown order sent.": the order is no longer open at the venue (filled, canceled
        // or expired), which for an order we track means too late.
        -2011 | -2013 => RejectReason::TooLateToCancel,
        -1003 | -1015 => RejectReason::RateLimited,
        -1002 | -1022 | -2014 | -2015 => RejectReason::NotAuthorized,
        -1121 => RejectReason::UnknownInstrument,
        _ if message.contains("not permitted") || message.contains("may not") => {
            RejectReason::NotAuthorized
        }
        _ => RejectReason::VenueReject,
    }
}

/// Messages of `-2010`/`-1010` (matching engine refusals).
fn engine_message_reason(message: &str) -> RejectReason {
    let table: [(&str, RejectReason); 10] = [
        ("insufficient balance", RejectReason::InsufficientBalance),
        (
            "immediately match and take",
            RejectReason::PostOnlyWouldCross,
        ),
        ("Duplicate order", RejectReason::DuplicateClientOrderId),
        ("Market is closed", RejectReason::InstrumentDisabled),
        (
            "not supported for this symbol",
            RejectReason::UnsupportedOrder,
        ),
        (
            "Unsupported order combination",
            RejectReason::UnsupportedOrder,
        ),
        ("trigger immediately", RejectReason::InvalidPrice),
        ("is zero or less", RejectReason::BelowMinNotional),
        ("disabled on this account", RejectReason::NotAuthorized),
        ("may not place", RejectReason::NotAuthorized),
    ];
    table
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map_or(RejectReason::VenueReject, |&(_, reason)| reason)
}

/// Messages of `-1013` ("Filter failure: NAME").
fn filter_reason(message: &str) -> RejectReason {
    let Some(filter) = message.split("Filter failure: ").nth(1) else {
        return RejectReason::VenueReject;
    };
    let filter = filter.trim_end_matches('.').trim();
    match filter {
        "PRICE_FILTER" => RejectReason::InvalidPrice,
        "PERCENT_PRICE" | "PERCENT_PRICE_BY_SIDE" => RejectReason::PriceBand,
        "LOT_SIZE" | "MARKET_LOT_SIZE" => RejectReason::InvalidQuantity,
        "MIN_NOTIONAL" | "NOTIONAL" => RejectReason::BelowMinNotional,
        "MAX_NUM_ORDERS"
        | "MAX_NUM_ALGO_ORDERS"
        | "MAX_NUM_ICEBERG_ORDERS"
        | "EXCHANGE_MAX_NUM_ORDERS"
        | "EXCHANGE_MAX_NUM_ALGO_ORDERS"
        | "EXCHANGE_MAX_NUM_ICEBERG_ORDERS" => RejectReason::MaxOpenOrders,
        "MAX_POSITION" => RejectReason::MaxPosition,
        _ => RejectReason::VenueReject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_map_to_the_closest_reason() {
        let reason = |code, msg| new_order_reason(400, code, msg);
        assert_eq!(
            reason(
                -2010,
                "Account has insufficient balance for requested action."
            ),
            RejectReason::InsufficientBalance
        );
        assert_eq!(
            reason(-2010, "Order would immediately match and take."),
            RejectReason::PostOnlyWouldCross
        );
        assert_eq!(
            reason(-2010, "Duplicate order sent."),
            RejectReason::DuplicateClientOrderId
        );
        assert_eq!(reason(-2010, "Something new."), RejectReason::VenueReject);
        assert_eq!(
            reason(-1013, "Filter failure: PRICE_FILTER"),
            RejectReason::InvalidPrice
        );
        assert_eq!(
            reason(-1013, "Filter failure: LOT_SIZE"),
            RejectReason::InvalidQuantity
        );
        assert_eq!(
            reason(-1013, "Filter failure: NOTIONAL"),
            RejectReason::BelowMinNotional
        );
        assert_eq!(
            reason(-1013, "Filter failure: MAX_NUM_ORDERS"),
            RejectReason::MaxOpenOrders
        );
        assert_eq!(
            reason(-1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
            RejectReason::PriceBand
        );
        assert_eq!(reason(-1022, "Signature"), RejectReason::NotAuthorized);
        assert_eq!(
            reason(-1121, "Invalid symbol."),
            RejectReason::UnknownInstrument
        );
        assert_eq!(
            new_order_reason(429, -1003, "Too much request weight used"),
            RejectReason::RateLimited
        );
        assert_eq!(
            cancel_reason(400, -2011, "Unknown order sent."),
            RejectReason::TooLateToCancel
        );
    }
}
