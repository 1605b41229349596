//! Upcasters live in the domain crate, beside the events they read, so the write side
//! and the projections upcast stored events the same way; see
//! [`coinfold_domain::upcasting`].

pub use coinfold_domain::upcasting::*;
