//! Not built yet: answers 501 until it is.

use super::error::ConsoleError;
use super::session::Signed;

pub async fn stream(_: Signed) -> ConsoleError {
    ConsoleError::not_found("not_built", "not built yet")
}
