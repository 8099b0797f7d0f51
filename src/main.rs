//! `sidecar`: the command line. Argument parsing and dispatch only; the work is in the library.
#![deny(unsafe_code)]

use argh::FromArgs;
use sidecar::cli;

/// See, inspect and repair containers from beside them.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Serve(cli::Serve),
    List(cli::List),
    Ps(cli::Ps),
    Kill(cli::Kill),
    Version(cli::Version),
    Rpms(cli::Rpms),
    Sockets(cli::Sockets),
    Cp(cli::Cp),
    Exec(cli::Exec),
    RpmInstall(cli::RpmInstall),
    RpmErase(cli::RpmErase),
}

fn main() {
    // Before any thread exists: signals are read synchronously (see init.rs).
    sidecar::init::block_signals();
    // Descriptors inherited from whoever started us never reach a child (a helper, a program
    // run in a container): they could lead out of it.
    let _ = sidecar::sys::cloexec_from_3();
    // The server's internal helper role: not a command for people, so not in --help.
    if std::env::args().nth(1).as_deref() == Some("enter") {
        sidecar::sys::default_sigpipe();
        std::process::exit(sidecar::enter::helper_main());
    }
    // Arguments are bytes: argh takes strings, so one that is not UTF-8 (a file name such as
    // `caf\xe9.txt`) goes through as a placeholder that `cp` turns back into its bytes. Every
    // error of the sidecar itself, a usage error included, exits 125.
    let strings = cli::args_for_argh(std::env::args_os().collect());
    let cmd = strings
        .first()
        .map(|c| c.rsplit('/').next().unwrap_or(c))
        .unwrap_or("sidecar");
    let rest: Vec<&str> = strings.iter().skip(1).map(String::as_str).collect();
    let args = match Args::from_args(&[cmd], &rest) {
        Ok(args) => args,
        Err(argh::EarlyExit { output, status }) => {
            if status.is_ok() {
                println!("{output}");
                std::process::exit(0);
            }
            eprintln!("{output}\nRun {cmd} --help for more information.");
            std::process::exit(125);
        }
    };
    if !matches!(args.command, Command::Cp(_)) && rest.iter().any(|a| cli::is_placeholder(a)) {
        eprintln!("sidecar: an argument is not UTF-8 (only cp takes such file names)");
        std::process::exit(125);
    }
    if !matches!(args.command, Command::Serve(_)) {
        sidecar::sys::default_sigpipe();
    }
    // Only `serve` (which stops cleanly), `exec` (which forwards them to its program), `cp`
    // (which must not leave half a file) and the package transactions (never cut) read
    // SIGTERM and SIGINT themselves; every other command simply dies of them.
    if !matches!(
        args.command,
        Command::Serve(_)
            | Command::Exec(_)
            | Command::Cp(_)
            | Command::RpmInstall(_)
            | Command::RpmErase(_)
    ) {
        let _ = sidecar::sys::unblock_signals(&sidecar::init::FORWARDED);
    }
    let result = match args.command {
        Command::Serve(a) => cli::serve(a),
        Command::List(a) => cli::list(a),
        Command::Ps(a) => cli::ps(a),
        Command::Kill(a) => cli::kill(a),
        Command::Version(a) => cli::version(a),
        Command::Rpms(a) => cli::rpms(a),
        Command::Sockets(a) => cli::sockets(a),
        Command::Cp(a) => cli::cp(a),
        Command::Exec(a) => cli::exec(a),
        Command::RpmInstall(a) => cli::rpm_install(a),
        Command::RpmErase(a) => cli::rpm_erase(a),
    };
    match result {
        // Flushed and `_exit`: no allocator clean-up for a process that ends (cli::finish).
        Ok(code) => cli::finish(code),
        Err(e) => {
            eprintln!("sidecar: {}", cli::printable(&e.message));
            std::process::exit(e.status);
        }
    }
}

/// See Cargo.toml: musl's allocator churns mmap/munmap on our allocation pattern.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
