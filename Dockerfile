# freellmapi: one static binary on an empty base image, for linux/amd64 and linux/arm64.
#   docker buildx build --platform linux/amd64,linux/arm64 -t freellmapi .
#   docker run -p 3001:3001 -v freellmapi-data:/data freellmapi
# The build stage runs on the target platform (buildx emulates it when the builder's machine differs) and links
# a static musl binary, so the final image needs no libc, no CA bundle (TLS roots are compiled in) and no shell.
#
# From a binary built beforehand instead (no Rust stage, no base image to pull; how CI builds the image):
#   scripts/image-context x86_64-unknown-linux-musl   # copies target/<triple>/release/freellmapi in place
#   podman build --platform linux/amd64 --build-arg BINARY=prebuilt -t freellmapi .
# The prebuilt stage reads target/image/<arch>/ (amd64 or arm64), which that script fills.

# Where the final image's files come from: `source` (built here) or `prebuilt` (from target/image/).
ARG BINARY=source

FROM rust:1-bookworm AS build
ARG TARGETARCH
# musl-tools is not version-pinned: bookworm's point releases replace old versions, so a pin would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
# SQLite (bundled) and ring compile C. The stage runs natively on the target architecture, so Debian's musl-gcc
# wrapper is the right compiler for both targets; without these, cc-rs would look for a cross compiler named
# aarch64-linux-musl-gcc on arm64.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc \
    AR_x86_64_unknown_linux_musl=ar \
    AR_aarch64_unknown_linux_musl=ar
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH' (build with docker buildx for linux/amd64 or linux/arm64)" >&2; \
         exit 1 ;; \
    esac \
    && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY static ./static
# Cargo.toml names the micro-benchmark target, so its source must be present for the manifest to load.
COPY benches ./benches
RUN cargo build --release --locked --bin freellmapi --target "$(cat /rust-target)" \
    && cp "target/$(cat /rust-target)/release/freellmapi" /freellmapi \
    && mkdir -p /rootfs/data /rootfs/tmp \
    && chmod 1777 /rootfs/tmp

# The image's files, built from source above.
FROM scratch AS files-source
COPY --from=build /freellmapi /freellmapi
# /data belongs to the runtime user so a fresh named volume inherits it; /tmp is where SQLite spills temp files.
COPY --from=build --chown=65532:65532 /rootfs/data /data
COPY --from=build /rootfs/tmp /tmp

# The image's files, from a binary built beforehand (scripts/image-context lays out target/image/<arch>/).
FROM scratch AS files-prebuilt
ARG TARGETARCH
COPY target/image/${TARGETARCH}/freellmapi /freellmapi
COPY --chown=65532:65532 target/image/rootfs/data /data
COPY target/image/rootfs/tmp /tmp

# The final image: the chosen files with the runtime settings. files-${BINARY} names a stage above, not an image to
# pull, so there is no tag to pin.
# hadolint ignore=DL3006
FROM files-${BINARY}
USER 65532:65532
ENV HOST=0.0.0.0 \
    PORT=3001 \
    DATABASE_URL=/data/freellmapi.db \
    TMPDIR=/tmp
VOLUME /data
EXPOSE 3001
# The binary checks itself (GET /healthz over loopback); no curl or shell in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/freellmapi", "healthcheck"]
# SIGTERM drains in-flight requests and streams for up to 30 s; give it that with `docker stop -t 35` or
# compose's stop_grace_period (docker-compose.yml), since Docker's default is 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/freellmapi"]
CMD ["serve"]
