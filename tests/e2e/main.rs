//! End-to-end tests: one test binary, the real processes.

mod at_rest;
mod cluster;
mod console;
mod drills;
mod grants;
mod https;
mod lockout;
mod management;
mod operate;
mod phone;
mod proxies;
mod readme;
mod records;
mod restart;
mod sessions;
mod signin;
mod slow_clients;
mod upgrade;
