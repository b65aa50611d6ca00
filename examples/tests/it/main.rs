//! Integration tests of the example programs: each is started as a real process and
//! exercised over loopback.

mod reactor_echo;
