// Package testenv gives tests the services they need on any machine: a
// Redis, a Redis Cluster, a Chromium. Each function returns the service
// named by its environment variable when that is set; otherwise it starts
// a throwaway one from the binaries on PATH, for the calling test only,
// and stops it when the test ends. When neither is possible the test
// skips with one line saying what to install, or fails when CI is set, so
// that CI never passes on skipped tests.
//
//	url := testenv.Redis(t)          // OTP_REDIS_URL, or redis-server on PATH
//	seeds := testenv.RedisCluster(t) // OTP_REDIS_CLUSTER, or redis-server and redis-cli on PATH
//	path := testenv.Chromium(t)      // OTP_CHROMIUM, /usr/bin/chromium, or chromium on PATH
//	url := testenv.Postgres(t)       // OTP_POSTGRES_URL
//
// A started server listens on a free loopback port, keeps its files in the
// test's temporary directory and saves nothing to disk.
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment variables that name services already running.
const (
	RedisURLEnv     = "OTP_REDIS_URL"     // redis://127.0.0.1:6379/0
	RedisClusterEnv = "OTP_REDIS_CLUSTER" // comma-separated seeds: 127.0.0.1:7000,127.0.0.1:7001
	ChromiumEnv     = "OTP_CHROMIUM"      // path of a Chromium binary
	PostgresURLEnv  = "OTP_POSTGRES_URL"  // postgres://user@127.0.0.1:5432/db
)

// Missing skips t with why, or fails it when CI is set.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("testenv: CI is set and " + why)
	}
	t.Skip("testenv: skipped: " + why)
}

// Redis returns the URL of a Redis server for t: $OTP_REDIS_URL if set,
// else a throwaway redis-server started for t. Without either it skips
// (fails when CI is set).
func Redis(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(RedisURLEnv); url != "" {
		return url
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "no Redis: install redis-server (apt-get install redis-server) or set "+RedisURLEnv)
	}
	addr := startRedis(t, bin)
	return "redis://" + addr + "/0"
}

// Postgres returns the URL of a PostgreSQL database for t:
// $OTP_POSTGRES_URL. Without it it skips (fails when CI is set): a
// cluster needs initdb run as an unprivileged user, which
// .ci/services/postgres.sh does.
func Postgres(t testing.TB) string {
	t.Helper()
	url := os.Getenv(PostgresURLEnv)
	if url == "" {
		Missing(t, "no PostgreSQL: set "+PostgresURLEnv+" (.ci/services/postgres.sh starts a throwaway one)")
	}
	return url
}

// RedisCluster returns the seed addresses of a Redis Cluster for t:
// $OTP_REDIS_CLUSTER if set, else a throwaway cluster of three masters
// started for t with redis-server and redis-cli. Without either it skips
// (fails when CI is set).
func RedisCluster(t testing.TB) []string {
	t.Helper()
	if seeds := os.Getenv(RedisClusterEnv); seeds != "" {
		return strings.Split(seeds, ",")
	}
	server, err := exec.LookPath("redis-server")
	cli, cerr := exec.LookPath("redis-cli")
	if err != nil || cerr != nil {
		Missing(t, "no Redis Cluster: install redis-server and redis-cli (apt-get install redis-server) or set "+RedisClusterEnv)
	}
	var nodes []string
	for range 3 {
		nodes = append(nodes, startRedis(t, server, "--cluster-enabled", "yes", "--cluster-node-timeout", "5000"))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, nodes...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v: %s", err, lastLines(string(out), 5))
	}
	for _, n := range nodes {
		waitFor(t, "cluster_state:ok on "+n, func() bool {
			info, err := command(n, "CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return nodes
}

// Chromium returns the path of a Chromium for t: $OTP_CHROMIUM if set,
// else /usr/bin/chromium, else chromium, chromium-browser or
// google-chrome on PATH. Without one it skips (fails when CI is set).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			Missing(t, fmt.Sprintf("%s=%s is not an executable", ChromiumEnv, p))
		}
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	Missing(t, "no Chromium: install it (apt-get install chromium) or set "+ChromiumEnv)
	return ""
}

// startRedis starts redis-server on a free loopback port with args, stops
// it when t ends, and returns its address once it answers PING.
func startRedis(t testing.TB, bin string, args ...string) string {
	t.Helper()
	var lastErr error
	for range 5 { // a free port can be taken between picking and binding
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: no free port: %v", err)
		}
		dir, err := os.MkdirTemp(t.TempDir(), "redis-")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--dir", dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log")}, args...)...)
		setParentDeathSignal(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatalf("testenv: starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitPing(addr, exited); err != nil {
			_ = cmd.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			lastErr = fmt.Errorf("%w; its log ends: %s", err, lastLines(string(log), 3))
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return addr
	}
	t.Fatalf("testenv: redis-server did not start: %v", lastErr)
	return ""
}

// freePort returns a loopback TCP port that nothing listens on, whose
// cluster-bus twin (port+10000) is free too.
func freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("every port tried was taken")
}

// waitPing waits until the server at addr answers PING, it exits, or 10 s
// pass.
func waitPing(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		if reply, err := command(addr, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("redis-server did not answer PING within 10 s")
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("testenv: no %s within 15 s", what)
}

// command sends one command to the Redis at addr and returns its simple
// or bulk string reply.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	req := "*" + strconv.Itoa(len(args)) + "\r\n"
	for _, a := range args {
		req += "$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n"
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("reply %q", line)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
