//! PTZ over GB/T 28181 device control (§9.3; the `PTZCmd` of Appendix A.3): pan, tilt and zoom at a
//! speed, stop, and presets (set, go to, delete), as the 8-byte command devices expect in hex.
//!
//! Invariants: a command built here always has its fixed first byte (A5), the nibble check of its
//! second byte and its sum check; [`parse`] refuses anything else (the simulator reads commands with
//! it, and it is fuzzed). Speeds are clamped to the command's fields (pan and tilt 0-255, zoom 0-15).

use super::xml::Body;

pub use crate::ptz::{PresetOp, Ptz};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PtzError {
    #[error("PTZCmd must be 16 hex digits")]
    Length,
    #[error("PTZCmd is not hexadecimal")]
    Hex,
    #[error("PTZCmd does not start with A5 and its check nibble")]
    Header,
    #[error("PTZCmd's check byte is wrong")]
    Checksum,
    #[error("PTZCmd instruction {0:#04x} is not a PTZ or preset instruction")]
    Instruction(u8),
}

/// The second byte with combination code 0: its low nibble is (0xA + 0x5 + 0) mod 16.
const HEADER_CHECK: u8 = 0x0F;
const RIGHT: u8 = 0x01;
const LEFT: u8 = 0x02;
const DOWN: u8 = 0x04;
const UP: u8 = 0x08;
const ZOOM_IN: u8 = 0x10;
const ZOOM_OUT: u8 = 0x20;

fn op_code(op: PresetOp) -> u8 {
    match op {
        PresetOp::Set => 0x81,
        PresetOp::Goto => 0x82,
        PresetOp::Delete => 0x83,
    }
}

/// The 8 bytes of a command for the device at `address` (0-4095; most devices ignore it).
pub fn encode(cmd: &Ptz, address: u16) -> [u8; 8] {
    let speed = |v: f64, max: f64| (v.abs().clamp(0.0, 1.0) * max).round() as u8;
    let (instr, b5, b6, zoom) = match *cmd {
        Ptz::Move { pan, tilt, zoom } => {
            let mut i = 0;
            i |= if pan > 0.0 {
                RIGHT
            } else if pan < 0.0 {
                LEFT
            } else {
                0
            };
            i |= if tilt > 0.0 {
                UP
            } else if tilt < 0.0 {
                DOWN
            } else {
                0
            };
            i |= if zoom > 0.0 {
                ZOOM_IN
            } else if zoom < 0.0 {
                ZOOM_OUT
            } else {
                0
            };
            (i, speed(pan, 255.0), speed(tilt, 255.0), speed(zoom, 15.0))
        }
        Ptz::Stop => (0, 0, 0, 0),
        Ptz::Preset { op, number } => (op_code(op), 0, number, 0),
    };
    let mut b = [
        0xA5,
        0,
        (address & 0xFF) as u8,
        instr,
        b5,
        b6,
        (zoom << 4) | ((address >> 8) & 0x0F) as u8,
        0,
    ];
    // Combination code 0 (high nibble), then the check of the nibbles before it: (A + 5 + 0) mod 16.
    b[1] = HEADER_CHECK;
    b[7] = b[..7].iter().fold(0u8, |s, x| s.wrapping_add(*x));
    b
}

/// The command as `PTZCmd` writes it: 16 upper-case hex digits.
pub fn to_hex(b: &[u8; 8]) -> String {
    hex::encode_upper(b)
}

