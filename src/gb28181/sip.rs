//! The SIP side shared by the platform (devices registering to Vigil) and the simulated device: an
//! rsipstack endpoint on UDP and TCP, and requests sent in a client transaction to an address learnt
//! from the peer (behind NAT: where its packets came from), with a deadline.

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{typed, Header, Method, Request, Response, SipMessage, Transport, Uri};
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::{make_tag, Transaction, TransactionReceiver};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const MANSCDP: &str = "Application/MANSCDP+xml";
pub const SDP: &str = "APPLICATION/SDP";

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("SIP stack: {0}")]
    Stack(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered {0}")]
    Status(u16),
    #[error("bad SIP address {0}")]
    Address(String),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(e.to_string())
    }
}

impl From<rsipstack::sip::Error> for SipError {
    fn from(e: rsipstack::sip::Error) -> Self {
        SipError::Stack(e.to_string())
    }
}

/// A running endpoint and the requests that reach it.
pub struct Stack {
    pub endpoint: Endpoint,
    /// The address put in Via and Contact (the advertised one behind NAT).
    pub contact_addr: SocketAddr,
    cseq: AtomicU32,
}

impl Stack {
    /// Listens on `listen` over UDP and, with `tcp`, over TCP too.
    pub async fn start(
        listen: SocketAddr,
        advertised: Option<SocketAddr>,
        tcp: bool,
        cancel: CancellationToken,
    ) -> Result<(Stack, TransactionReceiver), SipError> {
        let layer = TransportLayer::new(cancel.clone());
        let udp = UdpConnection::create_connection(listen, advertised, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Stack(format!("UDP {listen}: {e}")))?;
        let bound = udp
            .get_addr()
            .get_socketaddr()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        layer.add_transport(udp.into());
        if tcp {
            let listener = TcpListenerConnection::new(bound, advertised)
                .await
                .map_err(|e| SipError::Stack(format!("TCP {bound}: {e}")))?;
            layer.add_transport(listener.into());
        }
        let endpoint = EndpointBuilder::new()
            .with_transport_layer(layer)
            .with_cancel_token(cancel)
            .with_user_agent("Vigil")
            .build();
        let incoming = endpoint.incoming_transactions()?;
        let inner = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.serve().await {
                tracing::warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let stack = Stack {
            endpoint,
            contact_addr: advertised.unwrap_or(bound),
            cseq: AtomicU32::new(1),
        };
        Ok((stack, incoming))
    }

    pub fn inner(&self) -> &EndpointInnerRef {
        &self.endpoint.inner
    }

    pub fn next_cseq(&self) -> u32 {
        self.cseq.fetch_add(1, Ordering::Relaxed)
    }

    /// A request from `from_id@domain` to `to_id` at `to_host`, over `transport`, with a body.
    pub fn request(&self, r: Outgoing<'_>) -> Result<Request, SipError> {
        let uri = sip_uri(r.to_id, &r.to_host)?;
        let from_uri = sip_uri(r.from_id, r.from_domain)?;
        let via_addr = SipAddr {
            r#type: Some(r.transport),
            addr: self.contact_addr.into(),
        };
        let via = self.inner().get_via(Some(via_addr), None)?;
        let from = typed::From {
            display_name: None,
            uri: from_uri,
            params: vec![],
        }
        .with_tag(r.from_tag.map(Into::into).unwrap_or_else(make_tag));
        let mut to = typed::To {
            display_name: None,
            uri: uri.clone(),
            params: vec![],
        };
        if let Some(tag) = r.to_tag {
            to = to.with_tag(tag.into());
        }
        let call_id = r
            .call_id
            .map(|c| rsipstack::sip::headers::CallId::from(c.to_owned()));
        let mut req = self.inner().make_request(
            r.method,
            r.request_uri.unwrap_or(uri),
            via,
            from,
            to,
            r.cseq.unwrap_or_else(|| self.next_cseq()),
            call_id,
        );
        let contact = format!("<sip:{}@{}>", r.from_id, self.contact_addr);
        req.headers.push(Header::Contact(contact.into()));
        for (name, value) in r.headers {
            req.headers
                .push(Header::Other(name.to_owned(), value.clone()));
        }
        if let Some((content_type, body)) = r.body {
            req.headers.push(Header::ContentType(content_type.into()));
            req.body = body;
        }
        Ok(req)
    }

    /// Sends `req` to `dest` in a client transaction; the final response, or an error after `deadline`.
    pub async fn send(
        &self,
        req: Request,
        dest: SipAddr,
        deadline: Duration,
    ) -> Result<Response, SipError> {
        let key = TransactionKey::from_request(&req, TransactionRole::Client)?;
        let mut tx = Transaction::new_client(key, req, self.inner().clone(), None);
        tx.destination = Some(dest);
        let wait = async {
            tx.send().await?;
            while let Some(msg) = tx.receive().await {
                if let SipMessage::Response(resp) = msg {
                    if resp.status_code.code() >= 200 {
                        return Ok(resp);
                    }
                }
            }
            Err(SipError::Stack(
                "transaction ended without an answer".into(),
            ))
        };
        tokio::time::timeout(deadline, wait)
            .await
            .map_err(|_| SipError::Timeout(deadline))?
    }
}

/// What [`Stack::request`] builds.
pub struct Outgoing<'a> {
    pub method: Method,
    pub to_id: &'a str,
    pub to_host: String,
    pub from_id: &'a str,
    pub from_domain: &'a str,
    pub transport: Transport,
    pub body: Option<(&'static str, Vec<u8>)>,
    pub headers: Vec<(&'static str, String)>,
    /// In-dialog requests (BYE): the dialog's Call-ID, tags, CSeq and the peer's Contact.
    pub call_id: Option<&'a str>,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub cseq: Option<u32>,
    pub request_uri: Option<Uri>,
}

impl<'a> Outgoing<'a> {
    pub fn new(
        method: Method,
        to_id: &'a str,
        to_host: String,
        from_id: &'a str,
        from_domain: &'a str,
    ) -> Self {
        Outgoing {
            method,
            to_id,
            to_host,
            from_id,
            from_domain,
            transport: Transport::Udp,
            body: None,
            headers: Vec::new(),
            call_id: None,
            from_tag: None,
            to_tag: None,
            cseq: None,
            request_uri: None,
        }
    }
}

pub fn sip_uri(user: &str, host: &str) -> Result<Uri, SipError> {
    Uri::try_from(format!("sip:{user}@{host}").as_str())
        .map_err(|_| SipError::Address(format!("{user}@{host}")))
}

/// Where to send requests to the peer of `req`: the source address the transport saw (Via `received`
/// and `rport`, added by the stack), over the transport the request came by.
pub fn peer_addr(req: &Request) -> Result<SipAddr, SipError> {
    let via = req.via_header()?.typed()?;
    let mut host = via.uri.host_with_port.clone();
    for p in &via.params {
        match p {
            rsipstack::sip::Param::Received(r) => {
                if let Ok(ip) = r.value().parse::<std::net::IpAddr>() {
                    host.host = ip.into();
                }
            }
            rsipstack::sip::Param::Rport(Some(port)) => host.port = Some((*port).into()),
            _ => {}
        }
    }
    Ok(SipAddr {
        r#type: Some(via.transport),
        addr: host,
    })
}

/// Whether a request came from the host of `addr` (its port may differ behind NAT).
pub fn from_host(req: &Request, addr: &SipAddr) -> bool {
    peer_addr(req).is_ok_and(|p| p.addr.host == addr.addr.host)
}

/// The Call-ID of a request (empty when it has none).
pub fn call_id(req: &Request) -> String {
    req.call_id_header()
        .map(|c| c.value().to_owned())
        .unwrap_or_default()
}

/// The user part of the From header (a device's 20-digit id).
pub fn from_user(req: &Request) -> Option<String> {
    let from = req.from_header().ok()?.typed().ok()?;
    from.uri.auth.map(|a| a.user)
}

/// A header's raw value.
pub fn header<'a>(msg: &'a rsipstack::sip::Headers, name: &str) -> Option<&'a str> {
    msg.iter().find_map(|h| match h {
        Header::Other(k, v) if k.eq_ignore_ascii_case(name) => Some(v.as_str()),
        _ => None,
    })
}
