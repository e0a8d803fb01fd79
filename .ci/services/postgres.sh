# PostgreSQL for pgstore's tests, sourced by .ci/run: a throwaway cluster
# made with initdb in a temporary directory, run by an unprivileged user
# (postgres, when this runs as root) on a free loopback port, with a database
# for the tests. Exports OTP_POSTGRES_URL; a variable already set is kept and
# no server is started. Installs Debian's postgresql package when initdb is
# missing. pgstore's outage test finds initdb the same way and starts a
# cluster of its own.

# pg_bindir prints the directory of initdb: on PATH, or the newest of
# Debian's /usr/lib/postgresql/<version>/bin.
pg_bindir() {
  local initdb
  if initdb=$(command -v initdb 2>/dev/null); then
    dirname "$(readlink -f "$initdb")"
    return 0
  fi
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -t/ -k5,5n | tail -n 1)
  [ -n "$initdb" ] && dirname "$initdb"
}

# as_pg runs a command as the cluster's owner: postgres when this runs as
# root (PostgreSQL refuses to run as root), else the user running this.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${OTP_POSTGRES_URL:-}" ]; then
  if ! PG_BIN=$(pg_bindir); then
    step "installing postgresql"
    command -v apt-get >/dev/null || die "initdb is missing and apt-get is not available"
    # The binaries only: no cluster of the package's own on port 5432.
    as_root mkdir -p /etc/postgresql-common || die "mkdir /etc/postgresql-common failed"
    echo 'create_main_cluster = false' | as_root tee -a /etc/postgresql-common/createcluster.conf >/dev/null \
      || die "configuring postgresql-common failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
      || die "apt-get install postgresql failed"
    PG_BIN=$(pg_bindir) || die "initdb is still missing after installing postgresql"
  fi
  "$PG_BIN/postgres" --version
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run PostgreSQL as"
  fi

  PG_DIR=$(mktemp -d) || die "mktemp failed"
  CLEANUP+=("rm -rf '$PG_DIR'")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR" || die "chown $PG_DIR failed"; fi
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --no-sync --encoding=UTF8 --locale=C \
    >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$PG_DIR/initdb.log")"
  PG_PORT=$(free_port)
  # Loopback only, the socket in the cluster's directory, no fsync: the
  # data is thrown away.
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start \
    >/dev/null || die "PostgreSQL on port $PG_PORT failed to start: $(tail -n 5 "$PG_DIR/postgres.log" 2>/dev/null)"
  CLEANUP+=("as_pg '$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate -w stop >/dev/null")
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres otp_test || die "createdb on port $PG_PORT failed"
  export OTP_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/otp_test?sslmode=disable"
fi
echo "OTP_POSTGRES_URL=$OTP_POSTGRES_URL"
