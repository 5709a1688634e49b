# The Baton broker (and, with another command, the example worker): docs/deploy.md.
#
#   docker build -t baton .
#   docker run --rm -p 7700:7700 -e DATABASE_URL=postgres://… -e BATON_AUTH=keys baton
#
# No container engine runs where this project is tested, so test/deploy-commands.test.ts reads
# this file and runs its RUN, COPY, ENV, HEALTHCHECK and CMD lines on the host, in order, with the
# same environment. It knows FROM, WORKDIR, ENV, COPY, RUN, USER, EXPOSE, STOPSIGNAL, HEALTHCHECK
# and CMD and fails on any other instruction, and it runs RUN lines in the stage's folder: keep
# their paths relative to WORKDIR.

# Dependencies: only the manifests are copied, so this layer is rebuilt when they change, not when
# the code does.
FROM node:24-slim AS dependencies
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY server/package.json server/
COPY worker-sdk/package.json worker-sdk/
# The root's postinstall (a note for users of an older Node; silent on this one).
COPY scripts/install-note.js scripts/
# --prefer-offline: a build with no npm cache fetches everything as usual; the test of this file
# reuses its machine's cache instead of asking the registry about each package again.
RUN npm ci --omit=dev --prefer-offline --no-audit --no-fund

# The broker: Node 24 runs the TypeScript sources as they are (type stripping, no build step).
FROM node:24-slim
WORKDIR /app
# Listen beyond the container's loopback (a broker on 127.0.0.1 could not be reached through a
# published port). With auth off such a broker refuses to start: set BATON_AUTH=keys
# (docs/security.md), or BATON_INSECURE_ALLOW_OPEN=1 on a network you trust.
ENV NODE_ENV=production BATON_HOST=0.0.0.0 BATON_PORT=7700 BATON_GRPC_PORT=7701
COPY --from=dependencies /app ./
COPY server/src server/src
COPY worker-sdk/src worker-sdk/src
COPY worker-sdk/examples worker-sdk/examples
# The node image's own unprivileged user; the files above stay root's, read-only to it.
USER node
# The main port (gRPC, Connect, gRPC-Web, HTTP/1.1: the dashboard, /metrics, /healthz, /readyz)
# and the native gRPC port.
EXPOSE 7700 7701
# The broker drains on SIGTERM: workers report what they hold, for up to BATON_DRAIN_MS (10 s by
# default). Give the container longer than that before the engine kills it (docker stop -t,
# compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# Liveness: the process answers HTTP. Not /readyz: a database outage makes every broker unready,
# and replacing the containers would not bring the database back (compose.yaml waits on /readyz).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.BATON_PORT || 7700) + '/healthz').then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "server/src/main.ts"]
