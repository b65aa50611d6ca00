//! Integration tests of anon-queue, one module per area.

mod ring;
