//! `functions/tasks` (and the stream function's `GET /tasks/{id}/stream`).

use crate::{Op, Registry};

pub fn operations(_r: &mut Registry) -> Vec<Op> {
    Vec::new()
}
