//! The `rulesaga` command line.
fn main() {}
