//! Workers through the real binary (filled in once the runtime is wired).
