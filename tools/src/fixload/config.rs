//! The load generator's configuration and its validation into the values the sessions use.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use aaiti_model::{Scale, parse_fixed};

use super::LoadError;

/// Everything one run of the load generator needs. [`LoadConfig::new`] gives the defaults
/// of the command line; the fields are public so a harness can adjust them.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The acceptor's address.
    pub connect: SocketAddr,
    /// SenderCompID (49) pattern: `{n}` is replaced by the session number (1-based);
    /// without `{n}`, session 1 uses the text as is and session `n` appends `n`
    /// (`DESK`, `DESK2`, `DESK3`...).
    pub sender: String,
    /// TargetCompID (56), the acceptor's CompID.
    pub target: String,
    /// Username (553) sent in the Logon, if any.
    pub username: Option<String>,
    /// Password (554) sent in the Logon, if any.
    pub password: Option<String>,
    /// Sends ResetSeqNumFlag (141=Y) in the Logon so both sides start at 1. The generator
    /// keeps no sequence store, so without it a second run against an acceptor that keeps
    /// its numbers starts too low.
    pub reset_seq_num: bool,
    /// HeartBtInt (108), whole seconds, at least 1.
    pub heartbeat_secs: u32,
    /// Sessions (connections).
    pub sessions: usize,
    /// Threads driving the sessions (sessions are dealt round-robin); at most the number
    /// of cores.
    pub threads: usize,
    /// Orders per second per session, open loop; `0.0` runs closed loop at the maximum
    /// rate with [`window`](Self::window) orders in flight per session.
    pub rate: f64,
    /// Orders in flight per session in closed loop.
    pub window: usize,
    /// Measured time after the warmup.
    pub duration: Duration,
    /// Time at the start whose orders are sent but not measured.
    pub warmup: Duration,
    /// The order mix.
    pub mix: Mix,
    /// Symbol (55).
    pub symbol: String,
    /// SecurityExchange (207), the venue the order is for.
    pub exchange: String,
    /// Account (1).
    pub account: String,
    /// Reference price, a decimal (`65000.5`): buys rest below it, sells above.
    pub price: String,
    /// Tick size, a decimal.
    pub tick: String,
    /// Order quantity (38), a decimal.
    pub qty: String,
    /// Extra ticks, uniform in `0..=price_jitter_ticks`, beyond the one-tick minimum
    /// distance from [`price`](Self::price).
    pub price_jitter_ticks: u32,
    /// Seed of the order generator (sides, prices, mix, which open order to cancel).
    pub seed: u64,
    /// Limit on establishing each TCP connection.
    pub connect_timeout: Duration,
    /// Limit on the Logon exchange.
    pub logon_timeout: Duration,
    /// How long to wait for the last acknowledgements after the last send.
    pub drain_timeout: Duration,
    /// Never sleep between events (spin with `yield`), even when nothing is in flight and
    /// the next send is far away.
    pub busy_poll: bool,
    /// Cores to pin the driving threads to (thread `i` on `cores[i % len]`); empty leaves
    /// placement to the OS. Pinning keeps the generator off the cores of the system under
    /// test, whose busy-spinning threads would otherwise delay its wake-ups.
    pub cores: Vec<usize>,
}

impl LoadConfig {
    /// The defaults of the command line, connecting to `connect`.
    pub fn new(connect: SocketAddr) -> Self {
        Self {
            connect,
            sender: "DESK".to_owned(),
            target: "AAITI".to_owned(),
            username: None,
            password: None,
            reset_seq_num: true,
            heartbeat_secs: 30,
            sessions: 1,
            threads: 1,
            rate: 1000.0,
            window: 32,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            mix: Mix::default(),
            symbol: "BTCUSDT".to_owned(),
            exchange: "binance".to_owned(),
            account: "paper-1".to_owned(),
            price: "50000".to_owned(),
            tick: "0.01".to_owned(),
            qty: "0.001".to_owned(),
            price_jitter_ticks: 100,
            seed: 0x00A4_17E5_EED0,
            connect_timeout: Duration::from_secs(5),
            logon_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            busy_poll: false,
            cores: Vec::new(),
        }
    }

