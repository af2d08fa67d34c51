//! Order vocabulary: side, order type, time in force and flags.
//!
//! Records store these as `u8` codes (see [`crate::records`]); the enums convert with
//! `TryFrom<u8>` so an unknown code read from a ring or a journal is an error, not UB.

/// Defines an enum with stable wire codes (`#[repr(u8)]` or `#[repr(u16)]`), `code()`,
/// `TryFrom<code>`, and a lowercase name used in config, logs and JSON.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident: $repr:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal,)+ }) => {
        $(#[$doc])*
        #[repr($repr)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant = $code,)+
        }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The stable wire code.
            #[inline]
            pub const fn code(self) -> $repr {
                self as $repr
            }

            /// The lowercase name used in config, logs and JSON.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Parses the lowercase name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $repr;

            /// Fails with the unknown code.
            #[inline]
            fn try_from(code: $repr) -> Result<Self, $repr> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    other => Err(other),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// Buy or sell. For book records, `Buy` is the bid side and `Sell` the ask side.
    Side: u8 {
        /// Buy / bid.
        Buy = 1 => "buy",
        /// Sell / ask.
        Sell = 2 => "sell",
    }
);

impl Side {
    /// The other side.
    #[inline]
    pub const fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    /// +1 for buys, -1 for sells: signed position arithmetic.
    #[inline]
    pub const fn sign(self) -> i64 {
        match self {
            Self::Buy => 1,
            Self::Sell => -1,
        }
    }
}

wire_enum!(
    /// Order type.
    OrderType: u8 {
        /// Fill at the best available prices.
        Market = 1 => "market",
        /// Fill at the limit price or better.
        Limit = 2 => "limit",
        /// Becomes a market order when the stop price trades.
        Stop = 3 => "stop",
        /// Becomes a limit order when the stop price trades.
        StopLimit = 4 => "stop_limit",
    }
);

impl OrderType {
    /// True if the order carries a limit price.
    pub const fn has_limit_price(self) -> bool {
        matches!(self, Self::Limit | Self::StopLimit)
    }

    /// True if the order carries a stop (trigger) price.
    pub const fn has_stop_price(self) -> bool {
        matches!(self, Self::Stop | Self::StopLimit)
    }
}

wire_enum!(
    /// Time in force.
    TimeInForce: u8 {
        /// Good till canceled.
        Gtc = 1 => "gtc",
        /// Immediate or cancel: fill what is possible now, cancel the rest.
        Ioc = 2 => "ioc",
        /// Fill or kill: fill completely now or not at all.
        Fok = 3 => "fok",
        /// Expires at the end of the trading day.
        Day = 4 => "day",
        /// Good till date: expires at the order's `expire_at`.
        Gtd = 5 => "gtd",
    }
);

/// Order flags, a bit set stored as `u8` in records.
#[repr(transparent)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct OrderFlags(pub u8);

impl OrderFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// Post-only: reject (never take liquidity) if the order would cross.
    pub const POST_ONLY: Self = Self(1);
    /// Reduce-only: may only reduce the position.
    pub const REDUCE_ONLY: Self = Self(2);
    /// Every defined bit.
    pub const ALL: Self = Self(Self::POST_ONLY.0 | Self::REDUCE_ONLY.0);

    /// True if every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` set.
    #[inline]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// True if a bit outside [`OrderFlags::ALL`] is set (a corrupt or future record).
    #[inline]
    pub const fn has_unknown_bits(self) -> bool {
        self.0 & !Self::ALL.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for side in Side::ALL {
            assert_eq!(Side::try_from(side.code()), Ok(*side));
            assert_eq!(Side::from_name(side.name()), Some(*side));
        }
        for order_type in OrderType::ALL {
            assert_eq!(OrderType::try_from(order_type.code()), Ok(*order_type));
        }
        for tif in TimeInForce::ALL {
            assert_eq!(TimeInForce::try_from(tif.code()), Ok(*tif));
            assert_eq!(TimeInForce::from_name(tif.name()), Some(*tif));
        }
        assert_eq!(Side::try_from(0), Err(0));
        assert_eq!(OrderType::try_from(9), Err(9));
        assert_eq!(TimeInForce::try_from(200), Err(200));
    }

    #[test]
    fn flags() {
        let flags = OrderFlags::NONE.with(OrderFlags::POST_ONLY);
        assert!(flags.contains(OrderFlags::POST_ONLY));
        assert!(!flags.contains(OrderFlags::REDUCE_ONLY));
        assert!(!flags.has_unknown_bits());
        assert!(OrderFlags(0x80).has_unknown_bits());
        assert_eq!(Side::Buy.opposite(), Side::Sell);
        assert_eq!(Side::Sell.sign(), -1);
        assert!(OrderType::StopLimit.has_limit_price() && OrderType::StopLimit.has_stop_price());
        assert!(!OrderType::Market.has_limit_price());
    }
}
