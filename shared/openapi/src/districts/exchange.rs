//! `functions/exchange`.

use crate::{Op, Registry};

pub fn operations(_r: &mut Registry) -> Vec<Op> {
    Vec::new()
}
