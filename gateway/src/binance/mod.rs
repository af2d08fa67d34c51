//! Binance spot exchange adapter.
