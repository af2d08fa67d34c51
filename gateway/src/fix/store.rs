//! Where a session keeps its sequence numbers and the messages it sent (for resends).
