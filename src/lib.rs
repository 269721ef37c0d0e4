//! queuectl
