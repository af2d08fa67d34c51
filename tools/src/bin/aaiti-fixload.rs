//! `aaiti-fixload`: a FIX 4.4 load generator (being written).
fn main() {}
