//! Vigil: real-time video supervision and NVR aggregation.
//!
//! The parts follow the data flow (see `docs/architecture.md`): `ingest` pulls cameras into the `hub`,
//! whose broadcasts feed the recorder, live viewers and `media` (snapshots); `db` stores the registry;
//! `auth` says who may do what and `audit` keeps the trace of it; `api` serves it all over HTTP; `sim` stands in for the cameras.
//!
//! Unsafe code is refused crate-wide; the four modules that need it say why in their docs and are the
//! only ones allowed it: `media::snapshot` (FFmpeg calls its binding lacks), `live::socket` (one
//! socket option), `memory` (one allocator parameter) and `sim::server` (one GStreamer call its binding
//! lacks).

#![deny(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod check;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod edge;
pub mod federation;
pub mod gb28181;
pub mod hub;
pub mod ingest;
pub mod live;
pub mod media;
#[allow(unsafe_code)] // one mallopt; see the module's doc
pub mod memory;
pub mod onvif;
pub mod private;
pub mod ptz;
pub mod record;
pub mod seed;
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;
pub mod storage;
pub mod time;
pub mod xml;
