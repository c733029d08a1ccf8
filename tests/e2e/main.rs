//! End-to-end tests: one test binary, the real processes.

mod management;
mod restart;
mod signin;
