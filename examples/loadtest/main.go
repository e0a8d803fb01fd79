// Command loadtest drives the examples/server demo's JSON API with C
// concurrent virtual users for a bounded time and prints, as JSON, the
// flows per second and the p50/p90/p99 latency of start and check. Each
// virtual user is a browser with its own cookie jar that loops: POST
// /api/verify/start, read the code, POST /api/verify/check.
//
// In the same run it measures the ceiling: its own flow rate against a
// trivial handler that answers start and check at once, with no Verifier.
// The two alternate in -rounds slices of -d, so that both see the same
// background load. Their ratio is the figure to watch; absolute rates
// depend on the machine.
//
//	go run ./examples/loadtest -c 1,16,64 -d 5s
//
// runs the demo in process (memstore, otptest provider, limits off; codes
// read straight from the provider). Against a demo started separately:
//
//	OTP_DEV_CODES=1 OTP_LIMITS=off ADDR=127.0.0.1:8080 go run ./examples/server
//	go run ./examples/loadtest -url http://127.0.0.1:8080
//
// codes are then read from its GET /dev/last-code. Only loopback URLs are
// accepted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/examples/server/demo"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/infobip/infobiptest"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// Bounds on what one run may ask for.
const (
	maxDuration    = 5 * time.Minute
	maxConcurrency = 1024
	requestTimeout = 10 * time.Second
	maxAnswer      = 64 << 10
)

