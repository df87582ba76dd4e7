//! The stock service (being written).
