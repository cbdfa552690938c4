//! `http/` — sans-IO HTTP/1.1 client: request building, response head parsing, body framing.
