//! Not built yet: answers 501 until it is.

use super::error::ConsoleError;
use super::session::Signed;

pub async fn check(_: Signed) -> ConsoleError {
    ConsoleError::not_found("not_built", "not built yet")
}

pub async fn repair(_: Signed) -> ConsoleError {
    ConsoleError::not_found("not_built", "not built yet")
}
