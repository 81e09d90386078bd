//! The HTTP/1.1 client: one hyper connection per TCP stream (`conn::http1::handshake`), no
//! pool and no locks. The caller owns the [`Sender`]; the connection's I/O driver runs as one
//! task on the current runtime for the life of the connection (not one task per request).

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::workload::{ReqBody, Target};

/// The request half of one keep-alive connection.
pub type Sender = http1::SendRequest<ReqBody>;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP connect or HTTP handshake failed.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection failed while sending or receiving.
    #[error("io: {0}")]
    Io(#[from] hyper::Error),
    /// The host name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
}

/// Resolves the target's host once (the run then always connects to this address).
pub async fn resolve(target: &Target) -> Result<SocketAddr, ClientError> {
    let mut addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| ClientError::Resolve(format!("{}: {e}", target.host)))?;
    addrs
        .next()
        .ok_or_else(|| ClientError::Resolve(target.host.clone()))
}

/// Opens a connection (TCP_NODELAY) and spawns its driver on the current runtime.
pub async fn connect(addr: SocketAddr) -> Result<Sender, ClientError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    // Small requests must not wait for Nagle's algorithm.
    stream
        .set_nodelay(true)
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        // The driver ends when the sender is dropped or the peer closes; errors surface on
        // the sender.
        let _ = conn.await;
    });
    Ok(sender)
}

/// What became of a send attempt.
#[derive(Debug)]
pub enum Exchange {
    /// A complete response: its status.
    Status(u16),
    /// The connection was closed before the request was written (e.g. the server ended the
    /// keep-alive connection): the request comes back unsent, to retry on a new connection.
    NotSent(Box<Request<ReqBody>>),
}

/// Sends `req` and reads the whole response body (discarding it), so the connection can be
/// reused. Returns [`Exchange::NotSent`] when the request never left.
pub async fn exchange(sender: &mut Sender, req: Request<ReqBody>) -> Result<Exchange, ClientError> {
    if sender.ready().await.is_err() {
        return Ok(Exchange::NotSent(Box::new(req)));
    }
    let response = match sender.try_send_request(req).await {
        Ok(r) => r,
        Err(mut e) => {
            return match e.take_message() {
                Some(req) => Ok(Exchange::NotSent(Box::new(req))),
                None => Err(ClientError::Io(e.into_error())),
            };
        }
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Io(e)),
            None => break,
        }
    }
    Ok(Exchange::Status(status))
}

/// Sends `req` and returns the status and the body (for seeding and probes, not the hot loop).
pub async fn exchange_collect(
    sender: &mut Sender,
    req: Request<ReqBody>,
) -> Result<(u16, Bytes), ClientError> {
    sender.ready().await?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    Ok((status, buf.freeze()))
}
