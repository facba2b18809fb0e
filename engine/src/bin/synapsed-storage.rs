//! The `synapsed-storage` command-line tool.

fn main() {}
