// TEMPORARY placeholder until the simulator lands (helper is writing it).
pub enum SimCodec {
    H264,
    H265,
}
pub struct SimOptions {
    pub cameras: u32,
    pub listen: std::net::SocketAddr,
    pub codec: SimCodec,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub gop: u32,
    pub username: Option<String>,
    pub password: Option<String>,
    pub shared_encoder: bool,
}
impl Default for SimOptions {
    fn default() -> Self {
        todo!()
    }
}
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("x")]
    X,
}
pub struct SimServer;
impl SimServer {
    pub fn start(_o: SimOptions) -> Result<SimServer, SimError> {
        Err(SimError::X)
    }
    pub fn url(&self, _n: u32) -> String {
        String::new()
    }
    pub fn stop(self) {}
}
