//! The simulator as an ONVIF camera (`vigil sim --onvif`): it answers WS-Discovery probes on
//! 239.255.255.250:3702 with its device service, and the device, media and PTZ services over HTTP
//! (SOAP 1.2) with WS-Security digest authentication when the simulator has credentials. Its profiles
//! are the main stream of camera 1 at the simulator's size and a sub profile at half of it (served from the
//! same mount); PTZ commands are logged, as a dome would follow them.

use crate::onvif::discovery;
use crate::onvif::soap::{self, Credentials, Doc};
use crate::xml::Element;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
const TT: &str = "http://www.onvif.org/ver10/schema";
const TPTZ: &str = "http://www.onvif.org/ver20/ptz/wsdl";

#[derive(Clone)]
pub struct OnvifOptions {
    /// The HTTP port of the services (0: any free one).
    pub http: SocketAddr,
    /// Where the RTSP mounts listen (an unspecified address: the one the client reached us at).
    pub rtsp: SocketAddr,
    pub width: u32,
    pub height: u32,
    pub credentials: Option<Credentials>,
}

/// The running ONVIF side; stops when dropped.
pub struct OnvifSim {
    pub http_addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for OnvifSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(opts: OnvifOptions) -> std::io::Result<OnvifSim> {
    let listener = tokio::net::TcpListener::bind(opts.http).await?;
    let opts_rtsp_ip = opts.rtsp.ip();
    let http_addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let app = axum::Router::new()
        .route("/onvif/{service}", axum::routing::post(service))
        .with_state(Arc::new(opts));
    let s = stop.clone();
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(s.cancelled_owned());
        if let Err(e) = serve.await {
            warn!(error = %e, "sim ONVIF services stopped");
        }
    });
    let socket = discovery_socket()?;
    // One address for the whole camera, as a real one has: the RTSP server's when it listens on one.
    let camera_ip = Some(opts_rtsp_ip).filter(|ip| !ip.is_unspecified());
    tokio::spawn(answer_probes(
        socket,
        camera_ip,
        http_addr.port(),
        stop.clone(),
    ));
    info!(%http_addr, "sim ONVIF services and WS-Discovery listening");
    Ok(OnvifSim { http_addr, stop })
}

/// Port 3702 shared with any other listener (several simulators on one host), in the discovery group.
fn discovery_socket() -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), discovery::PORT).into())?;
    s.join_multicast_v4(&discovery::GROUP, &Ipv4Addr::UNSPECIFIED)?;
    UdpSocket::from_std(s.into())
}

/// The address of this host that `peer` is reached from.
fn local_ip_towards(peer: SocketAddr) -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(peer).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// Answers probes from the camera's address (`camera_ip`, or the one the prober is reached from), with the
/// device service on that address.
async fn answer_probes(
    socket: UdpSocket,
    camera_ip: Option<IpAddr>,
    http_port: u16,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; discovery::MAX_DATAGRAM];
    let endpoint = format!("urn:uuid:{}", discovery::uuid());
    loop {
        let got = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.cancelled() => return,
        };
        let Ok((n, from)) = got else { continue };
        let Ok(env) = crate::xml::parse(&buf[..n]) else {
            continue;
        };
        let is_probe = env.child("Body").and_then(|b| b.child("Probe")).is_some();
        let (Some(id), true) = (discovery::message_id(&env), is_probe) else {
            continue;
        };
        let Some(ip) = camera_ip.or_else(|| local_ip_towards(from)) else {
            continue;
        };
        let xaddr = format!(
            "http://{}/onvif/device_service",
            SocketAddr::new(ip, http_port)
        );
        let answer = discovery::probe_matches(id, &endpoint, &xaddr);
        let sent = match UdpSocket::bind(SocketAddr::new(ip, 0)).await {
            Ok(from_camera) => from_camera.send_to(&answer, from).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            warn!(%from, error = %e, "sim ONVIF: probe not answered");
        }
    }
}

fn soap_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn fault(status: StatusCode, reason: &str) -> Response {
    let body = soap::envelope(None, |d| {
        d.open("s:Fault", &[])
            .open("s:Code", &[])
            .field("s:Value", &[], "s:Sender")
            .close("s:Code")
            .open("s:Reason", &[])
            .field("s:Text", &[("xml:lang", "en")], reason)
            .close("s:Reason")
            .close("s:Fault");
    });
    soap_response(status, body)
}