// Report is the tool's output.
type Report struct {
	Target     string `json:"target"`
	Duration   string `json:"duration"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Runs       []Run  `json:"runs"`
}

// Run is one concurrency level: the demo, the ceiling and their ratio.
type Run struct {
	Concurrency int     `json:"concurrency"`
	Demo        Result  `json:"demo"`
	Ceiling     *Result `json:"ceiling,omitempty"`
	// Ratio is Demo.FlowsPerSec over Ceiling.FlowsPerSec.
	Ratio float64 `json:"ratio,omitempty"`
	// CPURatio is Ceiling.CPUPerFlow over Demo.CPUPerFlow: what Ratio
	// would be if the process had the cores to itself. On a shared
	// machine it varies less than Ratio. In-process demo only: against
	// -url the demo's CPU is another process's.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
}

// Result is what one measurement saw.
type Result struct {
	Flows       int     `json:"flows"`  // completed start+check flows that verified
	Errors      int     `json:"errors"` // flows that failed anywhere
	FlowsPerSec float64 `json:"flows_per_s"`
	// CPUPerFlow is the CPU time, user and system, the whole process spent
	// per flow, in microseconds: load tool, server and whatever runs in
	// process with it (against -url, not the demo). 0 where the platform
	// does not say.
	CPUPerFlow float64     `json:"cpu_us_per_flow,omitempty"`
	StartMS    Percentiles `json:"start_ms"`
	CheckMS    Percentiles `json:"check_ms"`
	FirstError string      `json:"first_error,omitempty"`
}

// Percentiles of a latency, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// target is a server to drive and how to read the codes it sends.
type target struct {
	base string
	code func(ctx context.Context, c *http.Client, phone string) (string, error)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rawURL := fs.String("url", "", "base URL of a demo started with OTP_DEV_CODES=1 OTP_LIMITS=off (loopback only); empty runs the demo in process")
	levels := fs.String("c", "1,16,64", "comma-separated concurrency levels (virtual users)")
	d := fs.Duration("d", 3*time.Second, "duration of each measurement (at most 5m)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	ceiling := fs.Bool("ceiling", true, "also measure the ceiling: a trivial handler, in the same run")
	rounds := fs.Int("rounds", 5, "alternate demo and ceiling this many times within -d, so that both see the same background load")
	provider := fs.String("provider", "dev", "in-process demo's provider: dev (otptest), infobip or vonage (each against its fake vendor server on loopback)")
	store := fs.String("store", "memory", "in-process demo's store: memory, or redis (at OTP_REDIS_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *d <= 0 || *d > maxDuration {
		return fmt.Errorf("-d %v: want more than 0 and at most %v", *d, maxDuration)
	}
	if *rounds < 1 || *rounds > 100 {
		return fmt.Errorf("-rounds %d: want 1 to 100", *rounds)
	}
	var cs []int
	for f := range strings.SplitSeq(*levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > maxConcurrency {
			return fmt.Errorf("-c %q: want numbers from 1 to %d", *levels, maxConcurrency)
		}
		cs = append(cs, c)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep := Report{Duration: d.String(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var demoTarget target
	if *rawURL == "" {
		t, stop, err := inProcessDemo(*provider, *store)
		if err != nil {
			return err
		}
		defer stop()
		demoTarget, rep.Target = t, fmt.Sprintf("in-process demo (provider %s, store %s, limits off)", *provider, *store)
	} else {
		base, err := loopbackURL(*rawURL)
		if err != nil {
			return err
		}
		demoTarget, rep.Target = target{base: base, code: devCode(base)}, base
	}
	var ceil target
	if *ceiling {
		base, stop, err := listen(http.HandlerFunc(trivial))
		if err != nil {
			return err
		}
		defer stop()
		// The ceiling reads codes the way the demo run does, so that both
		// do the same client work.
		ceil = target{base: base, code: constantCode}
		if *rawURL != "" {
			ceil.code = devCode(base)
		}
	}

	for _, c := range cs {
		r := Run{Concurrency: c}
		var demoS, ceilS samples
		slice := *d / time.Duration(*rounds)
		for range *rounds {
			if *ceiling {
				ceilS.add(measure(ctx, ceil, c, slice))
			}
			demoS.add(measure(ctx, demoTarget, c, slice))
		}
		r.Demo = demoS.result()
		if *ceiling {
			res := ceilS.result()
			r.Ceiling = &res
		}
		if r.Ceiling != nil && r.Ceiling.FlowsPerSec > 0 {
			r.Ratio = round(r.Demo.FlowsPerSec/r.Ceiling.FlowsPerSec, 3)
		}
		if r.Ceiling != nil && r.Demo.CPUPerFlow > 0 && *rawURL == "" {
			r.CPURatio = round(r.Ceiling.CPUPerFlow/r.Demo.CPUPerFlow, 3)
		}
		rep.Runs = append(rep.Runs, r)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// loopbackURL checks that raw is an http URL of a loopback host.
func loopbackURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("-url %q: only loopback hosts are allowed", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// inProcessDemo serves the demo handler on loopback with the named
// provider and store, limits off so that the load is not turned away.
func inProcessDemo(provider, store string) (target, func(), error) {
	var stops stack
	fail := func(err error) (target, func(), error) { stops.run(); return target{}, nil, err }
	prov, lastCode, err := buildProvider(provider, &stops)
	if err != nil {
		return fail(err)
	}
	st, err := buildStore(store, &stops)
	if err != nil {
		return fail(err)
	}
	v, err := otp.NewVerifier(prov, st, otp.Config{Limits: otp.NoLimits})
	if err != nil {
		return fail(err)
	}
	h, err := demo.New(v, demo.Config{})
	if err != nil {
		return fail(err)
	}
	base, stop, err := listen(h)
	if err != nil {
		return fail(err)
	}
	stops.push(stop)
	code := func(_ context.Context, _ *http.Client, phone string) (string, error) {
		c, ok := lastCode(phone)
		if !ok {
			return "", errors.New("no code sent to " + otp.MaskPhone(phone))
		}
		return c, nil
	}
	return target{base: base, code: code}, stops.run, nil
}

// stack holds cleanups, run last first.
type stack []func()

func (s *stack) push(f func()) { *s = append(*s, f) }

func (s *stack) run() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
	*s = nil
}

// buildProvider makes the named provider and a way to read the code a
// person would receive; a real adapter talks to its fake vendor server.
func buildProvider(name string, stops *stack) (otp.Provider, func(phone string) (string, bool), error) {
	switch name {
	case "dev":
		p := otptest.NewProvider(otptest.ProviderConfig{})
		return p, p.LastCode, nil
	case "infobip":
		srv := infobiptest.NewServer(infobiptest.Config{})
		stops.push(srv.Close)
		app := srv.AddApplication("loadtest", infobiptest.AppConfig{
			PinAttempts: 10, VerifyPinLimit: "1000000/1s",
			SendPinPerApplicationLimit: "1000000000/1d", SendPinPerPhoneNumberLimit: "1000000/1d",
		})
		msg := srv.AddMessage(app, infobiptest.Message{Text: "Your code is {{pin}}", PinLength: 6})
		p, err := infobip.New(infobip.Config{BaseURL: srv.URL, APIKey: "test-api-key", ApplicationID: app, SMSMessageID: msg})
		return p, srv.LastCode, err
	case "vonage":
		srv := vonagetest.NewServer(vonagetest.Config{})
		stops.push(srv.Close)
		p, err := vonage.NewV2(vonage.V2Config{APIKey: "test-key", APISecret: "test-secret", Brand: "Loadtest", BaseURL: srv.URL})
		if err != nil {
			return nil, nil, err
		}
		stops.push(func() { p.Close() })
		return p, srv.LastCode, nil
	}
	return nil, nil, fmt.Errorf("-provider %q: want dev, infobip or vonage", name)
}

// buildStore makes the named store.
func buildStore(name string, stops *stack) (otp.Store, error) {
	switch name {
	case "memory":
		s := memstore.New(memstore.Config{})
		stops.push(func() { s.Close() })
		return s, nil
	case "redis":
		url := os.Getenv("OTP_REDIS_URL")
		if url == "" {
			return nil, errors.New("-store redis needs OTP_REDIS_URL")
		}
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, errors.New("OTP_REDIS_URL is not a redis:// URL")
		}
		opts.PoolSize = 128 // -c 64 and more should wait on the server, not the pool
		client := redis.NewClient(opts)
		stops.push(func() { client.Close() })
		// A prefix of its own per run: the store's keys never meet another's.
		return redisstore.New(client, redisstore.Config{Prefix: fmt.Sprintf("otp-loadtest-%d:", time.Now().UnixNano())})
	}
	return nil, fmt.Errorf("-store %q: want memory or redis", name)
}

// listen serves h on a loopback port until the returned func is called.
func listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

// trivial answers start, check and the code hook at once: the ceiling.
func trivial(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxAnswer))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/verify/start":
		_, _ = io.WriteString(w, `{"state":"pending","verified":false}`)
	case "/api/verify/check":
		_, _ = io.WriteString(w, `{"state":"verified","verified":true}`)
	case "/dev/last-code":
		_, _ = io.WriteString(w, `{"code":"123456"}`)
	default:
		http.NotFound(w, r)
	}
}

func constantCode(context.Context, *http.Client, string) (string, error) { return "123456", nil }

// devCode reads codes from the demo's GET /dev/last-code.
func devCode(base string) func(ctx context.Context, c *http.Client, phone string) (string, error) {
	return func(ctx context.Context, c *http.Client, phone string) (string, error) {
		var out struct {
			Code string `json:"code"`
		}
		err := call(ctx, c, http.MethodGet, base+"/dev/last-code?phone="+url.QueryEscape(phone), "", &out)
		return out.Code, err
	}
}

// call sends one request and decodes a 200 JSON answer into out.
func call(ctx context.Context, c *http.Client, method, u, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, strings.SplitN(u, "?", 2)[0], res.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// samples are the raw figures of one or more measurements.
type samples struct {
	start, check []time.Duration
	errors       int
	firstErr     error
	elapsed      time.Duration
	cpu          time.Duration // process CPU time, user and system
}

func (s *samples) add(o samples) {
	s.start, s.check = append(s.start, o.start...), append(s.check, o.check...)
	s.errors += o.errors
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
	s.elapsed += o.elapsed
	s.cpu += o.cpu
}

func (s samples) result() Result {
	res := Result{Flows: len(s.start), Errors: s.errors}
	if s.firstErr != nil {
		res.FirstError = s.firstErr.Error()
	}
	if s.elapsed > 0 {
		res.FlowsPerSec = round(float64(res.Flows)/s.elapsed.Seconds(), 1)
	}
	if res.Flows > 0 {
		res.CPUPerFlow = round(float64(s.cpu)/float64(time.Microsecond)/float64(res.Flows), 1)
	}
	res.StartMS, res.CheckMS = percentiles(s.start), percentiles(s.check)
	return res
}

// phoneSeq numbers the flows of a run.
var phoneSeq atomic.Uint64

// measure runs c virtual users against t for d.
func measure(ctx context.Context, t target, c int, d time.Duration) samples {
	transport := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	perVU := make([]samples, c)
	began, cpu0 := time.Now(), processCPU()
	var wg sync.WaitGroup
	for i := range c {
		wg.Go(func() {
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Transport: transport, Jar: jar, Timeout: requestTimeout}
			r := &perVU[i]
			for ctx.Err() == nil {
				// A number no earlier flow of this run used: a vendor refuses
				// a second verification to a number while one is pending,
				// and a flow cut off by a deadline leaves one pending.
				phone := fmt.Sprintf("+447400%06d", phoneSeq.Add(1)%1_000_000)
				s, k, err := flow(ctx, t, client, phone)
				if ctx.Err() != nil {
					break // cut off by the deadline: neither a flow nor an error
				}
				if err != nil {
					r.errors++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				r.start, r.check = append(r.start, s), append(r.check, k)
			}
		})
	}
	wg.Wait()
	var all samples
	for _, r := range perVU {
		all.add(r)
	}
	all.elapsed, all.cpu = time.Since(began), processCPU()-cpu0
	return all
}

// flow runs one start, code read and check, and times start and check.
func flow(ctx context.Context, t target, c *http.Client, phone string) (start, check time.Duration, err error) {
	var st struct {
		State string `json:"state"`
	}
	t0 := time.Now()
	if err := call(ctx, c, http.MethodPost, t.base+"/api/verify/start", `{"phone":"`+phone+`"}`, &st); err != nil {
		return 0, 0, err
	}
	start = time.Since(t0)
	if st.State != "pending" {
		return 0, 0, fmt.Errorf("start answered state %q", st.State)
	}
	code, err := t.code(ctx, c, phone)
	if err != nil {
		return 0, 0, err
	}
	var ok struct {
		Verified bool `json:"verified"`
	}
	t1 := time.Now()
	if err := call(ctx, c, http.MethodPost, t.base+"/api/verify/check", `{"code":"`+code+`"}`, &ok); err != nil {
		return 0, 0, err
	}
	check = time.Since(t1)
	if !ok.Verified {
		return 0, 0, errors.New("check answered verified false")
	}
	return start, check, nil
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := min(len(ds)-1, int(q*float64(len(ds))))
		return round(float64(ds[i])/float64(time.Millisecond), 3)
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99)}
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}
