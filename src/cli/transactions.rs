//! `sidecar rpm-install` and `sidecar rpm-erase`: the API's package transactions from the
//! command line (the same code: `packages::transaction` through the `enter` helper). JSON with
//! `--json`, a one-line summary otherwise; exit 0 only when the transaction did what was
//! asked, 1 when it failed or there was nothing to erase, 125 for an error of the sidecar.
//! SIGTERM and SIGINT never cut a transaction: they stay blocked while it runs, and the
//! command says so and exits after it.

use argh::FromArgs;
use serde_json::Value;

use super::{find, print_json, CliResult};
use crate::api::{transact, ApiError};
use crate::packages::{transaction, upload};

/// install or update an RPM package in a running container, with its own rpm
#[derive(FromArgs)]
#[argh(subcommand, name = "rpm-install")]
pub struct RpmInstall {
    /// container: ID, unique prefix, hostname, pid:N or host
    #[argh(positional)]
    pub container: String,
    /// the package file on this machine
    #[argh(positional)]
    pub file: String,
    /// only check that it would install (rpm --test)
    #[argh(switch)]
    pub test: bool,
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
    /// enter through /proc/<pid>/ns/* one at a time (kernels before 5.8)
    #[argh(switch)]
    pub setns_files: bool,
}

/// erase an installed RPM package from a running container, with its own rpm
#[derive(FromArgs)]
#[argh(subcommand, name = "rpm-erase")]
pub struct RpmErase {
    /// container: ID, unique prefix, hostname, pid:N or host
    #[argh(positional)]
    pub container: String,
    /// a package name, name-version-release.arch, or a capability one package provides
    #[argh(positional)]
    pub name: String,
    /// only check that it could be erased (rpm --test)
    #[argh(switch)]
    pub test: bool,
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
    /// enter through /proc/<pid>/ns/* one at a time (kernels before 5.8)
    #[argh(switch)]
    pub setns_files: bool,
}

pub fn rpm_install(a: RpmInstall) -> CliResult {
    let mut file = crate::rootfs::open_host_file(std::path::Path::new(&a.file))
        .map_err(|e| format!("{}: {e}", a.file))?;
    let size = file
        .metadata()
        .map_err(|e| format!("{}: {e}", a.file))?
        .len();
    // A private copy in a memfd, as the server makes: the container's rpm gets that, never
    // a descriptor of the operator's file (which it could reopen for writing).
    let pkg = upload::receive(&mut file, size).map_err(|e| format!("{}: {e}", a.file))?;
    run(&a.container, a.setns_files, a.json, |ctx| {
        ctx.install(&pkg, a.test)
    })
}

pub fn rpm_erase(a: RpmErase) -> CliResult {
    run(&a.container, a.setns_files, a.json, |ctx| {
        ctx.erase(&a.name, a.test)
    })
}

fn run(
    name: &str,
    setns_files: bool,
    json: bool,
    act: impl FnOnce(
        &transaction::Context<ApiError>,
    ) -> Result<transaction::Outcome, transaction::TxError<ApiError>>,
) -> CliResult {
    let (all, i) = find(name)?;
    let out = transact(&all[i], setns_files, true, |ctx| Ok(act(ctx)?)).map_err(|e| e.message)?;
    // A SIGTERM or SIGINT that came meanwhile waited for the transaction: say so.
    if let Some((sig, _)) = crate::sys::wait_signal(&[libc::SIGTERM, libc::SIGINT], 0) {
        let name = if sig == libc::SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        eprintln!("sidecar: {name} arrived during the transaction, which was not interrupted; exiting after it");
    }
    if json {
        print_json(&out.reply);
    } else {
        println!("{}", summary(&out.reply));
        if let Some(o) = out.reply["output"].as_str() {
            eprintln!("{o}");
        }
    }
    Ok(if out.ok { 0 } else { 1 })
}

/// One line for people: `erased ca-certificates-mozilla-2.34-lp151.2.3.1.noarch`, or the
/// failure and each problem in rpm's words.
fn summary(reply: &Value) -> String {
    let status = reply["status"].as_str().unwrap_or("?");
    let pkg = &reply["package"];
    let nevra = match pkg["name"].as_str() {
        Some(n) => transaction::format_nevra(
            n,
            pkg["epoch"].as_u64().map(|e| e as u32),
            pkg["version"].as_str().unwrap_or(""),
            pkg["release"].as_str().unwrap_or(""),
            pkg["arch"].as_str(),
        ),
        None => String::new(),
    };
    let test = if reply["test"] == true {
        " (test: nothing was changed)"
    } else {
        ""
    };
    let mut line = format!("{status} {nevra}{test}").trim_end().to_string();
    for p in reply["problems"].as_array().into_iter().flatten() {
        line.push_str(&format!("\n  {}", p[0].as_str().unwrap_or("")));
    }
    line
}
