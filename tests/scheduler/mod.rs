//! The scheduler over real stores.

mod model;
