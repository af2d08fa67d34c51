//! The FIX acceptor: many sessions on one `mio` event loop.
