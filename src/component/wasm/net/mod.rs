//! Network grants: what a guest may reach through `wasi:http` and `wasi:sockets`.
//!
//! Nothing by default. A grant names what is allowed, and every other attempt is refused with
//! an error the guest sees (`http-request-denied`, `destination-ip-prohibited`, or the
//! socket's `access-denied`) and a warning in the log naming the process, the host and the
//! port, so an operator can tell a missing grant from a broken service.
//!
//! - `http`: origins, as `scheme://host[:port]`. The host may be a name, an IP address, or
//!   `*.domain` (any subdomain, not the domain itself); the port `*` (any) or a number, and
//!   without one only the scheme's default port. `https://api.example.com`,
//!   `http://127.0.0.1:*`.
//! - `connect` and `listen`: `host:port` for sockets (TCP connect and UDP send, or bind), the
//!   port `*` for any. A host name is looked up once, when the process starts.
//!
//! DNS cannot widen a grant: every request connects to an address that the host resolved and
//! checked itself (the guest's own lookups are not used), and a host granted by name must not
//! resolve to a loopback, private, link-local or otherwise local address unless it is
//! `localhost`. Redirects are not followed by the host: a guest that follows one makes a new
//! request, checked like the first.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_http::Error as HttpError;

mod outgoing;

pub(crate) use outgoing::NetHooks;

/// How long a request may wait for a connection, for its first byte, and between bytes,
/// unless granted otherwise (a guest may ask for less).
pub const DEFAULT_NET_TIMEOUT_MS: u64 = 30_000;
/// The largest response body a guest may read, and request body it may send, in MiB.
pub const DEFAULT_NET_BODY_MIB: u64 = 16;
/// HTTP requests one process may have open at once.
pub const DEFAULT_NET_CONNECTIONS: u64 = 16;

/// A port rule.
#[derive(Debug, Clone, PartialEq)]
enum PortRule {
    Any,
    Exact(u16),
}

impl PortRule {
    fn allows(&self, port: u16) -> bool {
        match self {
            PortRule::Any => true,
            PortRule::Exact(p) => *p == port,
        }
    }
}

/// A host rule of an HTTP grant.
#[derive(Debug, Clone, PartialEq)]
enum HostRule {
    /// This name, in lower case.
    Name(String),
    /// Any name ending in this suffix (which starts with a dot).
    Subdomains(String),
    /// This address.
    Ip(IpAddr),
}

/// One `http` grant.
#[derive(Debug, Clone, PartialEq)]
struct HttpRule {
    https: bool,
    host: HostRule,
    port: PortRule,
}

/// One `connect` or `listen` grant: the addresses a host part stands for, and a port rule.
#[derive(Debug, Clone, PartialEq)]
struct AddrRule {
    ips: Vec<IpAddr>,
    port: PortRule,
}

/// What a guest may reach, and within which limits.
#[derive(Debug)]
pub(crate) struct NetPolicy {
    node: String,
    http: Vec<HttpRule>,
    connect: Vec<AddrRule>,
    listen: Vec<AddrRule>,
    timeout: Duration,
    max_body: u64,
    connections: Arc<Semaphore>,
}

/// Splits `host:port` (with `[v6]:port`) into its parts.
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port));
    }
    text.rsplit_once(':')
}

fn port_rule(text: &str) -> Option<PortRule> {
    match text {
        "*" => Some(PortRule::Any),
        port => port.parse().ok().map(PortRule::Exact),
    }
}

fn http_rule(grant: &str) -> Result<HttpRule, String> {
    let bad = |why: &str| format!("http grant '{grant}': {why}");
    let (scheme, rest) = grant
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host[:port]"))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') || rest.is_empty() {
        return Err(bad(
            "expected an origin: scheme://host[:port], no path or login",
        ));
    }
    let bracketed = rest.starts_with('[');
    let (host, port) = match split_host_port(rest) {
        Some((host, port)) if bracketed || !host.contains(':') => (
            host,
            port_rule(port).ok_or_else(|| bad("the port must be a number or *"))?,
        ),
        _ => (
            rest.trim_matches(['[', ']']),
            PortRule::Exact(if https { 443 } else { 80 }),
        ),
    };
    let host = host.to_ascii_lowercase();
    let host = if let Ok(ip) = host.parse::<IpAddr>() {
        HostRule::Ip(ip)
    } else if let Some(domain) = host.strip_prefix("*.") {
        if domain.is_empty() || domain.contains('*') {
            return Err(bad("a wildcard is only allowed as *.domain"));
        }
        HostRule::Subdomains(format!(".{domain}"))
    } else if host.contains('*') || host.is_empty() {
        return Err(bad("a wildcard is only allowed as *.domain"));
    } else {
        HostRule::Name(host)
    };
    Ok(HttpRule { https, host, port })
}

fn addr_rule(kind: &str, grant: &str) -> Result<AddrRule, String> {
    let bad = |why: String| format!("{kind} grant '{grant}': {why}");
    let (host, port) =
        split_host_port(grant).ok_or_else(|| bad("expected host:port (port * for any)".into()))?;
    let port = port_rule(port).ok_or_else(|| bad("the port must be a number or *".into()))?;
    let ips = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, 0)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot look up '{host}': {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    Ok(AddrRule { ips, port })
}

/// Whether `ip` is an address a name on the internet should never lead to.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // 100.64.0.0/10, shared address space (carrier-grade NAT).
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
        }
    }
}

