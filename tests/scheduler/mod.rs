//! The scheduler over real stores.

mod forked;
mod model;
mod recovery;
