//! Opening authenticated WebSocket connections to a chat server: the target's addresses, the
//! local source addresses to spread connections over, and the handshake.
//!
//! One source address can hold one connection per local port, about 28,000 with Linux's
//! default ephemeral range (`net.ipv4.ip_local_port_range`), so `--sources N` binds each new
//! socket (with `tokio::net::TcpSocket`, before `connect`) to one of 127.0.0.1 ..
//! 127.0.0.N in turn: every 127/8 address is the loopback interface on Linux.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderValue};
use http::{Uri, uri::Authority};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::ws::token::{SECRET_ENV, Signer, TokenError};

/// The chat's WebSocket route.
pub const WS_PATH: &str = "/api/v1/chat/ws";

/// One open WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Read buffer of each bench connection. tungstenite allocates (and zeroes) the whole read
/// buffer per connection (128 KiB by default); the bench's frames are small, and 20,000
/// default buffers would cost the generator 2.5 GiB.
pub const READ_BUFFER: usize = 8 * 1024;

/// A server to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The URL as given.
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` (`host:port`).
    pub authority: String,
    /// The WebSocket URL (`ws://authority/api/v1/chat/ws`).
    pub ws_url: String,
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The URL is not usable.
    #[error(
        "invalid server URL `{0}`: expected http://HOST:PORT or ws://HOST:PORT[/path] with HOST an IP address"
    )]
    Url(String),
    /// The bench's own process is out of file descriptors.
    #[error(
        "too many open files in the bench: raise its limit (`ulimit -n 100000` in the shell that starts it; `ulimit -Hn` shows the ceiling)"
    )]
    NoFiles,
    /// The source address ran out of local ports.
    #[error("no free local port on {0}: spread connections over more source addresses (--sources)")]
    NoPorts(IpAddr),
    /// TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server answered the handshake with an HTTP status instead of switching protocols.
    #[error("the server refused the WebSocket with {status}: {hint}")]
    Refused {
        /// The status.
        status: u16,
        /// What to do about it.
        hint: String,
    },
    /// The handshake failed otherwise.
    #[error("WebSocket handshake: {0}")]
    Handshake(String),
    /// Connect and handshake took longer than the timeout.
    #[error(
        "no WebSocket within {0:?}: the server may be out of file descriptors (raise its `ulimit -n`) or saturated; lower --concurrency"
    )]
    Timeout(Duration),
    /// The token could not be signed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl DialError {
    /// A short stable name for counting failures by reason.
    pub fn reason(&self) -> String {
        match self {
            DialError::Url(_) => "url".into(),
            DialError::NoFiles => "bench_out_of_files".into(),
            DialError::NoPorts(_) => "no_local_port".into(),
            DialError::Connect { source, .. } => {
                format!("connect_{:?}", source.kind()).to_lowercase()
            }
            DialError::Refused { status, .. } => format!("status_{status}"),
            DialError::Handshake(_) => "handshake".into(),
            DialError::Timeout(_) => "timeout".into(),
            DialError::Token(_) => "token".into(),
        }
    }
}

impl Server {
    /// Parses `http://HOST:PORT`, `ws://HOST:PORT` or either with the WebSocket's path (the
    /// chat's `/api/v1/chat/ws` when the URL has none). HOST must be an IP address: the bench
    /// binds source addresses of the same family.
    pub fn parse(url: &str) -> Result<Self, DialError> {
        let bad = || DialError::Url(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        match uri.scheme_str() {
            Some("http" | "ws") => {}
            _ => return Err(bad()),
        }
        let authority: &Authority = uri.authority().ok_or_else(bad)?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ip: IpAddr = host.parse().map_err(|_| bad())?;
        let port = authority.port_u16().unwrap_or(80);
        let path = match uri.path() {
            "" | "/" => WS_PATH,
            p => p,
        };
        Ok(Server {
            url: url.to_owned(),
            addr: SocketAddr::new(ip, port),
            authority: authority.as_str().to_owned(),
            ws_url: format!("ws://{}{path}", authority.as_str()),
        })
    }

    /// Parses a comma-separated list of servers.
    pub fn parse_list(urls: &str) -> Result<Vec<Self>, DialError> {
        urls.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(Server::parse)
            .collect()
    }
}

/// The local addresses to bind: `127.0.0.1 ..= 127.0.0.N` for a loopback IPv4 server, none
/// (the kernel picks) when `n <= 1`.
pub fn source_addresses(server: &SocketAddr, n: usize) -> Result<Vec<IpAddr>, String> {
    if n <= 1 {
        return Ok(Vec::new());
    }
    match server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {}
        other => {
            return Err(format!(
                "--sources {n} spreads connections over 127.0.0.1..127.0.0.{n}, which only reach a loopback IPv4 server, not {other}"
            ));
        }
    }
    if n > 254 {
        return Err(format!(
            "--sources {n}: at most 254 (127.0.0.1 to 127.0.0.254)"
        ));
    }
    Ok((1..=n as u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect())
}

/// Opens WebSockets to one server as numbered bench accounts.
#[derive(Debug, Clone)]
pub struct Dialer {
    server: Server,
    sources: Vec<IpAddr>,
    signer: Option<Signer>,
    timeout: Duration,
}

impl Dialer {
    /// A dialer for `server`, binding to `sources` in turn (none: the kernel picks), signing
    /// tokens with `signer` (none: no `Authorization`, which only the reference accepts).
    pub fn new(
        server: Server,
        sources: Vec<IpAddr>,
        signer: Option<Signer>,
        timeout: Duration,
    ) -> Self {
        Dialer {
            server,
            sources,
            signer,
            timeout,
        }
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The token signer, if any.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// Connects as `account`; `index` picks the source address.
    pub async fn open(&self, index: usize, account: &str) -> Result<Ws, DialError> {
        match tokio::time::timeout(self.timeout, self.open_now(index, account)).await {
            Ok(result) => result,
            Err(_) => Err(DialError::Timeout(self.timeout)),
        }
    }

    async fn open_now(&self, index: usize, account: &str) -> Result<Ws, DialError> {
        let addr = self.server.addr;
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| io_error(e, addr, None))?;
        let source = (!self.sources.is_empty()).then(|| self.sources[index % self.sources.len()]);
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| io_error(e, addr, Some(ip)))?;
        }
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| io_error(e, addr, source))?;
        // Small frames must not wait for Nagle's algorithm.
        stream
            .set_nodelay(true)
            .map_err(|e| io_error(e, addr, source))?;
        let mut request = self
            .server
            .ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| DialError::Handshake(e.to_string()))?;
        if let Some(signer) = &self.signer {
            let value = HeaderValue::from_str(&format!("Bearer {}", signer.token(account)?))
                .map_err(|e| DialError::Handshake(e.to_string()))?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|e| handshake_error(e, self.signer.is_some()))?;
        Ok(ws)
    }
}

