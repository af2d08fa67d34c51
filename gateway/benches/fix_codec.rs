//! FIX codec benchmark (being written).
fn main() {}
