//! Product workflows that take more than one HighLevel call: the all-or-nothing composite create.

pub mod create;
