//! The order service (being written).
