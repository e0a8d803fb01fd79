// Command server is a runnable demo of phone verification with package otp:
// a JSON API for single-page apps and a page that works without JavaScript.
//
//	go run ./examples/server
//
// starts it on :8080 with no setup: codes are "sent" by a fake provider that
// prints them to the log, and kept in memory. Environment variables switch
// to a real provider or to Redis (which also holds the sessions, so that
// several instances serve one flow); see "Try it" in the README. The web part is
// package demo; this file reads the environment, builds the parts, serves
// and shuts down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/examples/server/demo"
	"github.com/otpkit/otp/infobip"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otphttp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
	"github.com/otpkit/otp/redisstore"
	"github.com/otpkit/otp/vonage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Getenv, log); err != nil {
		log.Error("server: " + err.Error())
		os.Exit(1)
	}
}

// run serves the demo until ctx ends.
func run(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
	cfg, err := readConfig(getenv)
	if err != nil {
		return err
	}
	a, err := newApp(cfg, getenv, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	log.Info("server: listening", "url", scheme+"://"+ln.Addr().String(), "provider", cfg.provider, "store", a.storeName)
	return serve(ctx, ln, a.handler, cfg, log)
}

// config is what the environment says. Secrets are not kept here: only
// buildProvider reads them, and only to hand them to the provider.
type config struct {
	addr           string
	provider       string // dev, vonage, vonage-legacy, infobip or twilio
	redisURL       string
	postgresURL    string
	allowedOrigins []string
	trustedProxies []string // CIDRs whose forwarding header is read
	proxyHeader    string   // X-Forwarded-For (default) or Forwarded
	devCodes       bool     // serve /dev/last-code to loopback clients
	limitsOff      bool     // no abuse limits: for load tests of the dev provider
	tlsCert        string
	tlsKey         string
}

// readConfig reads and checks everything but the provider's credentials,
// which buildProvider checks. All problems are reported at once.
func readConfig(getenv func(string) string) (config, error) {
	cfg := config{
		addr:        or(getenv("ADDR"), ":8080"),
		provider:    or(getenv("OTP_PROVIDER"), "dev"),
		redisURL:    getenv("OTP_REDIS_URL"),
		postgresURL: getenv("OTP_POSTGRES_URL"),
		tlsCert:     getenv("TLS_CERT_FILE"),
		tlsKey:      getenv("TLS_KEY_FILE"),

		proxyHeader: getenv("OTP_PROXY_HEADER"),
	}
	var errs []error
	switch cfg.provider {
	case "dev", "vonage", "vonage-legacy", "infobip", "twilio":
	default:
		errs = append(errs, fmt.Errorf("OTP_PROVIDER=%q is unknown: use dev, vonage, vonage-legacy, infobip or twilio", cfg.provider))
	}
	if cfg.redisURL != "" && cfg.postgresURL != "" {
		errs = append(errs, errors.New("set OTP_REDIS_URL or OTP_POSTGRES_URL, not both"))
	}
	for o := range strings.SplitSeq(getenv("OTP_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.allowedOrigins = append(cfg.allowedOrigins, o)
		}
	}
	for p := range strings.SplitSeq(getenv("OTP_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.trustedProxies = append(cfg.trustedProxies, p)
		}
	}
	if _, err := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: cfg.trustedProxies, Header: cfg.proxyHeader}); err != nil {
		errs = append(errs, fmt.Errorf("OTP_TRUSTED_PROXIES or OTP_PROXY_HEADER: %w", err))
	}
	if v := getenv("OTP_DEV_CODES"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("OTP_DEV_CODES=%q: want 1 or 0", v))
		}
		cfg.devCodes = on
	}
	// OTP_ROUTES, when set, replaces OTP_PROVIDER: only the dev provider
	// alone may show codes or run without limits.
	devOnly := cfg.provider == "dev" && strings.TrimSpace(getenv("OTP_ROUTES")) == ""
	if cfg.devCodes && !devOnly {
		errs = append(errs, errors.New("OTP_DEV_CODES=1 works only with OTP_PROVIDER=dev and no OTP_ROUTES"))
	}
	if cfg.devCodes && !loopbackAddr(cfg.addr) {
		errs = append(errs, fmt.Errorf("OTP_DEV_CODES=1 needs ADDR on loopback, such as 127.0.0.1:8080 (ADDR is %q)", cfg.addr))
	}
	switch v := getenv("OTP_LIMITS"); v {
	case "", "on":
	case "off":
		cfg.limitsOff = true
		if !devOnly {
			errs = append(errs, errors.New("OTP_LIMITS=off works only with OTP_PROVIDER=dev and no OTP_ROUTES: limits guard real money"))
		}
	default:
		errs = append(errs, fmt.Errorf("OTP_LIMITS=%q: want on or off", v))
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither"))
	}
	return cfg, errors.Join(errs...)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// buildProvider makes the provider OTP_PROVIDER names, after checking that
