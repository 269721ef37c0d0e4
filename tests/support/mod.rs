//! Helpers shared by the integration test modules.

pub(crate) mod http;
pub(crate) mod intercept;
pub(crate) mod metrics_text;
pub(crate) mod pg;
