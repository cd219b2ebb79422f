//! Training as a service for the window: a synchronous [`Session`] that applies [`Command`]s,
//! and a [`Worker`] thread that runs it and sends back [`Event`]s. No egui here: the worker
//! wakes its consumer through a plain closure.

pub mod checkpoint;
pub mod protocol;
pub mod session;
pub mod worker;

pub use checkpoint::{History, SessionFile};
pub use protocol::{
    AccuracyPoint, BatchView, Command, EvalResult, Event, FilterView, LossPoint, SampleView, Settings, Snapshot,
};
pub use session::Session;
pub use worker::Worker;
