//! End-to-end tests: one test binary, the real processes.

mod drills;
mod management;
mod restart;
mod signin;
