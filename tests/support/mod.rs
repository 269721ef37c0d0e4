//! Helpers shared by the integration test modules.

pub(crate) mod intercept;
pub(crate) mod pg;
