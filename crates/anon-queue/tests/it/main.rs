//! Integration tests of anon-queue, one module per area.

mod admit;
mod chan;
mod ioq;
mod ring;
