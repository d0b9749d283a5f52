//! The simulator's launch descriptions: embedded from `pipelines/`, filled in per run.
//!
//! The files are plain gst-launch descriptions with `{placeholder}`s and `#` comment lines,
//! so they can be read (and tried with `gst-launch-1.0`) without reading Rust. Rendering
//! fails if a placeholder is left unfilled, so a typo in a file is a start-up error rather
//! than a pipeline that fails to parse when the first client connects.

use std::sync::Arc;

use super::clip::Clip;
use super::{SimAudio, SimCodec, SimError, SimOptions};

const PER_CAMERA_H264: &str = include_str!("../../pipelines/sim-h264.txt");
const PER_CAMERA_H265: &str = include_str!("../../pipelines/sim-h265.txt");
const SHARED_H264: &str = include_str!("../../pipelines/sim-shared-h264.txt");
const SHARED_H265: &str = include_str!("../../pipelines/sim-shared-h265.txt");
const RELAY_H264: &str = include_str!("../../pipelines/sim-relay-h264.txt");
const RELAY_H265: &str = include_str!("../../pipelines/sim-relay-h265.txt");
const AUDIO_AAC: &str = include_str!("../../pipelines/sim-audio-aac.txt");
const AUDIO_PCMA: &str = include_str!("../../pipelines/sim-audio-pcma.txt");
/// Makes the moving-footage clip of clip mode (see `clip.rs`).
pub(super) const CLIP_H264: &str = include_str!("../../pipelines/sim-clip-h264.txt");

/// Text the shared encoder burns into its picture (every mount shows the same picture).
pub(super) const SHARED_LABEL: &str = "Vigil sim";

/// Name of the appsink at the end of the shared encoder pipeline.
pub(super) const ENCODER_SINK: &str = "sink";
/// Name of the appsrc at the head of each relay mount.
pub(super) const RELAY_SRC: &str = "src";

/// The shared encoder's description alone (the GB/T 28181 device encodes once for all its channels).
pub(super) fn shared_encoder(opts: &SimOptions) -> Result<String, SimError> {
    let vars = [
        ("width", opts.width.to_string()),
        ("height", opts.height.to_string()),
        ("fps", opts.fps.to_string()),
        ("bitrate_kbps", opts.bitrate_kbps.to_string()),
        ("gop", opts.gop.to_string()),
        ("label", "Vigil GB/T 28181 sim".to_owned()),
    ];
    let template = match opts.codec {
        SimCodec::H264 => SHARED_H264,
        SimCodec::H265 => SHARED_H265,
    };
    render("encoder", template, &vars)
}

/// The rendered descriptions for one run.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    /// One description per camera; index `i` is mount `/cam{i+1}`.
    PerCamera { launches: Vec<String> },
    /// One encoder for the whole server, and the description every mount uses.
    Shared { encoder: String, relay: String },
    /// A clip replayed in a loop to every mount, through the same relay description.
    Clip { clip: Arc<Clip>, relay: String },
}

impl Plan {
    /// The plan of clip mode: `opts` give the clip's picture (its size and rate).
    pub(super) fn clip(opts: &SimOptions, clip: Arc<Clip>) -> Result<Plan, SimError> {
        let vars = [
            ("width", clip.width.to_string()),
            ("height", clip.height.to_string()),
            ("fps", clip.fps.to_string()),
            ("bitrate_kbps", opts.bitrate_kbps.to_string()),
            ("gop", opts.gop.to_string()),
            ("label", SHARED_LABEL.to_owned()),
        ];
        let relay = render("relay", RELAY_H264, &vars)?;
        Ok(Plan::Clip { clip, relay })
    }

