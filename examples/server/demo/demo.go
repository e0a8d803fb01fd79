package demo

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/otpkit/otp"
)

// Config holds the demo's tunables. Every zero field takes the default
// documented on it.
type Config struct {
	// AllowedOrigins lists the origins ("https://app.example.com") of
	// single-page apps on other origins that may call the JSON API with the
	// session cookie: they get CORS headers and pass the cross-origin check.
	// Default: none, only this server's own pages.
	AllowedOrigins []string
	// SecureCookies marks the session cookie Secure and adds an HSTS header.
	// Set it when the demo is served over TLS. Default false.
	SecureCookies bool
	// DevCodes, if set, serves GET /dev/last-code?phone=... to loopback
	// clients only, answering the last code sent to phone, so that a load
	// tool can complete flows. Give it only a fake provider's LastCode.
	// Default nil: the route does not exist.
	DevCodes func(phone string) (string, bool)
	// Sessions stores session data. Default: in process, at most
	// MaxSessions live sessions. Several instances need a shared scs store.
	Sessions scs.Store
	// MaxSessions caps the default session store; when it is full, new
	// sessions are refused with 503. Default 100,000.
	MaxSessions int
	// CodeLength is the code length the Verifier was configured with, for
	// the page's input field. Default 6.
	CodeLength int
	// Logger receives request failures. Default: discard.
	Logger *slog.Logger
}

// Server is the demo's http.Handler. Create it with [New]. It holds no
// goroutine and needs no closing.
type Server struct {
	v        *otp.Verifier
	cfg      Config
	sessions *scs.SessionManager
	origins  map[string]bool
	log      *slog.Logger
	handler  http.Handler
}

// Body and header caps. A phone number or code fits many times over.
const (
	maxBody       = 4 << 10
	sessionName   = "otp_session"
	healthTimeout = 2 * time.Second
	// healthKey is read from the Store by /health. Session keys are 26
	// base32 characters, so it cannot clash with one.
	healthKey = "health-probe:\x00"
)

// Session keys.
const (
	keyOTP      = "otp_key"  // the Verifier key of this session
	keyPhone    = "phone"    // the number last started, to refill the form
	keyVerified = "verified" // the number this session verified
	keyFlash    = "flash"    // a notice for the next page view
)

//go:embed assets
var assets embed.FS

// New returns the demo handler driving v, configured by cfg.
func New(v *otp.Verifier, cfg Config) (*Server, error) {
	if v == nil {
		return nil, errors.New("demo: New needs a Verifier")
	}
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 6
	}
	if cfg.CodeLength < 4 || cfg.CodeLength > 10 {
		return nil, fmt.Errorf("demo: CodeLength %d is outside 4..10", cfg.CodeLength)
	}
	s := &Server{v: v, cfg: cfg, log: cfg.Logger, origins: map[string]bool{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	csrf := http.NewCrossOriginProtection()
	for _, o := range cfg.AllowedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("demo: allowed origin %q: %w", o, err)
		}
		s.origins[o] = true
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, failure{status: http.StatusForbidden, class: "forbidden",
			message: "This request came from another site and was refused."})
	}))

	sm := scs.New()
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 100_000
	}
	if cfg.Sessions == nil {
		cfg.Sessions = newSessionStore(cfg.MaxSessions)
	}
	sm.Store = cfg.Sessions
	sm.Codec = stringCodec{}
	sm.Lifetime = 2 * time.Hour
	sm.IdleTimeout = 30 * time.Minute
	sm.Cookie.Name = sessionName
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = cfg.SecureCookies
	sm.Cookie.Persist = false // a browser session is enough for a code
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.log.LogAttrs(r.Context(), slog.LevelError, "demo: session store", slog.String("error", err.Error()))
		s.fail(w, r, failure{status: http.StatusServiceUnavailable, class: "store_unavailable",
			message: "Sessions are unavailable. Try again in a minute."})
	}
	s.sessions = sm

	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("POST /start", s.pageStart)
	mux.HandleFunc("POST /check", s.pageCheck)
	mux.HandleFunc("POST /resend", s.pageResend)
	mux.HandleFunc("POST /cancel", s.pageCancel)
	mux.HandleFunc("POST /api/verify/start", s.apiStart)
	mux.HandleFunc("POST /api/verify/check", s.apiCheck)
	mux.HandleFunc("POST /api/verify/resend", s.apiResend)
	mux.HandleFunc("POST /api/verify/cancel", s.apiCancel)
	mux.HandleFunc("GET /api/verify/status", s.apiStatus)
	mux.HandleFunc("GET /health", s.health)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	if cfg.DevCodes != nil {
		mux.HandleFunc("GET /dev/last-code", s.devLastCode)
	}
	s.handler = s.headers(s.cors(csrf.Handler(sm.LoadAndSave(mux))))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// csp allows this origin's script and stylesheet only: no inline code, no
// frames, forms posting only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers every answer carries.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.cfg.SecureCookies {
			h.Set("Strict-Transport-Security", "max-age=63072000")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// cors answers the JSON API's preflights and adds CORS headers for the
// configured origins only; other origins get no CORS headers at all, so
// browsers keep their answers from scripts.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := s.origins[origin]
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				s.fail(w, r, failure{status: http.StatusForbidden, class: "forbidden", message: "Origin not allowed."})
				return
			}
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// health answers 200 when the Verifier's Store answers.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	_, err := s.v.Status(ctx, healthKey)
	if err != nil && !errors.Is(err, otp.ErrNotFound) && !errors.Is(err, otp.ErrExpired) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "demo: health check failed", slog.String("error", err.Error()))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// devLastCode serves the fake provider's last code to loopback clients.
func (s *Server) devLastCode(w http.ResponseWriter, r *http.Request) {
	if !isLoopback(r.RemoteAddr) {
		s.fail(w, r, failure{status: http.StatusForbidden, class: "forbidden", message: "Loopback clients only."})
		return
	}
	code, ok := s.cfg.DevCodes(r.URL.Query().Get("phone"))
	if !ok {
		s.fail(w, r, failure{status: http.StatusNotFound, class: "not_found", message: "No code was sent to that number."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"code": code})
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientID is what the per-client limits are charged to: the peer's IP.
// The demo trusts no forwarding header; behind a proxy, derive it from the
// header your proxy sets, and only from that proxy.
func clientID(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// key returns the session's Verifier key, "" if it has none.
func (s *Server) key(ctx context.Context) string { return s.sessions.GetString(ctx, keyOTP) }

// newKey returns a fresh Verifier key: 128 random bits.
func newKey() string { return rand.Text() }
