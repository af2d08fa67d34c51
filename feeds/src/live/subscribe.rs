//! Subscribe and unsubscribe messages per venue, generated from the instruments' symbols.

/// What to subscribe to on a connection. The symbols are the registry's venue symbols of the
/// handler's venue (`BTCUSDT`, `BTC-USD`, `XBT/USD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription {
    /// Nothing to send (the URL says it all, or a test server).
    None,
    /// Binance combined streams in the URL: `<url>/stream?streams=<symbol>@<stream>/...`, for
    /// each symbol (lower-cased) and each of `streams` (`depth@100ms`, `trade`, `bookTicker`).
    BinanceCombined {
        /// Stream suffixes.
        streams: Vec<String>,
    },
    /// Coinbase Exchange: `{"type":"subscribe","product_ids":[...],"channels":[...]}`.
    Coinbase {
        /// Channels (`level2`, `ticker`, `matches`).
        channels: Vec<String>,
    },
    /// Kraken v1: `{"event":"subscribe","pair":[...],"subscription":{"name":"book","depth":N}}`
    /// and, with `trades`, the same for `{"name":"trade"}`.
    KrakenV1 {
        /// Book depth (10, 25, 100, 500 or 1000).
        depth: u32,
        /// Also subscribe to trades.
        trades: bool,
    },
    /// Kraken v2: `{"method":"subscribe","params":{"channel":"book","symbol":[...],"depth":N}}`
    /// and, with `trades`, `{"channel":"trade"}`.
    KrakenV2 {
        /// Book depth (10, 25, 100, 500 or 1000).
        depth: u32,
        /// Also subscribe to trades.
        trades: bool,
    },
}

impl Subscription {
    /// Binance's default: diff depth at 100 ms, trades and best bid/offer.
    pub fn binance_default() -> Self {
        Self::BinanceCombined {
            streams: vec!["depth@100ms".into(), "trade".into(), "bookTicker".into()],
        }
    }

    /// The URL to connect to: `base` itself, or with the Binance combined-stream path.
    pub fn url(&self, base: &str, symbols: &[&str]) -> String {
        match self {
            Self::BinanceCombined { streams } => {
                let mut url = base.trim_end_matches('/').to_owned();
                url.push_str("/stream?streams=");
                let mut first = true;
                for symbol in symbols {
                    for stream in streams {
                        if !first {
                            url.push('/');
                        }
                        first = false;
                        url.push_str(&symbol.to_ascii_lowercase());
                        url.push('@');
                        url.push_str(stream);
                    }
                }
                url
            }
            _ => base.to_owned(),
        }
    }

    /// The text messages to send once connected.
    pub fn subscribe_messages(&self, symbols: &[&str]) -> Vec<String> {
        self.messages(symbols, true)
    }

    /// The text messages that undo [`Subscription::subscribe_messages`].
    pub fn unsubscribe_messages(&self, symbols: &[&str]) -> Vec<String> {
        self.messages(symbols, false)
    }

    fn messages(&self, symbols: &[&str], subscribe: bool) -> Vec<String> {
        let list = json_list(symbols);
        match self {
            Self::None | Self::BinanceCombined { .. } => Vec::new(),
            Self::Coinbase { channels } => {
                let kind = if subscribe {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                let channels = json_list(channels);
                vec![format!(
                    r#"{{"type":"{kind}","product_ids":{list},"channels":{channels}}}"#
                )]
            }
            Self::KrakenV1 { depth, trades } => {
                let event = if subscribe {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                let mut out = vec![format!(
                    r#"{{"event":"{event}","pair":{list},"subscription":{{"name":"book","depth":{depth}}}}}"#
                )];
                if *trades {
                    out.push(format!(
                        r#"{{"event":"{event}","pair":{list},"subscription":{{"name":"trade"}}}}"#
                    ));
                }
                out
            }
            Self::KrakenV2 { depth, trades } => {
                let method = if subscribe {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                let mut out = vec![format!(
                    r#"{{"method":"{method}","params":{{"channel":"book","symbol":{list},"depth":{depth},"snapshot":true}}}}"#
                )];
                if *trades {
                    out.push(format!(
                        r#"{{"method":"{method}","params":{{"channel":"trade","symbol":{list}}}}}"#
                    ));
                }
                out
            }
        }
    }
}

/// `["a","b"]`, escaping `"` and `\` (symbols and channel names are plain ASCII in practice).
fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.as_ref().chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_url() {
        let s = Subscription::binance_default();
        assert_eq!(
            s.url("wss://stream.binance.com:9443/", &["BTCUSDT", "ETHUSDT"]),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade/\
             btcusdt@bookTicker/ethusdt@depth@100ms/ethusdt@trade/ethusdt@bookTicker"
        );
        assert!(s.subscribe_messages(&["BTCUSDT"]).is_empty());
    }

    #[test]
    fn venue_messages() {
        let coinbase = Subscription::Coinbase {
            channels: vec!["level2".into(), "matches".into()],
        };
        assert_eq!(
            coinbase.subscribe_messages(&["BTC-USD"]),
            [r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2","matches"]}"#]
        );
        assert!(coinbase.unsubscribe_messages(&["BTC-USD"])[0].contains("unsubscribe"));
        let v1 = Subscription::KrakenV1 {
            depth: 1000,
            trades: true,
        };
        assert_eq!(
            v1.subscribe_messages(&["XBT/USD", "ETH/USD"]),
            [
                r#"{"event":"subscribe","pair":["XBT/USD","ETH/USD"],"subscription":{"name":"book","depth":1000}}"#,
                r#"{"event":"subscribe","pair":["XBT/USD","ETH/USD"],"subscription":{"name":"trade"}}"#
            ]
        );
        let v2 = Subscription::KrakenV2 {
            depth: 10,
            trades: false,
        };
        assert_eq!(
            v2.subscribe_messages(&["BTC/USD"]),
            [
                r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10,"snapshot":true}}"#
            ]
        );
        for message in v2.subscribe_messages(&["a\"b\\c"]) {
            assert!(message.contains(r#"["a\"b\\c"]"#));
        }
    }
}
