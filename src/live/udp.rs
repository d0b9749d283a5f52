//! A WebRTC session's UDP sockets, through quinn-udp: batched sending and segmented receiving.
//!
//! Sending: str0m hands out one SRTP packet at a time; the session collects every packet of one poll (all
//! the packets of a frame) in an [`Outbox`] and sends them in as few system calls as the kernel allows:
//! consecutive datagrams to the same destination whose sizes are equal (the last may be shorter) go out as
//! one UDP GSO send (`UDP_SEGMENT`, Linux 4.18 and later), so a keyframe of a hundred packets costs two
//! `sendmsg` calls instead of a hundred. Where the kernel has no GSO, quinn-udp reports one segment per
//! send and each datagram goes alone.
//!
//! Receiving: quinn-udp turns UDP GRO on, so one read may return several datagrams of one peer joined
//! together; [`Socket::receive`] splits them at quinn-udp's stride before str0m sees them.
//!
//! Invariants:
//! - Datagrams leave in the order str0m produced them, and reach str0m one by one.
//! - Sending never waits: a full socket buffer drops the batch it would have blocked on, as the network
//!   would drop packets (the browser asks again by NACK or PLI, and the next keyframe resumes anyway).

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// A UDP GSO send carries at most this many payload bytes (the IP length field's 64 KiB less headers).
const MAX_BATCH_BYTES: usize = 65_000;

/// A read's buffer: room for the most datagrams GRO joins (64) of the largest WebRTC size. One per
/// runtime thread (see [`Socket::read_split`]).
const RECEIVE_BUFFER: usize = 64 * 1500;

/// One of the session's sockets.
pub struct Socket {
    udp: UdpSocket,
    /// Its bound address: the `source` str0m names in each transmit (read once, not per datagram).
    pub local: SocketAddr,
    state: quinn_udp::UdpSocketState,
}

/// A datagram received: from, to (the socket's address), contents.
pub type Incoming = (SocketAddr, SocketAddr, Vec<u8>);

impl Socket {
    pub fn new(udp: UdpSocket) -> std::io::Result<Arc<Socket>> {
        let local = udp.local_addr()?;
        let state = quinn_udp::UdpSocketState::new((&udp).into())?;
        Ok(Arc::new(Socket { udp, local, state }))
    }

    /// Hands every datagram the socket receives to `to`, one by one, until the socket fails or `to` is
    /// closed.
    pub async fn receive(self: Arc<Self>, to: tokio::sync::mpsc::Sender<Incoming>) {
        loop {
            let read = self
                .udp
                .async_io(Interest::READABLE, || self.read_split())
                .await;
            let Ok((from, datagrams)) = read else { return };
            for datagram in datagrams {
                if to.send((from, self.local, datagram)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// One read, split into its datagrams. The read buffer is the thread's, not the session's: it is large
    /// (what GRO may join) and needed only for the length of this call.
    fn read_split(&self) -> std::io::Result<(SocketAddr, Vec<Vec<u8>>)> {
        READ_BUFFER.with_borrow_mut(|buf| {
            let mut meta = [quinn_udp::RecvMeta::default()];
            let mut bufs = [IoSliceMut::new(buf)];
            self.state.recv((&self.udp).into(), &mut bufs, &mut meta)?;
            let m = &meta[0];
            let datagrams = buf[..m.len].chunks(m.stride.max(1)).map(<[u8]>::to_vec);
            Ok((m.addr, datagrams.collect()))
        })
    }
}

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; RECEIVE_BUFFER]);
}

struct Datagram {
    socket: usize,
    destination: SocketAddr,
    bytes: Range<usize>,
}

/// Datagrams waiting to be sent, in one buffer.
#[derive(Default)]
pub struct Outbox {
    buf: Vec<u8>,
    datagrams: Vec<Datagram>,
}

/// What one [`Outbox::flush`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: usize,
    /// Bytes of the datagrams sent (not of those dropped).
    pub bytes: usize,
    pub sends: usize,
    pub dropped: usize,
}

/// A run of datagrams that goes out in one send.
#[derive(Debug, PartialEq, Eq)]
struct Batch {
    socket: usize,
    destination: SocketAddr,
    bytes: Range<usize>,
    count: usize,
    /// The size of each datagram but the last (which may be shorter), when there are several.
    segment: Option<usize>,
}

impl Outbox {
    /// Queues a datagram from the socket of index `socket`.
    pub fn push(&mut self, socket: usize, destination: SocketAddr, contents: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(contents);
        self.datagrams.push(Datagram {
            socket,
            destination,
            bytes: start..self.buf.len(),
        });
    }

