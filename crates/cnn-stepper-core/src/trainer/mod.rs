//! Training as a service for the window: a synchronous [`Session`] that applies [`Command`]s,
//! and a [`Worker`] thread that runs it and sends back [`Event`]s. No egui here: the worker
//! wakes its consumer through a plain closure. [`inspect`] redoes one feature-map pixel's
//! arithmetic from a [`Snapshot`], without asking the worker.

pub mod checkpoint;
pub mod inspect;
pub mod protocol;
pub mod session;
pub mod worker;

pub use checkpoint::{History, SessionFile};
pub use inspect::{InspectError, InspectLayer, PixelGradient, PixelInspection, PixelRef, inspect_pixel};
pub use protocol::{
    AccuracyPoint, BatchView, ClassEvidence, Command, ConvWeights, EvalResult, Event, EvidenceOf, Export, Fc1Unit,
    FilterView, GradientCheck, ImageId, LossPoint, MagnitudePoint, Misclassified, ProbeInput, Probed, SampleView,
    Settings, Snapshot, TeachingResults,
};
pub use session::Session;
pub use worker::Worker;
