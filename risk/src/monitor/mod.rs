//! The real-time risk monitor: EWMA volatility and correlations, VaR, sizing (issue 5).

pub mod correlation;