fn io_error(e: std::io::Error, addr: SocketAddr, source: Option<IpAddr>) -> DialError {
    match e.raw_os_error() {
        // EMFILE, ENFILE
        Some(24 | 23) => DialError::NoFiles,
        // EADDRNOTAVAIL, EADDRINUSE
        Some(99 | 98) => DialError::NoPorts(source.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
        _ => DialError::Connect { addr, source: e },
    }
}

fn handshake_error(e: tokio_tungstenite::tungstenite::Error, signed: bool) -> DialError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                .unwrap_or_default();
            let hint = match status {
                401 if signed => format!(
                    "the token was not accepted: is {SECRET_ENV} (or --jwt-secret-file) the server's jwt secret, and --jwt-issuer/--jwt-audience its [identity] jwt_issuer/jwt_audience? ({body})"
                ),
                401 => format!(
                    "the server wants a token: set {SECRET_ENV} (or --jwt-secret-file) to its jwt secret ({body})"
                ),
                429 => format!(
                    "too many connections for one account: raise the server's PRAXIS_CHAT_CONNECTIONS_PER_ACCOUNT, or use a fresh --account-prefix ({body})"
                ),
                404 => format!(
                    "no WebSocket route there: is the URL's path the chat's {WS_PATH}? ({body})"
                ),
                _ => body,
            };
            DialError::Refused { status, hint }
        }
        Error::Io(io) if matches!(io.raw_os_error(), Some(24 | 23)) => DialError::NoFiles,
        other => DialError::Handshake(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        let s = Server::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(s.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.ws_url, "ws://127.0.0.1:8080/api/v1/chat/ws");
        let s = Server::parse("ws://127.0.0.1:8092/other").unwrap();
        assert_eq!(s.ws_url, "ws://127.0.0.1:8092/other");
        assert_eq!(Server::parse("http://[::1]:9/").unwrap().addr.port(), 9);
        for bad in [
            "localhost:8080",
            "https://127.0.0.1",
            "http://example.com:80",
            "ws://",
        ] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
        let list = Server::parse_list("http://127.0.0.1:1, http://127.0.0.1:2").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].addr.port(), 2);
    }

    #[test]
    fn source_addresses_are_loopback_only() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(source_addresses(&lo, 1).unwrap().is_empty());
        let s = source_addresses(&lo, 3).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2], "127.0.0.3".parse::<IpAddr>().unwrap());
        let remote: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        assert!(
            source_addresses(&remote, 2)
                .unwrap_err()
                .contains("loopback")
        );
        assert!(source_addresses(&lo, 300).is_err());
    }

    #[test]
    fn failures_say_what_to_do() {
        let e = io_error(
            std::io::Error::from_raw_os_error(24),
            "127.0.0.1:1".parse().unwrap(),
            None,
        );
        assert!(e.to_string().contains("ulimit -n"), "{e}");
        let e = io_error(
            std::io::Error::from_raw_os_error(99),
            "127.0.0.1:1".parse().unwrap(),
            Some("127.0.0.2".parse().unwrap()),
        );
        assert!(e.to_string().contains("--sources"), "{e}");
        assert_eq!(e.reason(), "no_local_port");
    }
}
