//! `tcp/` — the sans-IO TCP engine (RFC 9293 with RFC 5681/6582/6298/7323/5961/6528).
//! Never reads the clock and never touches I/O: time is a parameter.
