package testenv

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
)

func TestRedisStartsAThrowawayServer(t *testing.T) {
	t.Setenv(RedisURLEnv, "")
	url := Redis(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	reply, err := command(addr, "PING")
	if err != nil || reply != "PONG" {
		t.Fatalf("PING %s: %q, %v", url, reply, err)
	}
	t.Setenv(RedisURLEnv, "redis://example:6379/0")
	if got := Redis(t); got != "redis://example:6379/0" {
		t.Fatalf("Redis = %q, want the variable", got)
	}
}

func TestRedisServerStopsWithTheTest(t *testing.T) {
	t.Setenv(RedisURLEnv, "")
	var addr string
	t.Run("inner", func(t *testing.T) {
		addr = strings.TrimSuffix(strings.TrimPrefix(Redis(t), "redis://"), "/0")
	})
	if _, err := command(addr, "PING"); err == nil {
		t.Fatalf("the server at %s still answers after its test ended", addr)
	}
}

func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	t.Setenv(RedisClusterEnv, "")
	nodes := RedisCluster(t)
	if len(nodes) != 3 {
		t.Fatalf("nodes = %v", nodes)
	}
	info, err := command(nodes[0], "CLUSTER", "INFO")
	if err != nil || !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("CLUSTER INFO: %q, %v", info, err)
	}
	t.Setenv(RedisClusterEnv, "a:1,b:2")
	if got := RedisCluster(t); strings.Join(got, ",") != "a:1,b:2" {
		t.Fatalf("RedisCluster = %v", got)
	}
}

// recorder is a testing.TB that records Skip and Fatal and stops the
// goroutine as they do.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = args[0].(string)
	panic(r)
}
func (r *recorder) Fatal(args ...any) {
	r.fatal = args[0].(string)
	panic(r)
}

func run(f func(testing.TB)) *recorder {
	r := &recorder{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { _ = recover() }()
		f(r)
	}()
	wg.Wait()
	return r
}

func TestMissingSkipsOrFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(RedisURLEnv, "")
	t.Setenv(RedisClusterEnv, "")
	t.Setenv(ChromiumEnv, "")
	t.Setenv("CI", "")
	for name, f := range map[string]func(testing.TB){
		"redis":    func(tb testing.TB) { Redis(tb) },
		"cluster":  func(tb testing.TB) { RedisCluster(tb) },
		"chromium": func(tb testing.TB) { Chromium(tb) },
	} {
		if name == "chromium" && lookable("/usr/bin/chromium") {
			continue // found by its absolute path, whatever PATH says
		}
		r := run(f)
		if !strings.HasPrefix(r.skipped, "testenv: skipped: no ") || !strings.Contains(r.skipped, "install") ||
			strings.Contains(r.skipped, "\n") || r.fatal != "" {
			t.Errorf("%s without CI: skipped %q, fatal %q", name, r.skipped, r.fatal)
		}
		t.Setenv("CI", "true")
		r = run(f)
		if !strings.HasPrefix(r.fatal, "testenv: CI is set and no ") || r.skipped != "" {
			t.Errorf("%s with CI: skipped %q, fatal %q", name, r.skipped, r.fatal)
		}
		t.Setenv("CI", "")
	}
	t.Setenv(ChromiumEnv, "/nonexistent/chromium")
	if r := run(func(tb testing.TB) { Chromium(tb) }); !strings.Contains(r.skipped, "not an executable") {
		t.Errorf("a bad %s: skipped %q", ChromiumEnv, r.skipped)
	}
}

func lookable(p string) bool {
	_, err := exec.LookPath(p)
	return err == nil
}
