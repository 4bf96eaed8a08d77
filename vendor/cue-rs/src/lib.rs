#![doc = include_str!("../README.md")]

pub mod ctx;
mod drop;
pub mod error;
pub mod value;

pub use ctx::Ctx;
pub use value::Value;