impl NetPolicy {
    /// The policy for `node` from its grants; an error names the grant that is malformed.
    pub(crate) fn new(
        node: &str,
        http: &[String],
        connect: &[String],
        listen: &[String],
        limits: (u64, u64, u64),
    ) -> Result<NetPolicy, String> {
        let (timeout_ms, body_mib, connections) = limits;
        Ok(NetPolicy {
            node: node.to_string(),
            http: http
                .iter()
                .map(|g| http_rule(g))
                .collect::<Result<_, _>>()?,
            connect: connect
                .iter()
                .map(|g| addr_rule("connect", g))
                .collect::<Result<_, _>>()?,
            listen: listen
                .iter()
                .map(|g| addr_rule("listen", g))
                .collect::<Result<_, _>>()?,
            timeout: Duration::from_millis(timeout_ms),
            max_body: body_mib.saturating_mul(1 << 20),
            connections: Arc::new(Semaphore::new(
                usize::try_from(connections)
                    .unwrap_or(usize::MAX)
                    .min(Semaphore::MAX_PERMITS),
            )),
        })
    }

    /// Whether a socket may use `addr` as `usage` says; a refusal is logged.
    pub(crate) fn allows_socket(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let matches = |rules: &[AddrRule]| {
            rules
                .iter()
                .any(|r| r.port.allows(addr.port()) && r.ips.contains(&addr.ip()))
        };
        let (allowed, what) = match usage {
            // Connecting or listening binds the socket first, to the wildcard address and
            // port 0 unless the guest chose one: harmless by itself, as listening and
            // sending are checked on their own, and refusing it would log the bind instead
            // of the address the guest was after.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                let ephemeral = addr.ip().is_unspecified() && addr.port() == 0;
                (ephemeral || matches(&self.listen), "bind to")
            }
            SocketAddrUse::TcpListen => (matches(&self.listen), "listen on"),
            // Whoever connects to an allowed listener may.
            SocketAddrUse::TcpAccept => return true,
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => {
                (matches(&self.connect), "connect or send to")
            }
            // Datagrams from where the guest may send, or to a UDP server it may run; others
            // are dropped silently (a flood would fill the log).
            SocketAddrUse::UdpReceive => {
                return matches(&self.connect) || !self.listen.is_empty();
            }
        };
        if !allowed {
            tracing::warn!(
                node = %self.node,
                "refused: the guest tried to {what} {addr} ({usage:?}); no grant allows it"
            );
        }
        allowed
    }

    /// Whether the guest may look names up: only when a socket grant named a host, since a
    /// lookup itself reaches the resolver with any name the guest makes up.
    pub(crate) fn allows_name_lookup(&self, connect: &[String]) -> bool {
        connect
            .iter()
            .any(|g| split_host_port(g).is_some_and(|(host, _)| host.parse::<IpAddr>().is_err()))
    }

    /// The rule allowing a request to `https`/`host`/`port`, if any.
    fn http_rule(&self, https: bool, host: &str, port: u16) -> Option<&HttpRule> {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.http.iter().find(|rule| {
            rule.https == https
                && rule.port.allows(port)
                && match &rule.host {
                    HostRule::Name(name) => *name == host,
                    HostRule::Subdomains(suffix) => host.ends_with(suffix.as_str()),
                    HostRule::Ip(allowed) => Some(*allowed) == ip,
                }
        })
    }

    fn refuse(&self, what: &str) -> HttpError {
        tracing::warn!(node = %self.node, "refused: the guest's HTTP request to {what}; no grant allows it");
        HttpError::HttpRequestDenied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(http: &[&str]) -> NetPolicy {
        let http: Vec<String> = http.iter().map(|s| s.to_string()).collect();
        NetPolicy::new("n", &http, &[], &[], (1000, 1, 1)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn origins_match_scheme_host_and_port_exactly() {
        let p = policy(&[
            "https://api.example.com",
            "http://127.0.0.1:*",
            "https://*.example.org:8443",
        ]);
        assert!(p.http_rule(true, "api.example.com", 443).is_some());
        assert!(p.http_rule(true, "API.example.com", 443).is_some());
        assert!(p.http_rule(false, "api.example.com", 80).is_none());
        assert!(p.http_rule(true, "api.example.com", 8443).is_none());
        assert!(p.http_rule(true, "evil-api.example.com", 443).is_none());
        assert!(p.http_rule(false, "127.0.0.1", 1).is_some());
        assert!(p.http_rule(false, "127.0.0.2", 1).is_none());
        assert!(p.http_rule(true, "a.b.example.org", 8443).is_some());
        assert!(p.http_rule(true, "example.org", 8443).is_none());
        assert!(p.http_rule(true, "example.org.evil.com", 8443).is_none());
    }

    #[test]
    fn local_addresses_are_recognised() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                is_local(local.parse().unwrap_or_else(|_| panic!("{local}"))),
                "{local}"
            );
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                !is_local(public.parse().unwrap_or_else(|_| panic!("{public}"))),
                "{public}"
            );
        }
    }

    #[test]
    fn socket_grants_name_addresses_and_ports() {
        let connect = vec!["127.0.0.1:4222".to_string(), "[::1]:*".to_string()];
        let p =
            NetPolicy::new("n", &[], &connect, &[], (1000, 1, 1)).unwrap_or_else(|e| panic!("{e}"));
        let at = |s: &str| s.parse::<SocketAddr>().unwrap_or_else(|_| panic!("{s}"));
        assert!(p.allows_socket(at("127.0.0.1:4222"), SocketAddrUse::TcpConnect));
        assert!(!p.allows_socket(at("127.0.0.1:4223"), SocketAddrUse::TcpConnect));
        assert!(p.allows_socket(at("[::1]:9"), SocketAddrUse::UdpSend));
        assert!(!p.allows_socket(at("127.0.0.1:4222"), SocketAddrUse::TcpBind));
        assert!(p.allows_socket(at("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(!p.allows_socket(at("0.0.0.0:5000"), SocketAddrUse::TcpListen));
        assert!(!p.allows_name_lookup(&connect));
    }
}
