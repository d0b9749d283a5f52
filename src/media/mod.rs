// TEMPORARY placeholder until the snapshot module lands (helper is writing it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}
impl VideoCodec {
    pub fn from_rfc6381(_c: &str) -> Option<Self> {
        None
    }
}
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("x")]
    X,
}
pub fn keyframe_to_jpeg(
    _c: VideoCodec,
    _e: &[u8],
    _f: &[&[u8]],
    _m: Option<u32>,
    _q: u8,
) -> Result<Vec<u8>, SnapshotError> {
    Err(SnapshotError::X)
}
