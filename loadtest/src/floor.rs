//! The floor: the least an HTTP/1.1 server on hyper can do per request.
//! With an answer size it answers that many bytes instead of "no bid", to
//! measure what a bid response's size costs on its own (the yardstick
//! itself stays the 204).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn answer(request: Request<hyper::body::Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    // Read the whole body, as a bidder must, then answer "no bid".
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// Reads the whole body, then answers 200 with `body` (JSON).
async fn answer_sized(
    request: Request<hyper::body::Incoming>,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A JSON object of exactly `bytes` bytes (at least 8).
fn body_of(bytes: usize) -> Bytes {
    let padding = bytes.saturating_sub(8);
    Bytes::from(format!("{{\"p\":\"{}\"}}", "x".repeat(padding)).into_bytes())
}

pub async fn serve(listen: SocketAddr, answer_bytes: Option<usize>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!("floor listening on {}", listener.local_addr()?);
    serve_on(listener, answer_bytes).await
}

/// Serves on a bound listener (tests bind port 0).
pub async fn serve_on(listener: TcpListener, answer_bytes: Option<usize>) -> anyhow::Result<()> {
    let sized = answer_bytes.map(body_of);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let sized = sized.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new();
            let io = TokioIo::new(stream);
            let _ = match sized {
                None => connection.serve_connection(io, service_fn(answer)).await,
                Some(body) => {
                    let service = service_fn(move |request| answer_sized(request, body.clone()));
                    connection.serve_connection(io, service).await
                }
            };
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_answer_is_json_of_the_size_asked() {
        for bytes in [8, 11, 1900] {
            let body = super::body_of(bytes);
            assert_eq!(body.len(), bytes);
            assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        }
    }
}