/// Reads a `PTZCmd`.
pub fn parse(text: &str) -> Result<Ptz, PtzError> {
    let text = text.trim();
    if text.len() != 16 {
        return Err(PtzError::Length);
    }
    let v = hex::decode(text).map_err(|_| PtzError::Hex)?;
    let b: [u8; 8] = v.try_into().map_err(|_| PtzError::Length)?;
    if b[0] != 0xA5 || b[1] & 0x0F != (0xA + 0x5 + (b[1] >> 4)) % 16 {
        return Err(PtzError::Header);
    }
    if b[..7].iter().fold(0u8, |s, x| s.wrapping_add(*x)) != b[7] {
        return Err(PtzError::Checksum);
    }
    let instr = b[3];
    let axis = |plus: u8, minus: u8, speed: u8, max: f64| {
        let v = f64::from(speed) / max;
        if instr & plus != 0 {
            v
        } else if instr & minus != 0 {
            -v
        } else {
            0.0
        }
    };
    match instr {
        0 => Ok(Ptz::Stop),
        0x81..=0x83 => Ok(Ptz::Preset {
            op: match instr {
                0x81 => PresetOp::Set,
                0x82 => PresetOp::Goto,
                _ => PresetOp::Delete,
            },
            number: b[5],
        }),
        i if i & 0xC0 == 0 => Ok(Ptz::Move {
            pan: axis(RIGHT, LEFT, b[4], 255.0),
            tilt: axis(UP, DOWN, b[5], 255.0),
            zoom: axis(ZOOM_IN, ZOOM_OUT, b[6] >> 4, 15.0),
        }),
        i => Err(PtzError::Instruction(i)),
    }
}

/// The DeviceControl MESSAGE body for a channel.
pub fn control_body(sn: u32, channel: &str, cmd: &Ptz) -> Vec<u8> {
    let mut b = Body::new("Control");
    b.field("CmdType", "DeviceControl")
        .field("SN", &sn.to_string())
        .field("DeviceID", channel)
        .field("PTZCmd", &to_hex(&encode(cmd, 1)))
        .open("Info", &[])
        .field("ControlPriority", "5")
        .close("Info");
    b.finish("Control")
}

impl super::registry::Registry {
    /// Sends a PTZ command to a device's channel; Ok once the device accepted the MESSAGE.
    pub async fn ptz(
        &self,
        device: &str,
        channel: &str,
        cmd: &Ptz,
    ) -> Result<(), super::sip::SipError> {
        let body = control_body(self.next_sn(), channel, cmd);
        self.send_query(device, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_the_standard_bytes_and_read_back() {
        // Stop, as the standard's example: A5 0F 01 00 00 00 00 B5.
        assert_eq!(to_hex(&encode(&Ptz::Stop, 1)), "A50F0100000000B5");
        let right_up = encode(
            &Ptz::Move {
                pan: 1.0,
                tilt: 0.5,
                zoom: 0.0,
            },
            1,
        );
        assert_eq!(&right_up[..7], &[0xA5, 0x0F, 0x01, RIGHT | UP, 255, 128, 0]);
        let back = parse(&to_hex(&right_up)).expect("valid");
        assert!(
            matches!(back, Ptz::Move { pan, tilt, zoom } if pan == 1.0 && (tilt - 0.502).abs() < 0.01 && zoom == 0.0)
        );
        let zoom_out = parse(&to_hex(&encode(
            &Ptz::Move {
                pan: 0.0,
                tilt: 0.0,
                zoom: -1.0,
            },
            1,
        )))
        .expect("valid");
        assert_eq!(
            zoom_out,
            Ptz::Move {
                pan: 0.0,
                tilt: 0.0,
                zoom: -1.0
            }
        );
        let goto = Ptz::Preset {
            op: PresetOp::Goto,
            number: 7,
        };
        assert_eq!(parse(&to_hex(&encode(&goto, 1))), Ok(goto));
    }

    #[test]
    fn bad_commands_are_refused() {
        assert_eq!(parse("A50F01"), Err(PtzError::Length));
        assert_eq!(parse("ZZ0F0100000000B5"), Err(PtzError::Hex));
        assert_eq!(parse("A60F0100000000B5"), Err(PtzError::Header));
        assert_eq!(parse("A50F0100000000B6"), Err(PtzError::Checksum));
        let mut b = encode(&Ptz::Stop, 1);
        b[3] = 0x45;
        b[7] = b[..7].iter().fold(0u8, |s, x| s.wrapping_add(*x));
        assert_eq!(parse(&to_hex(&b)), Err(PtzError::Instruction(0x45)));
    }
}