// its variables are all set. Each backend is one case; credentials go from
// the environment straight into the provider's config.
func buildProvider(cfg config, getenv func(string) string, log *slog.Logger) (otp.Provider, error) {
	switch cfg.provider {
	case "dev":
		return otptest.NewProvider(otptest.ProviderConfig{
			Name: "dev",
			OnSend: func(s otptest.Send) {
				// The dev provider's whole point: the person at the terminal
				// reads the code here. Real providers never see or log codes.
				log.Info("dev provider: code sent", "to", otp.MaskPhone(s.To), "code", s.Code)
			},
		}), nil
	case "vonage":
		if err := need(getenv, cfg.provider, "VONAGE_BRAND"); err != nil {
			return nil, err
		}
		jwt := need(getenv, cfg.provider, "VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY_PATH")
		basic := need(getenv, cfg.provider, "VONAGE_API_KEY", "VONAGE_API_SECRET")
		if jwt != nil && basic != nil {
			return nil, fmt.Errorf("%w (or VONAGE_API_KEY and VONAGE_API_SECRET)", jwt)
		}
		vcfg := vonage.V2Config{Brand: getenv("VONAGE_BRAND"), BaseURL: getenv("VONAGE_BASE_URL")}
		if jwt == nil {
			key, err := os.ReadFile(getenv("VONAGE_PRIVATE_KEY_PATH"))
			if err != nil {
				return nil, errors.New("OTP_PROVIDER=vonage: cannot read VONAGE_PRIVATE_KEY_PATH")
			}
			vcfg.ApplicationID, vcfg.PrivateKey = getenv("VONAGE_APPLICATION_ID"), key
		} else {
			vcfg.APIKey, vcfg.APISecret = getenv("VONAGE_API_KEY"), getenv("VONAGE_API_SECRET")
		}
		p, err := vonage.NewV2(vcfg)
		if err != nil {
			return nil, fmt.Errorf("OTP_PROVIDER=vonage: %w", err)
		}
		return p, nil
	case "vonage-legacy":
		if err := need(getenv, cfg.provider, "VONAGE_API_KEY", "VONAGE_API_SECRET", "VONAGE_BRAND"); err != nil {
			return nil, err
		}
		p, err := vonage.NewLegacy(vonage.LegacyConfig{APIKey: getenv("VONAGE_API_KEY"), APISecret: getenv("VONAGE_API_SECRET"),
			Brand: getenv("VONAGE_BRAND"), BaseURL: getenv("VONAGE_BASE_URL")})
		if err != nil {
			return nil, fmt.Errorf("OTP_PROVIDER=vonage-legacy: %w", err)
		}
		return p, nil
	case "infobip":
		if err := need(getenv, cfg.provider, "INFOBIP_BASE_URL", "INFOBIP_API_KEY", "INFOBIP_APPLICATION_ID", "INFOBIP_SMS_MESSAGE_ID"); err != nil {
			return nil, err
		}
		p, err := infobip.New(infobip.Config{
			BaseURL:       getenv("INFOBIP_BASE_URL"),
			APIKey:        getenv("INFOBIP_API_KEY"),
			ApplicationID: getenv("INFOBIP_APPLICATION_ID"),
			SMSMessageID:  getenv("INFOBIP_SMS_MESSAGE_ID"),
		})
		if err != nil {
			return nil, fmt.Errorf("OTP_PROVIDER=infobip: %w", err)
		}
		return p, nil
	case "twilio":
		return buildTwilio(getenv)
	}
	return nil, fmt.Errorf("OTP_PROVIDER=%q is unknown", cfg.provider)
}

