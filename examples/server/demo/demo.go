package demo

import (
	"context"
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
	"github.com/otpkit/otp/otphttp"
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
	// MaxSessions live sessions. Several instances share one store, such
	// as github.com/alexedwards/scs/goredisstore.
	Sessions scs.Store
	// MaxSessions caps the default session store; when it is full, new
	// sessions are refused with 503. Default 100,000.
	MaxSessions int
	// ClientID returns the ID per-client limits charge. Default
	// [otphttp.ClientID], the connection's address; behind a proxy,
	// [otphttp.Proxies.ClientID].
	ClientID func(*http.Request) string
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
	api      *otphttp.Handler
	cat      *otphttp.Catalog
	cfg      Config
	sessions *scs.SessionManager
	origins  map[string]bool
	log      *slog.Logger
	handler  http.Handler
}

const (
	sessionName   = "otp_session"
	healthTimeout = 2 * time.Second
	// healthKey is read from the Store by /health. Session keys are 26
	// base32 characters, so it cannot clash with one.
	healthKey = "health-probe:\x00"
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
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 100_000
	}
	if cfg.Sessions == nil {
		cfg.Sessions = newSessionStore(cfg.MaxSessions)
	}
	s := &Server{v: v, cfg: cfg, log: cfg.Logger, origins: map[string]bool{}, cat: otphttp.DefaultCatalog()}
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
		s.refuse(w, r, http.StatusForbidden, "forbidden", "This request came from another site and was refused.")
	}))

	sm := scs.New()
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
		if wantsJSON(r) {
			otphttp.WriteError(w, r, s.cat, otp.ErrStoreUnavailable)
			return
		}
		s.refuse(w, r, http.StatusServiceUnavailable, "store_unavailable", "Sessions are unavailable. Try again in a minute.")
	}
	s.sessions = sm

	api, err := otphttp.New(v, otphttp.Config{
		Key:             func(r *http.Request) (string, error) { return s.key(r.Context()), nil },
		ClientID:        cfg.ClientID,
		ChallengePassed: s.challengePassed,
		OnStart:         s.started,
		OnVerified:      s.verified,
		OnCancel:        s.canceled,
		Catalog:         s.cat,
		Logger:          s.log,
	})
	if err != nil {
		return nil, err
	}
	s.api = api

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
	mux.Handle("/api/verify/", http.StripPrefix("/api/verify", api))
	mux.HandleFunc("GET /api/verify/status", s.apiStatus)
	mux.HandleFunc("POST /api/challenge", s.apiChallenge)
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
				s.refuse(w, r, http.StatusForbidden, "forbidden", "Origin not allowed.")
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

// refuse answers a request refused before the flow: JSON for the API and
// the tools' routes, a short page for the page's routes.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, class, message string) {
	if wantsJSON(r) {
		writeJSON(w, status, otphttp.ErrorBody{Error: class, Message: message})
		return
	}
	s.render(w, status, pageData{Step: "error", Error: message, CodeLength: s.cfg.CodeLength})
}

func wantsJSON(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/dev/") || p == "/health"
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
		s.refuse(w, r, http.StatusForbidden, "forbidden", "Loopback clients only.")
		return
	}
	code, ok := s.cfg.DevCodes(r.URL.Query().Get("phone"))
	if !ok {
		s.refuse(w, r, http.StatusNotFound, "not_found", "No code was sent to that number.")
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
