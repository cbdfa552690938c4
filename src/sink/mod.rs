//! `sink/` — where body bytes land: the mmapped output file, written at the right offset
//! even out of order, and the streaming sinks (stdout, /dev/null).
