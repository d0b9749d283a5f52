//! SOAP 1.2 envelopes of ONVIF calls, written with quick-xml (never by pasting strings), with the
//! WS-Security UsernameToken of ONVIF Core §5.12 (password digest: Base64(SHA-1(nonce + created +
//! password))), and their answers read with the bounded reader of [`crate::xml`].

use crate::xml::Element;
use base64::Engine;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use sha1::{Digest, Sha1};

pub const ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const DIGEST_TYPE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
const NONCE_TYPE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// The password digest of a UsernameToken.
pub fn digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// An XML document under construction: elements with their namespace declarations and escaped text.
pub struct Doc {
    w: Writer<Vec<u8>>,
}

impl Default for Doc {
    fn default() -> Self {
        Doc::new()
    }
}

impl Doc {
    pub fn new() -> Doc {
        let mut w = Writer::new(Vec::new());
        // Writing into a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Doc { w }
    }

    /// Opens `<name attrs...>`; close it with [`Doc::close`].
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        let mut s = BytesStart::new(name);
        for a in attrs {
            s.push_attribute(*a);
        }
        let _ = self.w.write_event(Event::Start(s));
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Doc {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name>text</name>`.
    pub fn field(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Doc {
        self.open(name, attrs);
        let _ = self.w.write_event(Event::Text(BytesText::new(text)));
        self.close(name)
    }

    /// `<name attrs/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        let mut s = BytesStart::new(name);
        for a in attrs {
            s.push_attribute(*a);
        }
        let _ = self.w.write_event(Event::Empty(s));
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }
}

/// Credentials of an ONVIF call.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Hand-written: the password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An envelope whose body `body` writes, with a UsernameToken when `auth` is given.
pub fn envelope(auth: Option<&Credentials>, body: impl FnOnce(&mut Doc)) -> Vec<u8> {
    let mut d = Doc::new();
    d.open("s:Envelope", &[("xmlns:s", ENV)]);
    if let Some(c) = auth {
        let nonce: [u8; 16] = rand::random();
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let b64 = base64::engine::general_purpose::STANDARD.encode(nonce);
        d.open("s:Header", &[])
            .open("wsse:Security", &[("xmlns:wsse", WSSE), ("xmlns:wsu", WSU)])
            .open("wsse:UsernameToken", &[])
            .field("wsse:Username", &[], &c.username)
            .field(
                "wsse:Password",
                &[("Type", DIGEST_TYPE)],
                &digest(&nonce, &created, &c.password),
            )
            .field("wsse:Nonce", &[("EncodingType", NONCE_TYPE)], &b64)
            .field("wsu:Created", &[], &created)
            .close("wsse:UsernameToken")
            .close("wsse:Security")
            .close("s:Header");
    }
    d.open("s:Body", &[]);
    body(&mut d);
    d.close("s:Body").close("s:Envelope");
    d.finish()
}

/// The body's first element of an envelope, or the fault's reason.
pub fn body_of(envelope: &Element) -> Result<&Element, String> {
    let body = envelope
        .child("Body")
        .ok_or_else(|| "no SOAP Body".to_owned())?;
    let first = body
        .children
        .first()
        .ok_or_else(|| "empty SOAP Body".to_owned())?;
    if first.name.eq_ignore_ascii_case("Fault") {
        let reason = first
            .child("Reason")
            .and_then(|r| r.text_of("Text"))
            .or_else(|| first.text_of("faultstring"))
            .unwrap_or("SOAP fault");
        return Err(reason.chars().take(200).collect());
    }
    Ok(first)
}

/// The UsernameToken of a request, checked against `expected` (the simulator's side): whether it
/// names the user and its digest matches.
pub fn token_matches(envelope: &Element, expected: &Credentials) -> bool {
    let Some(t) = envelope
        .child("Header")
        .and_then(|h| h.child("Security"))
        .and_then(|s| s.child("UsernameToken"))
    else {
        return false;
    };
    let (Some(user), Some(pass), Some(nonce), Some(created)) = (
        t.text_of("Username"),
        t.text_of("Password"),
        t.text_of("Nonce"),
        t.text_of("Created"),
    ) else {
        return false;
    };
    let Ok(nonce) = base64::engine::general_purpose::STANDARD.decode(nonce) else {
        return false;
    };
    user == expected.username && pass == digest(&nonce, created, &expected.password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_the_ws_security_example() {
        // OASIS UsernameToken Profile 1.0, §3.1's example values.
        let nonce = base64::engine::general_purpose::STANDARD
            .decode("d36e316282959a9ed4c89851497a717f")
            .expect("b64");
        let d = digest(&nonce, "2003-07-16T01:24:32Z", "taadtaadpstcsm");
        assert_eq!(d.len(), 28);
        let c = Credentials {
            username: "admin".into(),
            password: "pw".into(),
        };
        let env = envelope(Some(&c), |d| {
            d.empty("tds:GetDeviceInformation", &[("xmlns:tds", "x")]);
        });
        let parsed = crate::xml::parse(&env).expect("parses");
        assert!(token_matches(&parsed, &c));
        let wrong = Credentials {
            password: "other".into(),
            ..c
        };
        assert!(!token_matches(&parsed, &wrong));
        assert_eq!(
            body_of(&parsed).map(|e| e.name.as_str()),
            Ok("GetDeviceInformation")
        );
    }

    #[test]
    fn faults_say_why() {
        let f = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>
            <s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang="en">Not Authorized</s:Text>
            </s:Reason></s:Fault></s:Body></s:Envelope>"#;
        let e = crate::xml::parse(f).expect("parses");
        assert_eq!(body_of(&e), Err("Not Authorized".into()));
    }
}
