package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/twilio"
)

// providerNames are the names a route table may use.
var providerNames = []string{"dev", "vonage", "vonage-legacy", "infobip", "twilio"}

// pickProvider builds the demo's provider: a Router over the route table
// OTP_ROUTES when it is set, else the one OTP_PROVIDER names.
//
// OTP_ROUTES is a list of routes separated by ";", each
// "destinations=providers": destinations are ISO 3166 regions (IN, US) or
// calling codes (+44), comma-separated, or "*" for the default route,
// which is required; providers are names from providerNames,
// comma-separated, tried in that order (two or more make an otp.Failover).
// Each provider reads its variables as under OTP_PROVIDER, Twilio its
// TWILIO_* ones. For example:
//
//	OTP_ROUTES="IN=infobip; US,CA=twilio,vonage; *=vonage,infobip"
func pickProvider(cfg config, getenv func(string) string, log *slog.Logger) (otp.Provider, error) {
	spec := strings.TrimSpace(getenv("OTP_ROUTES"))
	if spec == "" {
		return buildProvider(cfg, getenv, log)
	}
	table, err := parseRoutes(spec)
	if err != nil {
		return nil, err
	}
	return buildRoutes(table, cfg, getenv, log)
}

// routeSpec is one route of OTP_ROUTES.
type routeSpec struct {
	text      string // as written, for errors
	def       bool   // the "*" route
	regions   []string
	codes     []string // calling codes without "+"
	providers []string
}

// parseRoutes reads OTP_ROUTES and reports every problem at once. The
// Router checks the regions and calling codes themselves.
func parseRoutes(spec string) ([]routeSpec, error) {
	var routes []routeSpec
	var errs []error
	defaults := 0
	for part := range strings.SplitSeq(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		dests, provs, ok := strings.Cut(part, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("OTP_ROUTES: %q: want destinations=providers, such as US,CA=twilio,vonage", part))
			continue
		}
		r := routeSpec{text: part}
		for d := range strings.SplitSeq(dests, ",") {
			switch d = strings.TrimSpace(d); {
			case d == "*":
				r.def = true
				defaults++
			case strings.HasPrefix(d, "+"):
				r.codes = append(r.codes, d[1:])
			case d != "":
				r.regions = append(r.regions, strings.ToUpper(d))
			}
		}
		if r.def && len(r.regions)+len(r.codes) > 0 {
			errs = append(errs, fmt.Errorf("OTP_ROUTES: %q: the default route * names no destinations besides", part))
		}
		if !r.def && len(r.regions)+len(r.codes) == 0 {
			errs = append(errs, fmt.Errorf("OTP_ROUTES: %q names no destination", part))
		}
		for p := range strings.SplitSeq(provs, ",") {
			if p = strings.TrimSpace(p); p != "" {
				r.providers = append(r.providers, p)
			}
		}
		if len(r.providers) == 0 {
			errs = append(errs, fmt.Errorf("OTP_ROUTES: %q names no provider", part))
		}
		for _, p := range r.providers {
			if !slices.Contains(providerNames, p) {
				errs = append(errs, fmt.Errorf("OTP_ROUTES: %q: provider %q is unknown: use %s", part, p, strings.Join(providerNames, ", ")))
			}
		}
		routes = append(routes, r)
	}
	switch {
	case defaults == 0:
		errs = append(errs, errors.New(`OTP_ROUTES needs a default route, such as "*=vonage"`))
	case defaults > 1:
		errs = append(errs, errors.New("OTP_ROUTES has more than one default route *"))
	}
	return routes, errors.Join(errs...)
}

// routed is the Router and what its providers hold.
type routed struct {
	*otp.Router
	closers []func() error
}

// Close releases the providers' idle connections.
func (r routed) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// buildRoutes makes each provider the table names once, a Failover per
// route of several, and the Router over them.
func buildRoutes(table []routeSpec, cfg config, getenv func(string) string, log *slog.Logger) (otp.Provider, error) {
	built := map[string]otp.Provider{}
	var r routed
	provider := func(name string) (otp.Provider, error) {
		if p, ok := built[name]; ok {
			return p, nil
		}
		one := cfg
		one.provider = name
		p, err := buildProvider(one, getenv, log)
		if err != nil {
			return nil, err
		}
		built[name] = p
		if c, ok := p.(interface{ Close() error }); ok {
			r.closers = append(r.closers, c.Close)
		}
		return p, nil
	}
	var def otp.Provider
	var routes []otp.Route
	for _, rs := range table {
		ps := make([]otp.Provider, 0, len(rs.providers))
		for _, name := range rs.providers {
			p, err := provider(name)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("OTP_ROUTES: %q: %w", rs.text, err)
			}
			ps = append(ps, p)
		}
		p := ps[0]
		if len(ps) > 1 {
			fo, err := otp.NewFailover(otp.FailoverConfig{Logger: log}, ps...)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("OTP_ROUTES: %q: %w", rs.text, err)
			}
			p = fo
		}
		if rs.def {
			def = p
			continue
		}
		routes = append(routes, otp.Route{Regions: rs.regions, CallingCodes: rs.codes, Provider: p})
	}
	router, err := otp.NewRouter(def, routes...)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("OTP_ROUTES: %w", err)
	}
	r.Router = router
	log.Info("server: routing by destination", "routes", len(routes), "providers", len(built))
	return r, nil
}

// buildTwilio makes the Twilio Verify provider from TWILIO_SERVICE_SID and
// TWILIO_API_KEY_SID with TWILIO_API_KEY_SECRET, or TWILIO_ACCOUNT_SID with
// TWILIO_AUTH_TOKEN; TWILIO_BASE_URL overrides the API host (a fake in
// tests). Errors name the variables, never their values.
func buildTwilio(getenv func(string) string) (otp.Provider, error) {
	if err := need(getenv, "twilio", "TWILIO_SERVICE_SID"); err != nil {
		return nil, err
	}
	key := need(getenv, "twilio", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET")
	account := need(getenv, "twilio", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
	if key != nil && account != nil {
		return nil, fmt.Errorf("%w (or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)", key)
	}
	tc := twilio.Config{ServiceSID: getenv("TWILIO_SERVICE_SID"), BaseURL: getenv("TWILIO_BASE_URL")}
	if key == nil {
		tc.APIKeySID, tc.APIKeySecret = getenv("TWILIO_API_KEY_SID"), getenv("TWILIO_API_KEY_SECRET")
	} else {
		tc.AccountSID, tc.AuthToken = getenv("TWILIO_ACCOUNT_SID"), getenv("TWILIO_AUTH_TOKEN")
	}
	p, err := twilio.New(tc)
	if err != nil {
		return nil, fmt.Errorf("OTP_PROVIDER=twilio: %w", err)
	}
	return p, nil
}
