//! support-sidecar: see, inspect and repair containers from beside them. The binary in
//! `main.rs` is only the command line; everything it does lives in these modules.
#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod containers;
pub mod cp;
pub mod enter;
pub mod files;
pub mod init;
pub mod packages;
pub mod processes;
pub mod procfs;
pub mod rootfs;
pub mod rpmdb;
pub mod sockets;
pub mod sys;
