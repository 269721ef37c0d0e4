//! The answers of [`crate::ChangeFeed`] and of a worker's heartbeat.

/// What [`crate::ChangeFeed::change_marker`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Marker {
    /// The store cannot tell cheaply whether anything changed: claim to find out.
    Unsupported,
    /// The current value; it differs from an earlier one after any job write committed in
    /// between, through any connection or process.
    At(u64),
}

/// How [`crate::ChangeFeed::wait_for_change`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wake {
    /// A write may have made a job claimable: claim now.
    Changed,
    /// The timeout passed with no such write seen.
    TimedOut,
    /// Returned at once: this store cannot wait for other processes' writes; poll
    /// [`crate::ChangeFeed::change_marker`] instead.
    Unsupported,
}

/// What [`crate::Coordination::heartbeat_worker`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Heartbeat {
    /// Recorded; keep running.
    Recorded,
    /// Recorded, and `worker stop` asked this worker to stop.
    StopRequested,
    /// The worker is not registered (it was deregistered as dead); nothing was written.
    Unregistered,
}

impl Heartbeat {
    /// The answer for a registered worker whose stop flag reads `stop_requested`.
    #[must_use]
    pub fn registered(stop_requested: bool) -> Self {
        if stop_requested {
            Heartbeat::StopRequested
        } else {
            Heartbeat::Recorded
        }
    }
}
