//! Actuators: the bounded actions a rule may take, one folder or file per family, each under
//! a deadline, each recorded where the operator will look.

pub mod kube;
