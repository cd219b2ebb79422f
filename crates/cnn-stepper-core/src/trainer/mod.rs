//! Training as a service for the window: a synchronous [`Session`] that applies [`Command`]s,
//! and a [`Worker`] thread that runs it and sends back [`Event`]s. No egui here: the worker
//! wakes its consumer through a plain closure. [`inspect`] redoes one feature-map pixel's
//! arithmetic from a [`Snapshot`], without asking the worker. Everything fails with a
//! [`TrainError`]; the worker turns it into the text of [`Event::Error`].

pub mod checkpoint;
pub mod divergence;
pub mod error;
pub mod inspect;
pub mod protocol;
pub mod session;
pub mod worker;

pub use checkpoint::{History, SessionFile};
pub use divergence::{DivergenceReason, divergence};
pub use error::TrainError;
pub use inspect::{
    ActivationPixel, ActivationStep, InspectError, Inspection, PixelGradient, PixelInspection, PixelRef, PoolPixel,
    conv_layer_of, inspect,
};
pub use protocol::{
    AccuracyPoint, BatchView, ClassEvidence, Command, ConvFilters, DivergedPoint, EvalResult, Event, EvidenceOf,
    Export, Fc1Unit, FilterView, GradientCheck, ImageId, LossPoint, MagnitudePoint, Misclassified, ModelView, ProbeInput,
    Probed, SampleView, Settings, Snapshot, TeachingResults, UpdateSize,
};
pub use session::{EVAL_IMAGES, EpochStats, Session, plan_for};
pub use worker::Worker;
