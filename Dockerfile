# hawser's container image: the one `hawser` binary on distroless, run as
# user 65532 (the chart's runAsUser) with a read-only root filesystem.
#
#   docker build -t <registry>/hawser:<tag> .
#
# Not built by CI: the machines this project is developed on have no
# container runtime and no access to container registries (docs/install.md).
# What CI does prove is the binary this builds, with the same `--locked`
# dependency set, and the chart's Deployment running it.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# Only the binary; the tests need the test bed (hack/test.sh).
RUN cargo build --release --locked --bin hawser \
 && install -m 0755 target/release/hawser /hawser

# cc: glibc and libgcc, which the binary links dynamically; CA certificates
# for the AWS and Kubernetes endpoints. Nothing else: no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /hawser /usr/local/bin/hawser
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/hawser"]
CMD ["run"]
