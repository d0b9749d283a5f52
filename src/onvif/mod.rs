//! ONVIF, the cameras' own management protocol (ONVIF Core and Media specifications): finding cameras on
//! a site's network by WS-Discovery and describing them (make, model, media profiles with their sizes
//! and RTSP URIs), so that an admin adds them without typing a URL (docs/edge.md).
//!
//! Parts: `soap` (envelopes written with quick-xml, WS-Security UsernameToken digests), `discovery`
//! (the multicast Probe and its answers, forged ones set aside), `device` (device and media service
//! calls). Nothing found is added to Vigil by these parts: the admin picks.

pub mod device;
pub mod discovery;
pub mod ptz;
pub mod soap;
