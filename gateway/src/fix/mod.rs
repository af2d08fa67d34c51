//! FIX 4.4 for the quant desk: the tag=value codec, the FIX 4.4 dictionary the gateway
//! validates against, the session layer and the acceptor.

pub mod acceptor;
pub mod app;
pub mod auth;
pub mod codec;
pub mod dictionary;
pub mod session;
pub mod store;
pub mod throttle;

/// A session-level reject (MsgType 3): the FIX 4.4 SessionRejectReason (373), the tag
/// concerned (RefTagID 371) and a text (58). Shared by the dictionary, the application
/// layer and the session layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// SessionRejectReason (373): 0 invalid tag number, 1 required tag missing, 2 tag not
    /// defined for this message type, 3 undefined tag, 4 tag specified without a value,
    /// 5 value is incorrect (out of range), 6 incorrect data format, 9 CompID problem,
    /// 10 SendingTime accuracy problem, 11 invalid MsgType, 13 tag appears more than once,
    /// 14 tag specified out of required order, 15 repeating group fields out of order,
    /// 16 incorrect NumInGroup count, 99 other.
    pub reason: u32,
    /// RefTagID (371), when one tag is at fault.
    pub ref_tag: Option<u32>,
    /// Text (58).
    pub text: &'static str,
}
