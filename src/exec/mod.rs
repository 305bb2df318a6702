//! (module under construction)
pub mod shim;
