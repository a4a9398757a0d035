# The IdP image: `idp` (release build), the admin portal, the login themes, and the
# PostgreSQL client tools that `idp backup` runs (pg_dump/pg_restore, version >= the server's).
# Build: docker build -t aimpact/idp:<version> .
# Runs as an unprivileged user with a read-only root filesystem (deploy/k8s/deployment.yaml).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The same tools the project's scripts install (wasm target, wasm-bindgen-cli, Trunk).
RUN ./scripts/install-tools.sh \
 && ./scripts/build-admin-ui.sh \
 && CARGO_TARGET_DIR=/src/target cargo build --release --locked -p idp --bin idp

# Debian 13: its PostgreSQL client tools are version 17, the major version of the
# CloudNativePG cluster (deploy/postgres); pg_dump cannot dump a newer server than itself,
# and deploy/k8s/check.py keeps the two in step.
FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client-17 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --gid 0 --home-dir /nonexistent --shell /usr/sbin/nologin idp
COPY --from=build /src/target/release/idp /usr/local/bin/idp
COPY --from=build /src/admin-ui/dist /usr/share/idp/admin-ui
COPY --from=build /src/themes /usr/share/idp/themes
ENV IDP_ADMIN_UI_DIR=/usr/share/idp/admin-ui \
    IDP_THEMES_DIR=/usr/share/idp/themes \
    IDP_DATA_DIR=/tmp/idp \
    IDP_LISTEN=0.0.0.0:8080 \
    IDP_LOG_FORMAT=json
USER 10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/idp"]
CMD ["serve"]
