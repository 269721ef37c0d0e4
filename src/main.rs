//! The queuectl command-line tool (the CLI lands with its own issue).

fn main() {}
