//! What a camera can be asked to do with its pan, tilt and zoom, whatever carries it (GB/T 28181 device
//! control in `gb28181::ptz`, ONVIF PTZ in `onvif::ptz`; steered by `edge::ptz`).

/// What a camera is asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ptz {
    /// Continuous move: each of -1.0..=1.0 (pan right+, tilt up+, zoom in+); 0 leaves that axis still.
    Move {
        pan: f64,
        tilt: f64,
        zoom: f64,
    },
    Stop,
    Preset {
        op: PresetOp,
        number: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetOp {
    Set,
    Goto,
    Delete,
}
