//! The provider's side of a governed query, one straight pipeline per
//! request ([`pipeline`]): the agreement admitted ([`admission`]), one
//! query charged ([`quota`]), the dataset's engine found or made
//! ([`engines`]), the SQL enforced and run, the answer encoded, the audit
//! record made durable and the receipt signed. The request reads the
//! connector's [`crate::clock::Clock`] once, at its start; every step works
//! with that instant. Start reading at [`pipeline::Provider::query`].
//!
//! Dependencies point one way: `pipeline` uses the three others, which
//! know nothing of it or of each other.

pub mod admission;
pub mod engines;
pub mod pipeline;
pub mod quota;

pub use pipeline::{CheckOutcome, Provider, QueryAnswer, QueryRequest};
