//! The FIX 4.4 session layer: logon, heartbeats, sequence numbers, resend, reject, logout.
