//! Per-queue controls: [`QueueSettings`], read and written through
//! [`crate::Coordination::queue_settings`] and its setters, and obeyed by every claim.

/// One queue's controls. A queue without a stored entry has the defaults (not paused, no
/// limit), which is also what [`QueueSettings::new`] gives; a store keeps an entry only
/// while it differs from them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueueSettings {
    /// The queue's name.
    pub queue: String,
    /// Whether claims skip the queue's jobs (`queue pause`).
    pub paused: bool,
    /// At most this many of the queue's jobs are `processing` at once (`queue
    /// concurrency`); `None`: no limit. `Some(0)` admits none (the CLI never sets it).
    pub concurrency: Option<u32>,
}

impl QueueSettings {
    /// The defaults for `queue`: not paused, no limit.
    #[must_use]
    pub fn new(queue: impl Into<String>) -> Self {
        QueueSettings {
            queue: queue.into(),
            paused: false,
            concurrency: None,
        }
    }

    /// Whether these are the defaults, which a store does not keep.
    #[must_use]
    pub fn is_default(&self) -> bool {
        !self.paused && self.concurrency.is_none()
    }

    /// Whether a claim may take this queue's jobs only under a cap it must check
    /// atomically: not paused, with a limit.
    #[must_use]
    pub fn is_limited(&self) -> bool {
        !self.paused && self.concurrency.is_some()
    }
}

/// What one change to a queue's settings sets; see
/// [`crate::Coordination::set_queue_settings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueChange {
    /// Pause (`true`) or resume (`false`) the queue.
    Paused(bool),
    /// Set (`Some`, at least 1) or remove (`None`) the queue's concurrency limit.
    Concurrency(Option<u32>),
}

impl QueueChange {
    /// Applies the change to `settings`.
    pub fn apply(self, settings: &mut QueueSettings) {
        match self {
            QueueChange::Paused(p) => settings.paused = p,
            QueueChange::Concurrency(c) => settings.concurrency = c,
        }
    }
}
