# hawser's container image, for those who build with Docker:
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t <registry>/hawser:<tag> .
#
# The same image as `bash hack/image.sh` (docs/install.md): the same files,
# laid out by the same script (hack/image/rootfs.sh), from scratch, with
# the same user, entrypoint, cmd, ports and labels. CI builds and runs
# hack/image.sh's image, not this file: the machines this project is built
# on have no container engine and pull no base images.

FROM docker.io/library/rust:1.95-bookworm AS build
ARG CARGO_ABOUT_VERSION=0.9.3
RUN cargo install --locked --features cli cargo-about --version "$CARGO_ABOUT_VERSION"
WORKDIR /src
COPY Cargo.toml Cargo.lock LICENSE ./
COPY src ./src
COPY benches ./benches
COPY hack/image ./hack/image
# Only the binary (the release profile: lto, one codegen unit, stripped);
# the tests need the test bed (hack/test.sh).
RUN cargo build --release --locked --bin hawser \
 && cargo about generate --locked --fail -c hack/image/about.toml \
      -o THIRD-PARTY-LICENSES.txt hack/image/about.hbs \
 && bash hack/image/rootfs.sh target/release/hawser THIRD-PARTY-LICENSES.txt /rootfs

FROM scratch
ARG REVISION=unknown
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 8443/tcp 8080/tcp
LABEL org.opencontainers.image.title=hawser \
      org.opencontainers.image.source=https://github.com/hawser/hawser \
      org.opencontainers.image.version=0.1.0 \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.licenses=Apache-2.0
ENTRYPOINT ["/usr/local/bin/hawser"]
CMD ["run"]
