//! The voucher service (being written).
