//! The book's error type.

use aaiti_model::{Price, Qty};

/// Why a book operation was rejected. A rejected operation leaves the book unchanged, except
/// [`L2Book::replace_snapshot`](crate::L2Book::replace_snapshot), which leaves it empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The tick size given to the constructor is not positive.
    #[error("tick size {tick:?} is not positive")]
    InvalidTickSize {
        /// The tick size.
        tick: Price,
    },
    /// The window size given to the constructor is not a supported power of two.
    #[error("window of {window_ticks} ticks is not a power of two in {min}..={max}")]
    InvalidWindow {
        /// Requested window.
        window_ticks: usize,
        /// Smallest supported window.
        min: usize,
        /// Largest supported window.
        max: usize,
    },
    /// A price of zero or below.
    #[error("price {price:?} is not positive")]
    NonPositivePrice {
        /// The price.
        price: Price,
    },
    /// A price that is not a multiple of the tick size.
    #[error("price {price:?} is not a multiple of the tick size {tick:?}")]
    OffTick {
        /// The price.
        price: Price,
        /// The book's tick size.
        tick: Price,
    },
    /// A price above [`L2Book::MAX_PRICE`](crate::L2Book::MAX_PRICE).
    #[error("price {price:?} is above the largest supported price {max:?}")]
    PriceTooLarge {
        /// The price.
        price: Price,
        /// The limit.
        max: Price,
    },
    /// A negative quantity.
    #[error("quantity {qty:?} at price {price:?} is negative")]
    NegativeQty {
        /// The level's price.
        price: Price,
        /// The quantity.
        qty: Qty,
    },
    /// A [`BookDelta`](aaiti_model::BookDelta) with an unknown side code.
    #[error("book delta has unknown side code {code}")]
    UnknownSide {
        /// The code.
        code: u8,
    },
    /// A [`BookDelta`](aaiti_model::BookDelta) with an unknown action code.
    #[error("book delta has unknown action code {code}")]
    UnknownAction {
        /// The code.
        code: u8,
    },
}
