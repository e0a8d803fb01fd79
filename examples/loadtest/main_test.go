package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp/internal/testenv"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/examples/server/demo"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

func decode(t *testing.T, b []byte) Report {
	t.Helper()
	var rep Report
	require.NoError(t, json.Unmarshal(b, &rep), string(b))
	return rep
}

func sane(t *testing.T, name string, r Result) {
	t.Helper()
	assert.Positive(t, r.Flows, name)
	assert.Zero(t, r.Errors, "%s: %s", name, r.FirstError)
	assert.Positive(t, r.FlowsPerSec, name)
	for _, p := range []Percentiles{r.StartMS, r.CheckMS} {
		assert.Positive(t, p.P50, name)
		assert.LessOrEqual(t, p.P50, p.P90, name)
		assert.LessOrEqual(t, p.P90, p.P99, name)
	}
}

func TestInProcessWithCeiling(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-c", "1,2", "-d", "150ms"}, &out))
	rep := decode(t, out.Bytes())
	assert.Contains(t, rep.Target, "in-process")
	require.Len(t, rep.Runs, 2)
	for i, c := range []int{1, 2} {
		r := rep.Runs[i]
		assert.Equal(t, c, r.Concurrency)
		sane(t, "demo", r.Demo)
		require.NotNil(t, r.Ceiling)
		sane(t, "ceiling", *r.Ceiling)
		assert.InDelta(t, r.Demo.FlowsPerSec/r.Ceiling.FlowsPerSec, r.Ratio, 0.01)
		if processCPU() > 0 {
			assert.Positive(t, r.Demo.CPUPerFlow)
			assert.Positive(t, r.Ceiling.CPUPerFlow)
			assert.InDelta(t, r.Ceiling.CPUPerFlow/r.Demo.CPUPerFlow, r.CPURatio, 0.01)
		}
	}
}

// TestAgainstURL runs the tool against a demo on an httptest server that
// exposes its codes, as `OTP_DEV_CODES=1 OTP_LIMITS=off` does.
func TestAgainstURL(t *testing.T) {
	prov := otptest.NewProvider(otptest.ProviderConfig{})
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(prov, store, otp.Config{Limits: otp.NoLimits})
	require.NoError(t, err)
	h, err := demo.New(v, demo.Config{DevCodes: prov.LastCode})
	require.NoError(t, err)
	ts := httptest.NewServer(h)
	defer ts.Close()

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-url", ts.URL, "-c", "2", "-d", "150ms", "-rounds", "1"}, &out))
	rep := decode(t, out.Bytes())
	assert.Equal(t, ts.URL, rep.Target)
	require.Len(t, rep.Runs, 1)
	sane(t, "demo", rep.Runs[0].Demo)
	sane(t, "ceiling", *rep.Runs[0].Ceiling)
	assert.LessOrEqual(t, prov.Calls(otp.OpStart)-prov.Calls(otp.OpCheck), 2, "only flows cut off by the deadline go unchecked")
	assert.GreaterOrEqual(t, prov.Calls(otp.OpStart), rep.Runs[0].Demo.Flows)
}

func TestErrorsAreCounted(t *testing.T) {
	// A demo whose codes cannot be read: every flow fails at the code.
	prov := otptest.NewProvider(otptest.ProviderConfig{})
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(prov, store, otp.Config{})
	require.NoError(t, err)
	h, err := demo.New(v, demo.Config{})
	require.NoError(t, err)
	ts := httptest.NewServer(h)
	defer ts.Close()
	res := measure(context.Background(), target{base: ts.URL, code: devCode(ts.URL)}, 1, 50*time.Millisecond).result()
	assert.Zero(t, res.Flows)
	assert.Positive(t, res.Errors)
	assert.Contains(t, res.FirstError, "/dev/last-code: 404")
}

func TestRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "http://example.com"},
		{"-url", "http://10.0.0.1:8080"},
		{"-url", "ftp://127.0.0.1"},
		{"-d", "0s"},
		{"-d", "1h"},
		{"-c", "0"},
		{"-c", "1,x"},
		{"-c", "5000"},
		{"-nope"},
		{"-rounds", "0"},
		{"-provider", "twilio"},
		{"-store", "postgres"},
	} {
		var out bytes.Buffer
		assert.Error(t, run(context.Background(), args, &out), args)
		assert.Empty(t, out.String(), args)
	}
}

// TestBackends drives the in-process demo through each real adapter
// against its fake vendor server, and through Redis when there is one.
func TestBackends(t *testing.T) {
	args := [][]string{{"-provider", "infobip"}, {"-provider", "vonage"}, {"-store", "redis"}}
	for _, a := range args {
		t.Run(a[1], func(t *testing.T) {
			if a[1] == "redis" {
				t.Setenv("OTP_REDIS_URL", testenv.Redis(t))
			}
			var out bytes.Buffer
			require.NoError(t, run(context.Background(), append([]string{"-c", "2", "-d", "150ms", "-ceiling=false", "-rounds", "1"}, a...), &out))
			rep := decode(t, out.Bytes())
			assert.Contains(t, rep.Target, a[1])
			sane(t, a[1], rep.Runs[0].Demo)
		})
	}
}