    /// Sends everything queued, never waiting, and empties the outbox; `batch: false` sends each
    /// datagram alone.
    pub fn flush(&mut self, sockets: &[Arc<Socket>], batch: bool) -> Flushed {
        let mut done = Flushed::default();
        // Most polls (timers, RTCP in) queue nothing: no work for them.
        if self.datagrams.is_empty() {
            return done;
        }
        let max_segments = match batch {
            true => sockets.iter().map(|s| s.state.max_gso_segments()).min(),
            false => None,
        };
        let max_segments = max_segments.unwrap_or(1);
        for batch in batches(&self.datagrams, max_segments, MAX_BATCH_BYTES) {
            let Some(socket) = sockets.get(batch.socket) else {
                continue;
            };
            let transmit = quinn_udp::Transmit {
                destination: batch.destination,
                ecn: None,
                contents: &self.buf[batch.bytes.clone()],
                segment_size: batch.segment,
                src_ip: None,
            };
            let sent = socket.udp.try_io(Interest::WRITABLE, || {
                socket.state.send((&socket.udp).into(), &transmit)
            });
            done.datagrams += batch.count;
            done.sends += 1;
            match sent {
                Ok(()) => done.bytes += transmit.contents.len(),
                Err(_) => done.dropped += batch.count,
            }
        }
        self.buf.clear();
        self.datagrams.clear();
        done
    }
}

/// Splits the queue into sends: a batch grows while the datagrams share socket and destination, each has
/// the first one's size, and the limits allow; a shorter datagram ends its batch as the last segment.
fn batches(datagrams: &[Datagram], max_segments: usize, max_bytes: usize) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut open = false;
    for d in datagrams {
        let len = d.bytes.len();
        if open {
            if let Some(b) = out.last_mut() {
                let size = b.bytes.len() / b.count;
                let fits = b.socket == d.socket
                    && b.destination == d.destination
                    && len <= size
                    && b.count < max_segments
                    && b.bytes.len() + len <= max_bytes;
                if fits {
                    b.bytes.end = d.bytes.end;
                    b.count += 1;
                    b.segment = Some(size);
                    // A shorter datagram can only be the last segment.
                    open = len == size;
                    continue;
                }
            }
        }
        out.push(Batch {
            socket: d.socket,
            destination: d.destination,
            bytes: d.bytes.clone(),
            count: 1,
            segment: None,
        });
        open = len > 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(items: &[(usize, u16, usize)]) -> Vec<Datagram> {
        let mut end = 0;
        items
            .iter()
            .map(|&(socket, port, len)| {
                let d = Datagram {
                    socket,
                    destination: SocketAddr::from(([127, 0, 0, 1], port)),
                    bytes: end..end + len,
                };
                end += len;
                d
            })
            .collect()
    }

    fn shape(b: &[Batch]) -> Vec<(usize, Option<usize>)> {
        b.iter().map(|b| (b.count, b.segment)).collect()
    }

    #[test]
    fn equal_datagrams_to_one_peer_go_in_one_send_with_a_shorter_last() {
        let q = queue(&[
            (0, 1, 1200),
            (0, 1, 1200),
            (0, 1, 1200),
            (0, 1, 300),
            (0, 1, 1200),
        ]);
        assert_eq!(
            shape(&batches(&q, 64, MAX_BATCH_BYTES)),
            vec![(4, Some(1200)), (1, None)]
        );
    }

    #[test]
    fn a_batch_ends_at_another_peer_socket_or_a_longer_datagram() {
        let q = queue(&[
            (0, 1, 100),
            (0, 2, 100),
            (1, 2, 100),
            (1, 2, 200),
            (1, 2, 200),
        ]);
        let b = batches(&q, 64, MAX_BATCH_BYTES);
        assert_eq!(
            shape(&b),
            vec![(1, None), (1, None), (1, None), (2, Some(200))]
        );
        assert_eq!(b[3].bytes, 300..700);
    }

    #[test]
    fn a_batch_keeps_to_the_segment_and_byte_limits() {
        let q = queue(&[(0, 1, 1000); 10]);
        assert_eq!(
            shape(&batches(&q, 4, 100_000)),
            vec![(4, Some(1000)), (4, Some(1000)), (2, Some(1000))]
        );
        assert_eq!(
            shape(&batches(&q, 64, 3_500)),
            vec![(3, Some(1000)), (3, Some(1000)), (3, Some(1000)), (1, None)]
        );
        assert_eq!(shape(&batches(&q, 1, 100_000)), vec![(1, None); 10]);
    }

    #[tokio::test]
    async fn a_flushed_batch_arrives_as_separate_datagrams_in_order() {
        let rx = Socket::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap();
        let to = rx.local;
        let (got_tx, mut got) = tokio::sync::mpsc::channel(16);
        tokio::spawn(rx.receive(got_tx));
        let tx = Socket::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap();
        // Sending never waits, so it needs the reactor to have seen the new socket writable once.
        tx.udp.writable().await.unwrap();
        let mut outbox = Outbox::default();
        let sizes = [1200, 1200, 1200, 17, 1200, 900];
        for (i, &n) in sizes.iter().enumerate() {
            outbox.push(0, to, &vec![i as u8; n]);
        }
        let done = outbox.flush(std::slice::from_ref(&tx), true);
        assert_eq!((done.datagrams, done.dropped), (6, 0));
        if tx.state.max_gso_segments() > 1 {
            assert_eq!(done.sends, 2, "GSO: 1200 x3 + 17, then 1200 + 900");
        }
        // The receiving socket has GRO on: whether the kernel joined them or not, they come out one by one.
        for (i, &n) in sizes.iter().enumerate() {
            let (from, at, data) = got.recv().await.unwrap();
            assert_eq!((from, at, data.len()), (tx.local, to, n));
            assert!(data.iter().all(|&b| b == i as u8));
        }
    }
}
