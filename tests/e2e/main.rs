//! End-to-end tests: one test binary, the real processes.

mod restart;
mod signin;
mod management;
