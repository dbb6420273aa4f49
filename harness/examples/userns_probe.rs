//! Does hangup's sandbox work for this user on this machine?
//!
//! `cargo run --example userns_probe` enters a user namespace (when not
//! root), creates a case's network namespace on a fresh thread, connects
//! over its loopback and sets a sysctl, then prints `ok` and the privileges
//! it ran with; otherwise it prints why not and how to fix it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::ExitCode;

use hangup::sandbox::{CaseNamespace, SandboxError, enter_user_namespace};

fn main() -> ExitCode {
    // First thing, before any thread exists.
    let privileges = match enter_user_namespace() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let case = std::thread::spawn(|| -> Result<(), SandboxError> {
        let ns = CaseNamespace::create_blocking()?;
        ns.set_sysctl("net.ipv4.tcp_fin_timeout", "3")?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(b"ok").unwrap();
        let mut buf = [0; 2];
        server.read_exact(&mut buf).unwrap();
        Ok(())
    });
    match case.join().expect("the case thread panicked") {
        Ok(()) => {
            println!("ok {privileges:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