    /// The SenderCompID of session `n` (1-based), from the [`sender`](Self::sender)
    /// pattern.
    pub fn sender_comp_id(&self, n: usize) -> String {
        if self.sender.contains("{n}") {
            self.sender.replace("{n}", &n.to_string())
        } else if n == 1 {
            self.sender.clone()
        } else {
            format!("{}{n}", self.sender)
        }
    }

    /// Checks the configuration and derives the order parameters.
    pub(super) fn validate(&self) -> Result<OrderParams, LoadError> {
        let bad = |what: String| Err(LoadError::Config(what));
        // Five digits keep the ClOrdID within 40 bytes (see `orders`).
        if self.sessions == 0 || self.sessions > 99_999 {
            return bad("--sessions must be between 1 and 99999".into());
        }
        // More spinning threads than cores would only fight over them.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let max_threads = self.sessions.min(cores);
        if self.threads == 0 || self.threads > max_threads {
            return bad(format!(
                "--threads must be between 1 and {max_threads} (the sessions, at most one per core)"
            ));
        }
        if !self.rate.is_finite() || self.rate < 0.0 || self.rate > 10_000_000.0 {
            return bad(format!(
                "--rate {} is not between 0 and 10000000",
                self.rate
            ));
        }
        if self.rate == 0.0 && self.window == 0 {
            return bad("--window must be at least 1 in closed loop (--rate 0)".into());
        }
        if self.heartbeat_secs == 0 {
            return bad("--heartbeat must be at least 1 second".into());
        }
        if self.duration.is_zero() {
            return bad("--duration must be positive".into());
        }
        if self.mix.total() == 0 {
            return bad("--mix needs at least one positive weight".into());
        }
        for n in 1..=self.sessions {
            fix_text("SenderCompID", &self.sender_comp_id(n))?;
        }
        fix_text("--target", &self.target)?;
        fix_text("--symbol", &self.symbol)?;
        fix_text("--exchange", &self.exchange)?;
        fix_text("--account", &self.account)?;
        if let Some(username) = &self.username {
            fix_text("--username", username)?;
        }
        if let Some(password) = &self.password {
            fix_text("--password", password)?;
        }
        // One scale for price, tick and quantity: the most decimals any of them has, so all
        // three are exact mantissas and prices are `price ± k * tick` in integers.
        let places = [&self.price, &self.tick, &self.qty]
            .iter()
            .map(|text| {
                text.split_once('.')
                    .map_or(0, |(_, fraction)| fraction.len())
            })
            .max()
            .unwrap_or(0);
        let scale = u8::try_from(places)
            .ok()
            .and_then(|places| Scale::new(places).ok())
            .ok_or_else(|| LoadError::Config(format!("more than 18 decimals ({places})")))?;
        let decimal = |name: &str, text: &str| -> Result<i64, LoadError> {
            match parse_fixed(text.as_bytes(), scale) {
                Ok(value) if value > 0 => Ok(value),
                Ok(_) => Err(LoadError::Config(format!("{name} {text} must be positive"))),
                Err(error) => Err(LoadError::Config(format!("{name} {text}: {error}"))),
            }
        };
        let price = decimal("--price", &self.price)?;
        let tick = decimal("--tick", &self.tick)?;
        let qty = decimal("--qty", &self.qty)?;
        // The farthest buy is `price - (jitter + 1) * tick`; it must stay positive.
        let farthest = i64::from(self.price_jitter_ticks)
            .checked_add(1)
            .and_then(|ticks| ticks.checked_mul(tick));
        match farthest {
            Some(distance) if distance < price && price.checked_add(distance).is_some() => {}
            _ => {
                return bad(format!(
                    "--price {} is not above ({} + 1) ticks of {}: buys would not be positive",
                    self.price, self.price_jitter_ticks, self.tick
                ));
            }
        }
        Ok(OrderParams {
            symbol: self.symbol.clone().into_bytes(),
            exchange: self.exchange.clone().into_bytes(),
            account: self.account.clone().into_bytes(),
            price,
            tick,
            qty,
            places: scale.places(),
            jitter_ticks: self.price_jitter_ticks,
            mix: self.mix,
        })
    }
}

/// A value sent in a FIX field: not empty, printable ASCII (which also keeps out SOH).
fn fix_text(name: &str, text: &str) -> Result<(), LoadError> {
    if text.is_empty() || !text.bytes().all(|byte| (0x20..0x7f).contains(&byte)) {
        return Err(LoadError::Config(format!(
            "{name} {text:?} must be non-empty printable ASCII"
        )));
    }
    Ok(())
}

