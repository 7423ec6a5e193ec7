//! What a client may cost the admission server: the body size, and how
//! long the TLS handshake, a new connection's first request and a body
//! may take, so hostile or stalled clients are cut.

use std::time::Duration;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// AdmissionReviews carry the object twice on UPDATE; objects may be up
/// to 1.5 MiB each in etcd.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// How long a client has for the TLS handshake. The apiserver completes
/// it in milliseconds; its own webhook timeout is at most 30 s.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new connection has, from the end of its TLS handshake, to
/// deliver its first whole request (headers and body); and how long any
/// request's body may take once its handler reads it. The apiserver sends
/// each request at once, so 10 s only ever cuts a stalled or trickling
/// (slowloris) client. A connection that has been answered once is never
/// cut by this: the apiserver keeps its HTTP/2 connection and reuses it,
/// and frames that need no answer (WINDOW_UPDATE) must not look like a
/// stalled request, or a cut could fail an admission call.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the request body before any handler does: a declared length
/// over [`MAX_BODY`] is refused at once with 413, without reading a byte
/// of it; an undeclared (chunked) one at the first byte past the limit;
/// a body still incomplete after [`REQUEST_READ_TIMEOUT`] gets 408.
pub(super) async fn bounded_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > MAX_BODY as u64) {
        return too_large(&format!("{len} bytes"));
    }
    let (parts, body) = req.into_parts();
    let read = async {
        let mut stream = body.into_data_stream();
        // Sized once from the declared length (already checked above).
        let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|e| Some(e.to_string()))?;
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(None::<String>);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    match tokio::time::timeout(REQUEST_READ_TIMEOUT, read).await {
        Ok(Ok(buf)) => {
            let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(buf));
            next.run(req).await
        }
        Ok(Err(None)) => too_large("over the limit"),
        Ok(Err(Some(e))) => (
            StatusCode::BAD_REQUEST,
            format!("hawser: reading the request body failed: {e}"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "hawser: the request body was not complete within {}s",
                REQUEST_READ_TIMEOUT.as_secs()
            ),
        )
            .into_response(),
    }
}

fn too_large(size: &str) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("hawser: the request body is {size}; at most {MAX_BODY} bytes are accepted"),
    )
        .into_response()
}

/// An acceptor (around the TLS one) that cuts a connection whose request
/// is not read within `limit`; see [`REQUEST_READ_TIMEOUT`]. Hyper's own
/// `header_read_timeout` needs a hyper timer, which hawser cannot name
/// without depending on hyper-util directly; this bounds the body too.
#[derive(Debug, Clone)]
pub struct RequestDeadline<A> {
    inner: A,
    limit: Duration,
}

impl<A> RequestDeadline<A> {
    pub fn new(inner: A, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

impl<A, I, S> axum_server::accept::Accept<I, S> for RequestDeadline<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = DeadlineStream<A::Stream>;
    type Service = A::Service;
    type Future = futures::future::BoxFuture<'static, std::io::Result<(Self::Stream, A::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let (accepted, limit) = (self.inner.accept(stream, service), self.limit);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((DeadlineStream::new(stream, limit), service))
        })
    }
}

/// A connection on which reading fails with `TimedOut` when nothing has
/// been written on it `limit` after it started: its first request was
/// not read in time. The first write (a response, or HTTP/2's SETTINGS
/// once the client preface is in) disarms it for good.
pub struct DeadlineStream<S> {
    inner: S,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl<S> DeadlineStream<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            armed: true,
        }
    }

    /// A response is being written: the request has been read.
    fn disarm_on(
        &mut self,
        written: std::task::Poll<std::io::Result<usize>>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        if matches!(written, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.armed = false;
        }
        written
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for DeadlineStream<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::{future::Future as _, task::Poll};
        let this = self.get_mut();
        if this.armed && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request not read in time",
            )));
        }
        std::pin::Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for DeadlineStream<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = std::pin::Pin::new(&mut this.inner).poll_write(cx, data);
        this.disarm_on(written)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.disarm_on(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