// need reports the variables among names that are empty. It names them,
// never their values.
func need(getenv func(string) string, provider string, names ...string) error {
	var missing []string
	for _, n := range names {
		if strings.TrimSpace(getenv(n)) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("OTP_PROVIDER=%s needs %s", provider, strings.Join(missing, " and "))
}

// stores is where the demo keeps state: pending verifications and limits
// (the otp.Store) and sessions (nil: the demo's in-process default).
type stores struct {
	otp      otp.Store
	sessions scs.Store
	name     string
	close    func() error
}

// buildStores makes the stores: Redis for both when OTP_REDIS_URL is set,
// so that several instances serve one flow; memory otherwise.
func buildStores(cfg config) (stores, error) {
	switch {
	case cfg.redisURL != "":
		return redisStores(cfg.redisURL)
	case cfg.postgresURL != "":
		return postgresStores(cfg.postgresURL)
	}
	s := memstore.New(memstore.Config{})
	return stores{otp: s, name: "memory", close: s.Close}, nil
}

// redisSessionPrefix is where the demo's sessions live in Redis.
const redisSessionPrefix = "otp-demo:session:"

// redisStores connects to the Redis at url and checks that it answers, so
// that a wrong URL fails at start. Errors never hold the URL, which may
// carry a password.
func redisStores(url string) (stores, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return stores{}, errors.New("OTP_REDIS_URL is not a redis:// or rediss:// URL")
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return stores{}, fmt.Errorf("OTP_REDIS_URL: Redis at %s does not answer", opts.Addr)
	}
	store, err := redisstore.New(client, redisstore.Config{})
	if err != nil {
		client.Close()
		return stores{}, err
	}
	return stores{otp: store, sessions: goredisstore.NewWithPrefix(client, redisSessionPrefix), name: "redis",
		close: client.Close}, nil
}

// postgresStores connects to the PostgreSQL at url, migrates pgstore's
// schema (idempotent, and safe from every instance starting at once) and
// the sessions' table, so that a wrong URL fails at start. Errors never
// hold the URL, which may carry a password.
func postgresStores(url string) (stores, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return stores{}, errors.New("OTP_POSTGRES_URL is not a PostgreSQL URL")
	}
	if err := pgstore.Migrate(ctx, pool, pgstore.Config{}); err != nil {
		pool.Close()
		return stores{}, fmt.Errorf("OTP_POSTGRES_URL: %w", err)
	}
	if _, err := pool.Exec(ctx, sessionsTable); err != nil {
		pool.Close()
		return stores{}, errors.New("OTP_POSTGRES_URL: cannot create the sessions table")
	}
	store, err := pgstore.New(pool, pgstore.Config{})
	if err != nil {
		pool.Close()
		return stores{}, err
	}
	// No cleanup goroutine of pgxstore's (its StopCleanup races with its
	// start): pgstore's cleaner could not delete sessions anyway, so one
	// of the demo's own does, stopped by close.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _ = pool.Exec(ctx, "DELETE FROM sessions WHERE expiry < now()")
				cancel()
			}
		}
	}()
	return stores{otp: store, sessions: pgxstore.NewWithCleanupInterval(pool, 0), name: "postgres", close: func() error {
		close(stop)
		<-done
		store.Close()
		pool.Close()
		return nil
	}}, nil
}

// sessionsTable is the table scs's pgxstore keeps sessions in.
const sessionsTable = `CREATE TABLE IF NOT EXISTS sessions (
	token TEXT PRIMARY KEY,
	data BYTEA NOT NULL,
	expiry TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry);`

// app is the demo's parts, wired.
type app struct {
	handler   http.Handler
	verifier  *otp.Verifier
	dev       *otptest.Provider // the dev provider, nil for a real one
	storeName string
	closers   []func() error
}

func newApp(cfg config, getenv func(string) string, log *slog.Logger) (*app, error) {
	provider, err := pickProvider(cfg, getenv, log)
	if err != nil {
		return nil, err
	}
	st, err := buildStores(cfg)
	if err != nil {
		return nil, err
	}
	a := &app{storeName: st.name, closers: []func() error{st.close}}
	if c, ok := provider.(interface{ Close() error }); ok {
		a.closers = append(a.closers, c.Close) // the Vonage adapters' idle connections
	}
	vcfg := otp.Config{Logger: log}
	if cfg.limitsOff {
		vcfg.Limits = otp.NoLimits
	}
	v, err := otp.NewVerifier(provider, st.otp, vcfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.verifier = v
	proxies, _ := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: cfg.trustedProxies, Header: cfg.proxyHeader}) // checked by readConfig
	dcfg := demo.Config{AllowedOrigins: cfg.allowedOrigins, SecureCookies: cfg.tlsCert != "", Logger: log,
		Sessions: st.sessions, ClientID: proxies.ClientID}
	if p, ok := provider.(*otptest.Provider); ok {
		a.dev = p
		if cfg.devCodes {
			dcfg.DevCodes = p.LastCode
		}
	}
	srv, err := demo.New(v, dcfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.handler = srv
	return a, nil
}

// Close releases the parts that hold resources.
func (a *app) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Server timeouts: a slow client cannot hold a connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 10 * time.Second
)

// serve serves h on ln until ctx ends, then lets requests in flight finish
// for up to shutdownTimeout.
func serve(ctx context.Context, ln net.Listener, h http.Handler, cfg config, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("server: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
