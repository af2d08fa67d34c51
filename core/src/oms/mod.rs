//! The order manager (skeleton).
