//! Compiles the flagd .proto files with protox (no system protoc) and
//! writes the prost messages and tonic service code into
//! `crates/vexil-flagd-grpc/src/gen/`, one file per package.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let krate = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: vexil-gen-proto <path to crates/vexil-flagd-grpc>")?,
    );
    let proto = krate.join("proto");
    let files = [
        "flagd/sync/v1/sync.proto",
        "flagd/evaluation/v1/evaluation.proto",
        "flagd/evaluation/v2/evaluation.proto",
    ];
    let descriptors = protox::compile(files, [&proto])?;
    let out = krate.join("src/gen");
    std::fs::create_dir_all(&out)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Clients are generic over any gRPC service: tests bring tonic's
        // channel, the server never connects anywhere.
        .build_transport(false)
        .out_dir(&out)
        .compile_fds(descriptors)?;
    Ok(())
}
