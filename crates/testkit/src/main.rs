//! `mock-upstream --port P --name N`: the test upstream as a process, for
//! scripted tests (the Python SDK test) and manual experiments.

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut port, mut name) = (8000u16, "mock".to_owned());
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(v)) => port = v.parse().expect("--port takes a number"),
            ("--name", Some(v)) => name = v,
            _ => {
                eprintln!("usage: mock-upstream [--port P] [--name N]");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        eprintln!("mock-upstream '{name}' on http://{}/v1", listener.local_addr().expect("address"));
        let _server = rampart_testkit::spawn(listener, &name);
        std::future::pending::<()>().await;
    });
}
