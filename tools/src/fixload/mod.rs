//! The FIX load generator (being written).
