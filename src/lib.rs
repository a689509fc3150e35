//! outcome-audit: an independent auditor for outcome-based contracts (payment by results,
//! social impact bonds).
//!
//! The modules follow the pipeline, in order: [`spec`] (what the contract says) →
//! [`data`] (hashed inputs) → [`cohort`] (who is measured, and who is not and why) →
//! [`outcomes`] (what counts for each person) → [`measures`] → [`decision`] (threshold
//! and payment) → [`evidence`] (the result files' bytes) → [`bundle`] (sign, verify,
//! replay). Matched comparisons add [`stats`] (propensity model, inference),
//! [`matching`] and [`compare`]; risk-based contracts use [`risk`] (OGRS3 as data). [`pipeline`] strings the stages together; [`cli`] is the
//! command line.
//! [`synth`] makes synthetic data with a planted, known result.

pub mod bundle;
pub mod casemix;
pub mod claims;
pub mod cli;
pub mod cohort;
pub mod columns;
pub mod compare;
pub mod data;
pub mod dates;
pub mod decision;
pub mod digest;
pub mod direct_io;
pub mod evidence;
pub mod exact;
pub mod matching;
pub mod measures;
pub mod outcomes;
pub mod par;
pub mod pipeline;
pub mod predicted;
pub mod report;
pub mod report_sections;
pub mod risk;
pub mod sensitivity;
pub mod spec;
pub mod stats;
pub mod synth;
mod synth_cli;
