//! The HTTP trigger: Spin's routing, the `spin-*` request headers, and one fresh instance of a
//! pre-instantiated component per request, with request and response bodies streamed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use spin_app::StaticResponse;
use spin_app::routing::{RouteTarget, Router};
use tokio::net::TcpListener;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::assembly::Assembly;
use crate::instance::{ComponentContext, InstanceState};
use crate::live_reload::{self, LiveReload};

pub struct HttpComponent {
    pub pre: ProxyPre<InstanceState>,
    pub context: Arc<ComponentContext>,
}

pub struct HttpTrigger {
    pub router: Router,
    /// Each component's current version, prepared on first need (`watch` swaps in rebuilt ones).
    pub assembly: Arc<Assembly>,
    pub app_name: String,
    pub app_version: Option<String>,
    /// Requests declaring or streaming a larger body are refused with 413.
    pub max_request_body: u64,
    /// Under `watch`: the reload stream, and the script added to pages.
    pub live_reload: Option<Arc<LiveReload>>,
    /// Becomes true when this run of the app ends: connections then close after the request
    /// they are serving.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

fn body(bytes: impl Into<Bytes>) -> HyperOutgoingBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A bare response with no body and `content-length: 0`, as Spin sends for 404 and 500.
fn bare(status: StatusCode) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(body(Bytes::new()));
    *response.status_mut() = status;
    response
}

impl HttpTrigger {
    /// Accepts connections until the run ends (`stopping`).
    pub async fn serve(self: &Arc<Self>, listener: TcpListener) -> Result<()> {
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => accepted.context("accepting a connection")?,
                () = stopped(self.stopping.clone()) => return Ok(()),
            };
            stream.set_nodelay(true).ok();
            let trigger = self.clone();
            let stopping = self.stopping.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let trigger = trigger.clone();
                    async move { Ok::<_, Infallible>(trigger.handle(request, client).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                // A client that goes away mid-request is routine; nothing to report.
                tokio::select! {
                    _ = connection.as_mut() => {}
                    () = stopped(stopping) => {
                        connection.as_mut().graceful_shutdown();
                        connection.await.ok();
                    }
                }
            });
        }
    }

    async fn handle(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let path = request.uri().path();
        if let Some(live_reload) = &self.live_reload {
            if path == live_reload::PATH {
                return live_reload.events(self.stopping.clone());
            }
            let head = request.method() == http::Method::HEAD;
            let response = Box::pin(self.route(request, client)).await;
            return if head {
                response
            } else {
                live_reload::inject(response).await
            };
        }
        self.route(request, client).await
    }

    async fn route(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let path = request.uri().path();
        if let Some(name) = path.strip_prefix(WELL_KNOWN_PREFIX) {
            return self.well_known(name);
        }
        let Some(matched) = self.router.route(path) else {
            return bare(StatusCode::NOT_FOUND);
        };
        let component_id = match matched.target {
            RouteTarget::Static(response) => return static_response(response),
            RouteTarget::Component(id) => id,
        };
        // This request runs on the version current now, even if a newer one is swapped in.
        let component = match self.assembly.component::<HttpComponent>(component_id).await {
            Ok(component) => component,
            Err(error) => {
                eprintln!("Error preparing component {component_id}: {error:#}");
                return bare(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        if declared_length(request.headers()).is_some_and(|length| length > self.max_request_body) {
            return bare(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        let full_url = format!("http://{host}{path_and_query}");
        let headers = matched.spin_headers(&full_url, &client.to_string());

        let (mut parts, incoming) = request.into_parts();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                parts.headers.append(name, value);
            }
        }
        match full_url.parse() {
            Ok(uri) => parts.uri = uri,
            Err(_) => return bare(StatusCode::BAD_REQUEST),
        }
        let limit = usize::try_from(self.max_request_body).unwrap_or(usize::MAX);
        let body =
            Limited::new(incoming, limit).map_err(|error| match error.downcast::<hyper::Error>() {
                Ok(error) => wasmtime_wasi_http::Error::Hyper(*error),
                Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(None),
            });
        let request = Request::from_parts(parts, body);

        match self.invoke(&component, request).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!(
                    "ERROR Error processing request for component {component_id}: guest invocation failed: {error:?}"
                );
                bare(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    async fn invoke<B>(
        &self,
        component: &HttpComponent,
        request: Request<B>,
    ) -> Result<Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let mut state = InstanceState::new(&component.context)?;
        state.memory = component.context.admission.admit().await;
        let mut store = Store::new(component.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        let id = component.context.id.clone();
        let stats = component.context.stats.clone();
        stats.count_instance();
        // The guest runs in its own task so that it can keep streaming the response body after
        // the headers have gone out.
        let task = tokio::spawn(async move {
            stats
                .metered(async {
                    let proxy = pre.instantiate_async(&mut store).await?;
                    let result = proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, request, outparam)
                        .await;
                    if let Err(error) = &result {
                        eprintln!(
                            "ERROR Component {id} failed after the response started: {error:?}"
                        );
                    }
                    result
                })
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => anyhow::bail!("guest answered with error code {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => anyhow::bail!("guest never set a response"),
                Ok(Err(error)) => Err(error.into()),
                Err(join) => Err(join.into()),
            },
        }
    }

    fn well_known(&self, name: &str) -> Response<HyperOutgoingBody> {
        match name {
            "health" => Response::new(body("OK")),
            "info" => {
                let mut info = serde_json::Map::new();
                info.insert("name".into(), self.app_name.clone().into());
                if let Some(version) = &self.app_version {
                    info.insert("version".into(), version.clone().into());
                }
                let text = serde_json::to_string_pretty(&info).unwrap_or_default();
                let mut response = Response::new(body(text));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            _ => bare(StatusCode::NOT_FOUND),
        }
    }
}

/// Resolves once the run has ended.
pub async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    // An error means the sender, and so the run, is gone.
    stopping.wait_for(|stop| *stop).await.ok();
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn static_response(spec: &StaticResponse) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(body(spec.body.clone().unwrap_or_default()));
    *response.status_mut() = StatusCode::from_u16(spec.status_code).unwrap_or(StatusCode::OK);
    for (name, value) in &spec.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
