//! FIX 4.4 for the quant desk: the tag=value codec, the FIX 4.4 dictionary the gateway
//! validates against, the session layer and the acceptor.

pub mod codec;
