//! End-to-end tests: one test binary, the real processes.

mod drills;
mod management;
mod operate;
mod restart;
mod signin;
