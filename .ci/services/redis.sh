# Redis for redisstore's tests, sourced by .ci/run: a standalone server and a
# 3-master Redis Cluster on free loopback ports, data under a temporary
# directory, nothing saved to disk. Exports OTP_REDIS_URL and
# OTP_REDIS_CLUSTER; a variable already set is kept and its server not started.

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  step "installing redis-server"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server \
    || die "apt-get install redis-server failed"
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
    || die "redis-server or redis-cli is still missing after installing redis-server"
fi
redis-server --version

REDIS_DIR=$(mktemp -d) || die "mktemp failed"
CLEANUP+=("rm -rf '$REDIS_DIR'")

# redis_start PORT [ARGS...] starts a server on 127.0.0.1:PORT, registers
# its shutdown and waits until it answers.
redis_start() {
  local port=$1 dir="$REDIS_DIR/$1"
  shift
  mkdir -p "$dir" || die "mkdir $dir failed"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@" \
    || die "redis-server on port $port failed to start"
  CLEANUP+=("redis-cli -p $port shutdown nosave >/dev/null 2>&1 || { [ -f '$dir/redis.pid' ] && kill \$(cat '$dir/redis.pid'); }")
  local i
  for i in $(seq 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  die "redis-server on port $port is not answering; its log ends: $(tail -n 5 "$dir/redis.log" 2>/dev/null)"
}

if [ -z "${OTP_REDIS_URL:-}" ]; then
  port=$(free_port)
  redis_start "$port"
  export OTP_REDIS_URL="redis://127.0.0.1:$port/0"
fi

if [ -z "${OTP_REDIS_CLUSTER:-}" ]; then
  nodes=()
  for _ in 1 2 3; do
    # Each node is listening before the next port is picked, so free_port
    # cannot pick its port (or its bus port, port + 10000) again.
    port=$(free_port)
    redis_start "$port" --cluster-enabled yes --cluster-config-file "$REDIS_DIR/$port/nodes.conf" \
      --cluster-node-timeout 5000
    nodes+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$REDIS_DIR/cluster-create.log" 2>&1 \
    || die "redis-cli --cluster create failed: $(tail -n 5 "$REDIS_DIR/cluster-create.log")"
  for node in "${nodes[@]}"; do
    ok=
    for _ in $(seq 100); do
      if redis-cli -h "${node%:*}" -p "${node#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then
        ok=1
        break
      fi
      sleep 0.1
    done
    [ -n "$ok" ] || die "Redis Cluster node $node never reported cluster_state:ok"
  done
  OTP_REDIS_CLUSTER=$(IFS=,; echo "${nodes[*]}")
  export OTP_REDIS_CLUSTER
fi
echo "OTP_REDIS_URL=$OTP_REDIS_URL OTP_REDIS_CLUSTER=$OTP_REDIS_CLUSTER"
