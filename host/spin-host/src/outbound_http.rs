//! Outbound network policy: `wasi:http` requests and `wasi:sockets` connections are allowed only
//! to destinations matched by the component's `allowed_outbound_hosts`, as in Spin.

use std::net::SocketAddr;
use std::sync::Arc;

use spin_app::allowed_hosts::AllowedHosts;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::instance::ComponentContext;

pub struct OutboundHttpPolicy {
    component: Arc<ComponentContext>,
}

impl OutboundHttpPolicy {
    pub fn new(component: Arc<ComponentContext>) -> Self {
        Self { component }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http");
        let host = uri.host().unwrap_or_default();
        let allowed = self
            .component
            .allowed_hosts
            .allows(scheme, host, uri.port_u16());
        if !allowed {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            report_denied(&self.component.id, &format!("{scheme}://{authority}"));
            return Box::new(async { Err(ErrorCode::HttpRequestDenied.into()) });
        }
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The `wasi:sockets` check: connections and datagrams need an allowed `tcp://` or `udp://`
/// destination; the implicit bind before a connect is allowed; listening never is.
pub fn socket_allowed(
    component_id: &str,
    hosts: &AllowedHosts,
    addr: SocketAddr,
    use_: SocketAddrUse,
) -> bool {
    let scheme = match use_ {
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => return true,
        SocketAddrUse::TcpConnect => "tcp",
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => "udp",
        _ => return false,
    };
    let host = addr.ip().to_string();
    if hosts.allows(scheme, &host, Some(addr.port())) {
        return true;
    }
    report_denied(component_id, &format!("{scheme}://{addr}"));
    false
}

/// Spin's message for a denied destination, with the manifest line that would allow it.
pub fn report_denied(component_id: &str, destination: &str) {
    eprintln!(
        "A component tried to make an outbound network connection to disallowed destination '{destination}'.\n\
         To allow this request, add 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section for '{component_id}'."
    );
}
