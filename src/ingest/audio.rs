//! A camera's audio track on an RTSP session: which stream to set up, and its frames as the hub takes
//! them (AAC access units or G.711 sample runs, on the video's 90 kHz timeline).
//!
//! Invariants: only codecs that go into MP4 unchanged are taken (AAC, G.711 A-law and µ-law); the
//! parameters are read once per run, from retina's description of the stream; a frame whose parameters
//! cannot be made into a sample entry is dropped (logged once), and the video goes on.

use super::publish::IncomingAudio;
use crate::hub::{AudioCodec, AudioParams};
use crate::media::fmp4;
use bytes::Bytes;
use retina::codec::{AudioFrame, ParametersRef};
use std::sync::Arc;

/// The codec of an SDP audio encoding name, when Vigil records it.
fn codec_of(encoding: &str) -> Option<AudioCodec> {
    match encoding.to_ascii_lowercase().as_str() {
        "mpeg4-generic" => Some(AudioCodec::Aac),
        "pcma" => Some(AudioCodec::Pcma),
        "pcmu" => Some(AudioCodec::Pcmu),
        _ => None,
    }
}

/// The index of the session's first audio stream in a codec Vigil records.
pub(super) fn stream(streams: &[retina::client::Stream]) -> Option<usize> {
    streams
        .iter()
        .position(|s| s.media() == "audio" && codec_of(s.encoding_name()).is_some())
}

/// The parameters the hub carries, from retina's.
fn convert(codec: AudioCodec, p: &retina::codec::AudioParameters) -> Result<AudioParams, String> {
    let channels = p.channels().get();
    let rate = p.clock_rate();
    let (rfc6381, sample_entry) = match codec {
        AudioCodec::Aac => {
            let entry = p.mp4_sample_entry().build().map_err(|e| e.to_string())?;
            (p.rfc6381_codec().map(str::to_owned), entry)
        }
        AudioCodec::Pcma => (None, fmp4::g711_sample_entry(b"alaw", channels, rate)),
        AudioCodec::Pcmu => (None, fmp4::g711_sample_entry(b"ulaw", channels, rate)),
    };
    Ok(AudioParams {
        codec,
        sample_rate: rate,
        channels,
        rfc6381,
        sample_entry: Bytes::from(sample_entry),
        config: Bytes::copy_from_slice(p.extra_data()),
    })
}

/// The audio stream of one run.
pub(super) struct AudioTrack {
    index: usize,
    params: Option<Arc<AudioParams>>,
    /// Set when the parameters could not be used: the run's audio is dropped.
    refused: bool,
}

impl AudioTrack {
    /// The track of stream `index`, its parameters read from the session's description when it has
    /// them already (so that the hub can declare them before the first frame).
    pub fn new(index: usize, demuxed: &retina::client::Demuxed) -> AudioTrack {
        let mut t = AudioTrack {
            index,
            params: None,
            refused: false,
        };
        t.learn(demuxed);
        t
    }

    /// The parameters frames will carry, when known.
    pub fn params(&self) -> Option<Arc<AudioParams>> {
        self.params.clone()
    }

    fn learn(&mut self, demuxed: &retina::client::Demuxed) {
        let Some(stream) = demuxed.streams().get(self.index) else {
            return;
        };
        let Some(codec) = codec_of(stream.encoding_name()) else {
            return;
        };
        let Some(ParametersRef::Audio(p)) = stream.parameters() else {
            return;
        };
        match convert(codec, p) {
            Ok(params) => {
                tracing::info!(
                    codec = codec.as_str(),
                    rate = params.sample_rate,
                    channels = params.channels,
                    "audio parameters"
                );
                self.params = Some(Arc::new(params));
            }
            Err(e) => {
                tracing::warn!(error = %e, "audio parameters unusable; video only");
                self.refused = true;
            }
        }
    }

    /// The frame as the publisher takes it, or None (another stream, no usable parameters).
    pub fn frame(
        &mut self,
        demuxed: &retina::client::Demuxed,
        frame: AudioFrame,
    ) -> Option<IncomingAudio> {
        if frame.stream_id() != self.index || self.refused {
            return None;
        }
        if self.params.is_none() {
            self.learn(demuxed);
        }
        let params = self.params.clone()?;
        let rate = i128::from(params.sample_rate.max(1));
        let pts = (i128::from(frame.timestamp().elapsed()) * 90_000 / rate) as i64;
        Some(IncomingAudio {
            pts,
            loss: frame.loss(),
            data: Bytes::copy_from_slice(frame.data()),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_codecs_that_go_into_mp4_unchanged() {
        assert_eq!(codec_of("MPEG4-GENERIC"), Some(AudioCodec::Aac));
        assert_eq!(codec_of("PCMA"), Some(AudioCodec::Pcma));
        assert_eq!(codec_of("pcmu"), Some(AudioCodec::Pcmu));
        assert_eq!(codec_of("opus"), None);
        assert_eq!(codec_of("G726-32"), None);
    }
}
