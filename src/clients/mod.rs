//! Clients of the external systems astreinte talks to, one file per system, each with an
//! error type that says whether a retry is worth it.

pub mod kube;