    pub(super) fn new(opts: &SimOptions) -> Result<Plan, SimError> {
        let picture = |label: &str| {
            vec![
                ("width", opts.width.to_string()),
                ("height", opts.height.to_string()),
                ("fps", opts.fps.to_string()),
                ("bitrate_kbps", opts.bitrate_kbps.to_string()),
                ("gop", opts.gop.to_string()),
                ("label", label.to_owned()),
            ]
        };
        if opts.shared_encoder {
            let (encoder, relay) = match opts.codec {
                SimCodec::H264 => (SHARED_H264, RELAY_H264),
                SimCodec::H265 => (SHARED_H265, RELAY_H265),
            };
            Ok(Plan::Shared {
                encoder: render("encoder", encoder, &picture(SHARED_LABEL))?,
                relay: render("relay", relay, &picture(SHARED_LABEL))?,
            })
        } else {
            let template = match opts.codec {
                SimCodec::H264 => PER_CAMERA_H264,
                SimCodec::H265 => PER_CAMERA_H265,
            };
            // The audio branch follows the video's in the same description: the mount's second stream.
            let audio = match opts.audio {
                None => String::new(),
                Some(SimAudio::Aac) => format!(" {}", render("audio", AUDIO_AAC, &[])?),
                Some(SimAudio::Pcma) => format!(" {}", render("audio", AUDIO_PCMA, &[])?),
            };
            let launches = (1..=opts.cameras)
                .map(|n| Ok(render("camera", template, &picture(&mount_name(n)))? + &audio))
                .collect::<Result<Vec<_>, SimError>>()?;
            Ok(Plan::PerCamera { launches })
        }
    }

    /// Parses each distinct description once, so that a missing GStreamer plugin is reported
    /// by `SimServer::start` instead of as a failed DESCRIBE later. The pipelines are never
    /// started.
    pub(super) fn check_elements(&self) -> Result<(), SimError> {
        let samples: Vec<(&'static str, &str)> = match self {
            Plan::PerCamera { launches } => launches
                .first()
                .map(|l| ("camera", l.as_str()))
                .into_iter()
                .collect(),
            Plan::Shared { encoder, relay } => vec![("encoder", encoder), ("relay", relay)],
            Plan::Clip { relay, .. } => vec![("relay", relay)],
        };
        for (what, launch) in samples {
            gstreamer::parse::launch(launch)
                .map_err(|source| SimError::Pipeline { what, source })?;
        }
        Ok(())
    }
}

/// Mount path component of camera `n` (1-based): `cam1`, `cam2`, ...
pub(super) fn mount_name(n: u32) -> String {
    format!("cam{n}")
}

/// Drops `#` comment lines, joins the rest into one line and fills in `{name}` placeholders.
pub(super) fn render(
    what: &'static str,
    template: &str,
    vars: &[(&str, String)],
) -> Result<String, SimError> {
    let mut out = template
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    // Launch syntax has no braces of its own, so any left over is an unknown placeholder.
    if let Some(start) = out.find('{') {
        let rest = &out[start..];
        let placeholder = rest.find('}').map_or(rest, |end| &rest[..=end]).to_owned();
        return Err(SimError::Template { what, placeholder });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_follows_the_video_as_the_mounts_second_stream() {
        for (audio, pay) in [
            (SimAudio::Aac, "rtpmp4gpay name=pay1"),
            (SimAudio::Pcma, "rtppcmapay name=pay1"),
        ] {
            let opts = SimOptions {
                audio: Some(audio),
                ..SimOptions::default()
            };
            let Plan::PerCamera { launches } = Plan::new(&opts).expect("renders") else {
                panic!("per-camera plan")
            };
            assert!(launches[0].contains("name=pay0"), "{}", launches[0]);
            assert!(launches[0].contains(pay), "{}", launches[0]);
        }
        let shared = SimOptions {
            audio: Some(SimAudio::Aac),
            shared_encoder: true,
            ..SimOptions::default()
        };
        assert!(shared.validate().is_err());
    }

    #[test]
    fn renders_every_placeholder() {
        for codec in [SimCodec::H264, SimCodec::H265] {
            for shared_encoder in [false, true] {
                let opts = SimOptions {
                    codec,
                    shared_encoder,
                    ..SimOptions::default()
                };
                let plan = Plan::new(&opts).expect("templates render");
                let all = match &plan {
                    Plan::PerCamera { launches } => launches.join("\n"),
                    Plan::Shared { encoder, relay } => format!("{encoder}\n{relay}"),
                    Plan::Clip { relay, .. } => relay.clone(),
                };
                assert!(all.contains("width=640"), "{all}");
                assert!(!all.contains('#'), "comments are stripped: {all}");
            }
        }
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let err = render("test", "videotestsrc ! {nope}", &[]).unwrap_err();
        assert!(
            matches!(err, SimError::Template { ref placeholder, .. } if placeholder == "{nope}")
        );
    }
}
