//! `http/` — sans-IO HTTP/1.1: the client (request building, response head parsing, body
//! framing) and the server's request side (`server_request`).
//!
//! Never touches a socket, a file or the clock: the engine feeds it TCP stream bytes and
//! writes the body chunks it hands back.
//!
//! | file | job |
//! |---|---|
//! | `auth` | Basic authentication: credentials, challenges, `Authorization` |
//! | `date` | HTTP dates (Last-Modified, If-Modified-Since) |
//! | `url` | the user's `http://` or `https://` URL and redirect resolution → [`Target`] |
//! | `request` | the request bytes ([`Request::encode`]) |
//! | `response` | the response head ([`parse_head`] → [`ResponseHead`], [`ContentRange`]) |
//! | `proxy` | which proxy a URL goes through (`http_proxy`, `no_proxy`), `CONNECT` |
//! | `framing` | where the body ends (RFC 9112 §6.3) → [`BodyFraming`] |
//! | `chunked` | the chunked coding, decoded from any split of the stream |
//! | `status` | what a final status means for the download → [`Outcome`] |
//! | `exchange` | one exchange fed by stream offset, in or out of order → [`Exchange`] |
//! | `error` | [`HttpError`] and its wget exit code |
//! | `server_request` | the server side: request heads read from a stream ([`server_request::RequestReader`]) |

pub mod auth;
pub mod chunked;
pub mod date;
pub mod error;
pub mod exchange;
pub mod framing;
pub mod proxy;
mod ranges;
pub mod request;
pub mod response;
pub mod server_request;
mod staging;
pub mod status;
pub mod url;

pub use chunked::ChunkedDecoder;
pub use error::HttpError;
pub use exchange::{BodyChunk, Completion, Exchange};
pub use framing::BodyFraming;
pub use request::{Header, Method, Request};
pub use response::{ContentRange, ResponseHead, parse_head};
pub use status::{BodyPlan, Outcome};
pub use url::Target;
