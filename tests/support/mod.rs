//! Helpers shared by the integration test modules.

pub(crate) mod pg;
