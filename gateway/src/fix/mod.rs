//! FIX 4.4 for the quant desk: the tag=value codec, the FIX 4.4 dictionary the gateway
//! validates against, the session layer and the acceptor.

pub mod codec;
pub mod dictionary;
pub mod app;
pub mod session;
pub mod store;
pub mod auth;
pub mod throttle;
pub mod acceptor;
