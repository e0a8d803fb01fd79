package otp_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// Every log line and event of every flow is captured; no code and no
// unmasked number may appear in any of them.
func TestLogsAndEventsNeverLeak(t *testing.T) {
	var (
		mu     sync.Mutex
		logs   bytes.Buffer
		events []string
	)
	handler := slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})
	clock := otptest.NewClock(time.Time{})
	p := otptest.NewProvider(otptest.ProviderConfig{Clock: clock, BurnAfter: 4})
	store := memstore.New(memstore.Config{Clock: clock})
	defer store.Close()
	v, err := otp.NewVerifier(p, store, otp.Config{
		CodeLength: 10, // long random codes cannot appear by chance
		Logger:     slog.New(handler),
		Clock:      clock,
		Limits:     otp.Limits{PerNumber: otp.Limit{N: 3, Per: time.Hour}, UnverifiedPerRange: otp.NoLimit},
		OnEvent: func(e otp.Event) {
			e.Duration = 0
			mu.Lock()
			events = append(events, fmt.Sprintf("%+v", e))
			mu.Unlock()
		},
	})
	require.NoError(t, err)

	numbers := []string{"+447400123456", "+447400123459", "+12015550123", "+4915123456789"}
	var guesses []string
	guess := func() string {
		g := fmt.Sprintf("%010d", time.Now().UnixNano()%1e10)
		guesses = append(guesses, g)
		return g
	}
	c := context.Background()
	for i, n := range numbers {
		key := fmt.Sprint("key-", i)
		_, err := v.Start(c, key, n, otp.WithClient("203.0.113.7"))
		require.NoError(t, err)
		code, _ := p.LastCode(n)
		_, _ = v.Check(c, key, guess()) // wrong code
		_, _ = v.Check(c, key, "12ab")  // malformed
		clock.Advance(31 * time.Second)
		_, _ = v.Resend(c, key) // resend
		_, _ = v.Resend(c, key) // too soon
		switch i {
		case 0:
			_, err = v.Check(c, key, code) // success
			require.NoError(t, err)
		case 1:
			for range 5 {
				_, _ = v.Check(c, key, guess()) // burn
			}
		case 2:
			require.NoError(t, v.Cancel(c, key))
		case 3:
			clock.Advance(10 * time.Minute)
			_, _ = v.Check(c, key, code) // expired
		}
		for range 4 { // the per-number limit
			_, _ = v.Start(c, fmt.Sprint("again-", i), n)
		}
	}
	p.FailNext(otp.OpStart, otptest.Fault{})
	_, _ = v.Start(c, "fail", "+447400123499")
	_, _ = v.Start(c, "bad", "+44 7400 12345x")

	mu.Lock()
	defer mu.Unlock()
	all := logs.String() + strings.Join(events, "\n")
	require.NotEmpty(t, events)
	require.Contains(t, logs.String(), `"to":"+44********56"`, "the log is really captured")
	for _, s := range p.Sends() {
		assert.NotContains(t, all, s.Code, "a code leaked")
	}
	for _, g := range guesses {
		assert.NotContains(t, all, g, "a guessed code leaked")
	}
	for _, n := range append(numbers, "+447400123499") {
		assert.NotContains(t, all, n, "an unmasked number leaked")
		assert.NotContains(t, all, n[3:], "an unmasked national number leaked")
	}
	for _, k := range []string{"key-0", "again-1"} {
		assert.NotContains(t, all, k, "a key (maybe a session ID) leaked")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
