//! ONVIF PTZ service calls (ONVIF PTZ Service Specification): ContinuousMove with a device-side timeout,
//! Stop, GotoPreset, SetPreset and RemovePreset, for one media profile.

use super::device::{call, OnvifError};
use super::soap::{Credentials, Doc};
use crate::ptz::{PresetOp, Ptz};

const TPTZ: &str = "http://www.onvif.org/ver20/ptz/wsdl";
const TT: &str = "http://www.onvif.org/ver10/schema";

/// The action and the body of a command.
fn request<'a>(
    cmd: &Ptz,
    profile: &'a str,
    timeout_s: u64,
) -> (&'static str, impl FnOnce(&mut Doc) + 'a) {
    let action = match cmd {
        Ptz::Move { .. } => "ContinuousMove",
        Ptz::Stop => "Stop",
        Ptz::Preset {
            op: PresetOp::Goto, ..
        } => "GotoPreset",
        Ptz::Preset {
            op: PresetOp::Set, ..
        } => "SetPreset",
        Ptz::Preset {
            op: PresetOp::Delete,
            ..
        } => "RemovePreset",
    };
    let cmd = *cmd;
    let write = move |d: &mut Doc| {
        let root = format!("tptz:{action}");
        d.open(&root, &[("xmlns:tptz", TPTZ), ("xmlns:tt", TT)])
            .field("tptz:ProfileToken", &[], profile);
        match cmd {
            Ptz::Move { pan, tilt, zoom } => {
                let (x, y, z) = (
                    format!("{pan:.3}"),
                    format!("{tilt:.3}"),
                    format!("{zoom:.3}"),
                );
                d.open("tptz:Velocity", &[])
                    .empty("tt:PanTilt", &[("x", &x), ("y", &y)])
                    .empty("tt:Zoom", &[("x", &z)])
                    .close("tptz:Velocity")
                    // The camera stops by itself too, should the stop never arrive.
                    .field("tptz:Timeout", &[], &format!("PT{timeout_s}S"));
            }
            Ptz::Stop => {
                d.field("tptz:PanTilt", &[], "true")
                    .field("tptz:Zoom", &[], "true");
            }
            Ptz::Preset { number, .. } => {
                d.field("tptz:PresetToken", &[], &number.to_string());
            }
        }
        d.close(&root);
    };
    (action, write)
}

/// Sends a command to the PTZ service at `xaddr` for `profile`; a move is also bounded by the camera
/// (`timeout_s`).
pub async fn send(
    http: &reqwest::Client,
    xaddr: &str,
    auth: Option<&Credentials>,
    profile: &str,
    cmd: &Ptz,
    timeout_s: u64,
) -> Result<(), OnvifError> {
    let (action, body) = request(cmd, profile, timeout_s);
    call(http, xaddr, &format!("{TPTZ}/{action}"), auth, body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_names_its_profile_velocity_and_timeout() {
        let (action, body) = request(
            &Ptz::Move {
                pan: 0.5,
                tilt: -1.0,
                zoom: 0.0,
            },
            "main",
            5,
        );
        assert_eq!(action, "ContinuousMove");
        let env = super::super::soap::envelope(None, body);
        let parsed = crate::xml::parse(&env).expect("parses");
        let call = super::super::soap::body_of(&parsed).expect("body");
        assert_eq!(call.text_of("ProfileToken"), Some("main"));
        let pt = call
            .child("Velocity")
            .and_then(|v| v.child("PanTilt"))
            .expect("pan tilt");
        assert!(pt.attrs.contains(&("x".into(), "0.500".into())));
        assert!(pt.attrs.contains(&("y".into(), "-1.000".into())));
        assert_eq!(call.text_of("Timeout"), Some("PT5S"));
        let (action, _) = request(
            &Ptz::Preset {
                op: PresetOp::Set,
                number: 3,
            },
            "main",
            5,
        );
        assert_eq!(action, "SetPreset");
    }
}
