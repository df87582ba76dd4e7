//! The payment service (being written).