async fn service(
    State(opts): State<Arc<OnvifOptions>>,
    axum::extract::Path(svc): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(env) = crate::xml::parse(&body) else {
        return fault(StatusCode::BAD_REQUEST, "not an XML document");
    };
    if let Some(c) = &opts.credentials {
        if !soap::token_matches(&env, c) {
            return fault(StatusCode::UNAUTHORIZED, "Not Authorized");
        }
    }
    let Ok(call) = soap::body_of(&env) else {
        return fault(StatusCode::BAD_REQUEST, "no call in the body");
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    match answer(&opts, &svc, call, &host) {
        Some(body) => soap_response(StatusCode::OK, body),
        None => fault(StatusCode::BAD_REQUEST, "unsupported call"),
    }
}

/// What writes an answer's body.
type Writes = Box<dyn FnOnce(&mut Doc)>;

/// The answer to one call of `svc`, None for a call the simulator does not have.
fn answer(opts: &OnvifOptions, svc: &str, call: &Element, host: &str) -> Option<Vec<u8>> {
    let name = call.name.as_str();
    let body = match svc {
        "device_service" => device_answer(name, host)?,
        "media_service" => media_answer(opts, name, host)?,
        "ptz_service" => ptz_answer(name, call)?,
        _ => return None,
    };
    Some(soap::envelope(None, body))
}

fn device_answer(name: &str, host: &str) -> Option<Writes> {
    Some(match name {
        "GetDeviceInformation" => Box::new(|d| {
            d.open("tds:GetDeviceInformationResponse", &[("xmlns:tds", TDS)])
                .field("tds:Manufacturer", &[], "Vigil")
                .field("tds:Model", &[], "SimDome 1")
                .field("tds:FirmwareVersion", &[], env!("CARGO_PKG_VERSION"))
                .field("tds:SerialNumber", &[], "SIM-0001")
                .field("tds:HardwareId", &[], "sim")
                .close("tds:GetDeviceInformationResponse");
        }),
        "GetCapabilities" => {
            let base = format!("http://{host}/onvif");
            Box::new(move |d| {
                d.open(
                    "tds:GetCapabilitiesResponse",
                    &[("xmlns:tds", TDS), ("xmlns:tt", TT)],
                )
                .open("tds:Capabilities", &[])
                .open("tt:Media", &[])
                .field("tt:XAddr", &[], &format!("{base}/media_service"))
                .close("tt:Media")
                .open("tt:PTZ", &[])
                .field("tt:XAddr", &[], &format!("{base}/ptz_service"))
                .close("tt:PTZ")
                .close("tds:Capabilities")
                .close("tds:GetCapabilitiesResponse");
            })
        }
        _ => return None,
    })
}

fn media_answer(opts: &OnvifOptions, name: &str, host: &str) -> Option<Writes> {
    Some(match name {
        "GetProfiles" => {
            let (w, h) = (opts.width, opts.height);
            Box::new(move |d| {
                d.open(
                    "trt:GetProfilesResponse",
                    &[("xmlns:trt", TRT), ("xmlns:tt", TT)],
                );
                for (token, name, w, h) in [
                    ("main", "MainStream", w, h),
                    ("sub", "SubStream", w / 2, h / 2),
                ] {
                    d.open("trt:Profiles", &[("token", token), ("fixed", "true")])
                        .field("tt:Name", &[], name)
                        .open("tt:VideoEncoderConfiguration", &[("token", token)])
                        .field("tt:Encoding", &[], "H264")
                        .open("tt:Resolution", &[])
                        .field("tt:Width", &[], &w.to_string())
                        .field("tt:Height", &[], &h.to_string())
                        .close("tt:Resolution")
                        .close("tt:VideoEncoderConfiguration")
                        .close("trt:Profiles");
                }
                d.close("trt:GetProfilesResponse");
            })
        }
        "GetStreamUri" => {
            let ip = match opts.rtsp.ip() {
                ip if ip.is_unspecified() => {
                    host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned()
                }
                ip => ip.to_string(),
            };
            let uri = format!("rtsp://{ip}:{}/cam1", opts.rtsp.port());
            Box::new(move |d| {
                d.open(
                    "trt:GetStreamUriResponse",
                    &[("xmlns:trt", TRT), ("xmlns:tt", TT)],
                )
                .open("trt:MediaUri", &[])
                .field("tt:Uri", &[], &uri)
                .close("trt:MediaUri")
                .close("trt:GetStreamUriResponse");
            })
        }
        _ => return None,
    })
}

fn ptz_answer(name: &str, call: &Element) -> Option<Writes> {
    if !matches!(name, "ContinuousMove" | "Stop" | "GotoPreset" | "SetPreset") {
        return None;
    }
    info!(command = name, body = ?call, "ptz command");
    let response = format!("tptz:{name}Response");
    Some(Box::new(move |d| {
        d.empty(&response, &[("xmlns:tptz", TPTZ)]);
    }))
}
