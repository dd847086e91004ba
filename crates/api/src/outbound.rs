//! Outbound HTTP as a port: a service that calls another system over HTTP (payments calls
//! Stripe) builds an [`OutboundRequest`] and sends it through an [`HttpClient`]; the component
//! glue implements the client with Spin's outbound HTTP, tests with a fake that answers in the
//! other system's wire format.

use crate::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: Method,
    /// The whole URL, query string included.
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The request never got an HTTP answer: the host refused it, the connection failed or broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Sends one request and waits for the whole answer.
pub trait HttpClient {
    fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError>;
}
