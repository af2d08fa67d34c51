//! Placeholder: filled in by issue 5/6.
fn main() {}