/// What the orders carry, validated.
#[derive(Clone, Debug)]
pub(super) struct OrderParams {
    pub(super) symbol: Vec<u8>,
    pub(super) exchange: Vec<u8>,
    pub(super) account: Vec<u8>,
    /// Mantissas at `places` decimals.
    pub(super) price: i64,
    pub(super) tick: i64,
    pub(super) qty: i64,
    pub(super) places: u8,
    pub(super) jitter_ticks: u32,
    pub(super) mix: Mix,
}

/// Relative weights of the order kinds: `new=80,cancel=10,replace=10`. Cancels and
/// replaces target an order acknowledged as New; with none open a new order is sent in
/// their place (and counted in [`LoadReport::fallback_new`](super::LoadReport)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Weight of NewOrderSingle (D).
    pub new: u32,
    /// Weight of OrderCancelRequest (F).
    pub cancel: u32,
    /// Weight of OrderCancelReplaceRequest (G).
    pub replace: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            new: 80,
            cancel: 10,
            replace: 10,
        }
    }
}

impl Mix {
    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        u64::from(self.new) + u64::from(self.cancel) + u64::from(self.replace)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "new={},cancel={},replace={}",
            self.new, self.cancel, self.replace
        )
    }
}

impl FromStr for Mix {
    type Err = LoadError;

    /// `kind=weight` pairs separated by commas, kinds `new`, `cancel`, `replace`; a kind
    /// left out weighs 0.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut mix = Self {
            new: 0,
            cancel: 0,
            replace: 0,
        };
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let bad = || LoadError::Config(format!("--mix {text:?}: bad part {part:?}"));
            let (kind, weight) = part.split_once('=').ok_or_else(bad)?;
            let weight: u32 = weight.trim().parse().map_err(|_| bad())?;
            match kind.trim() {
                "new" => mix.new = weight,
                "cancel" => mix.cancel = weight,
                "replace" => mix.replace = weight,
                _ => return Err(bad()),
            }
        }
        if mix.total() == 0 {
            return Err(LoadError::Config(format!(
                "--mix {text:?} has no positive weight"
            )));
        }
        Ok(mix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_rejects_bad_text() {
        assert_eq!(
            "new=80,cancel=10,replace=10".parse::<Mix>().unwrap(),
            Mix::default()
        );
        assert_eq!(
            "new=1".parse::<Mix>().unwrap(),
            Mix {
                new: 1,
                cancel: 0,
                replace: 0
            }
        );
        assert!("new=0".parse::<Mix>().is_err());
        assert!("new=x".parse::<Mix>().is_err());
        assert!("fill=3".parse::<Mix>().is_err());
        assert!("new".parse::<Mix>().is_err());
    }

    #[test]
    fn sender_pattern() {
        let mut config = LoadConfig::new(([127, 0, 0, 1], 1).into());
        assert_eq!(config.sender_comp_id(1), "DESK");
        assert_eq!(config.sender_comp_id(3), "DESK3");
        config.sender = "LOAD-{n}-X".into();
        assert_eq!(config.sender_comp_id(1), "LOAD-1-X");
        assert_eq!(config.sender_comp_id(12), "LOAD-12-X");
    }

    #[test]
    fn prices_share_one_scale() {
        let mut config = LoadConfig::new(([127, 0, 0, 1], 1).into());
        config.price = "65000.5".into();
        config.tick = "0.01".into();
        config.qty = "0.00123".into();
        let params = config.validate().unwrap();
        assert_eq!(params.places, 5);
        assert_eq!(params.price, 6_500_050_000);
        assert_eq!(params.tick, 1_000);
        assert_eq!(params.qty, 123);
        config.price_jitter_ticks = 10_000_000;
        assert!(config.validate().is_err());
        config.price_jitter_ticks = 1;
        config.tick = "0".into();
        assert!(config.validate().is_err());
        config.tick = "1e-2".into();
        assert!(config.validate().is_err());
        config.tick = "0.01".into();
        config.symbol = "BTC\u{1}".into();
        assert!(config.validate().is_err());
    }
}
