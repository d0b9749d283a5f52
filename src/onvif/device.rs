//! What a discovered device is: ONVIF device service (GetDeviceInformation, GetCapabilities) and media
//! service (GetProfiles, GetStreamUri) calls over HTTP, each bounded in time and size.

use super::soap::{self, Credentials};
use crate::xml::Element;
use serde::Serialize;
use std::time::Duration;

const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
const TT: &str = "http://www.onvif.org/ver10/schema";
/// The longest one call may take, and the largest answer read.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_ANSWER: usize = 256 << 10;
/// Profiles described per device.
pub const MAX_PROFILES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum OnvifError {
    #[error("the device refused the credentials")]
    Auth,
    #[error("the device did not answer: {0}")]
    Http(String),
    #[error("the device's answer is not ONVIF: {0}")]
    Answer(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub token: String,
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// The RTSP URI, without credentials.
    pub stream_uri: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Described {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub serial: String,
    pub media_xaddr: Option<String>,
    pub ptz_xaddr: Option<String>,
    pub profiles: Vec<Profile>,
}

/// One call: the answer's body element (or the fault as an error).
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    action: &str,
    auth: Option<&Credentials>,
    body: impl FnOnce(&mut soap::Doc),
) -> Result<Element, OnvifError> {
    let envelope = soap::envelope(auth, body);
    let content_type = format!("application/soap+xml; charset=utf-8; action=\"{action}\"");
    let resp = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .timeout(CALL_TIMEOUT)
        .body(envelope)
        .send()
        .await
        .map_err(|e| OnvifError::Http(e.without_url().to_string()))?;
    let status = resp.status();
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_ANSWER)
    {
        return Err(OnvifError::Answer("answer too large".into()));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| OnvifError::Http(e.without_url().to_string()))?;
    if bytes.len() > MAX_ANSWER {
        return Err(OnvifError::Answer("answer too large".into()));
    }
    let env = crate::xml::parse(&bytes).map_err(|e| match status.as_u16() {
        401 | 403 => OnvifError::Auth,
        _ => OnvifError::Answer(e.to_string()),
    })?;
    match soap::body_of(&env) {
        Ok(b) => Ok(b.clone()),
        Err(why) if status.as_u16() == 401 || why.to_ascii_lowercase().contains("authori") => {
            Err(OnvifError::Auth)
        }
        Err(why) => Err(OnvifError::Answer(why)),
    }
}

/// Describes the device whose device service is at `xaddr`.
pub async fn describe(
    http: &reqwest::Client,
    xaddr: &str,
    auth: Option<&Credentials>,
) -> Result<Described, OnvifError> {
    let info = call(
        http,
        xaddr,
        &format!("{TDS}/GetDeviceInformation"),
        auth,
        |d| {
            d.empty("tds:GetDeviceInformation", &[("xmlns:tds", TDS)]);
        },
    )
    .await?;
    let text = |e: &Element, n: &str| {
        e.text_of(n)
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect::<String>()
    };
    let mut out = Described {
        manufacturer: text(&info, "Manufacturer"),
        model: text(&info, "Model"),
        firmware: text(&info, "FirmwareVersion"),
        serial: text(&info, "SerialNumber"),
        ..Described::default()
    };
    (out.media_xaddr, out.ptz_xaddr) = services(http, xaddr, auth).await?;
    let media = out
        .media_xaddr
        .clone()
        .ok_or_else(|| OnvifError::Answer("no media service".into()))?;
    out.profiles = profiles(http, &media, auth).await?;
    Ok(out)
}

/// The addresses of a device's media and PTZ services (GetCapabilities).
pub async fn services(
    http: &reqwest::Client,
    xaddr: &str,
    auth: Option<&Credentials>,
) -> Result<(Option<String>, Option<String>), OnvifError> {
    let caps = call(http, xaddr, &format!("{TDS}/GetCapabilities"), auth, |d| {
        d.open("tds:GetCapabilities", &[("xmlns:tds", TDS)])
            .field("tds:Category", &[], "All")
            .close("tds:GetCapabilities");
    })
    .await?;
    let service = |n: &str| {
        caps.child("Capabilities")
            .and_then(|c| c.child(n))
            .and_then(|m| m.text_of("XAddr"))
            .map(str::to_owned)
    };
    Ok((service("Media"), service("PTZ")))
}

/// The media profiles and their RTSP URIs.
async fn profiles(
    http: &reqwest::Client,
    media: &str,
    auth: Option<&Credentials>,
) -> Result<Vec<Profile>, OnvifError> {
    let got = call(http, media, &format!("{TRT}/GetProfiles"), auth, |d| {
        d.empty("trt:GetProfiles", &[("xmlns:trt", TRT)]);
    })
    .await?;
    let mut out = Vec::new();
    for p in got.children_named("Profiles").take(MAX_PROFILES) {
        let Some(token) = p
            .attrs
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.clone())
        else {
            continue;
        };
        let res = p
            .child("VideoEncoderConfiguration")
            .and_then(|v| v.child("Resolution"));
        let dim = |n: &str| {
            res.and_then(|r| r.text_of(n))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let uri = call(http, media, &format!("{TRT}/GetStreamUri"), auth, |d| {
            d.open("trt:GetStreamUri", &[("xmlns:trt", TRT), ("xmlns:tt", TT)])
                .open("trt:StreamSetup", &[])
                .field("tt:Stream", &[], "RTP-Unicast")
                .open("tt:Transport", &[])
                .field("tt:Protocol", &[], "RTSP")
                .close("tt:Transport")
                .close("trt:StreamSetup")
                .field("trt:ProfileToken", &[], &token)
                .close("trt:GetStreamUri");
        })
        .await?;
        let stream_uri = uri
            .child("MediaUri")
            .and_then(|m| m.text_of("Uri"))
            .and_then(|u| url::Url::parse(u).ok())
            .filter(|u| u.scheme() == "rtsp")
            .map(|mut u| {
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.to_string()
            })
            .ok_or_else(|| OnvifError::Answer(format!("profile {token}: no RTSP URI")))?;
        out.push(Profile {
            name: p
                .text_of("Name")
                .unwrap_or(&token)
                .chars()
                .take(64)
                .collect(),
            token,
            width: dim("Width"),
            height: dim("Height"),
            stream_uri,
        });
    }
    Ok(out)
}
