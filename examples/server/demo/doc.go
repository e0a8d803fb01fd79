// Package demo is the web front of the examples/server demo: a JSON API for
// single-page apps and a server-rendered page that works without
// JavaScript, both driving one [otp.Verifier].
//
// It lives in its own package, rather than in examples/server's main, so that
// examples/loadtest can run the very same handler in process. The wiring
// from environment variables (which provider, which store) stays in main.
//
// # Routes
//
//	GET  /                    the page: number form, code form or success
//	POST /start, /check, /resend, /cancel   the page's forms (303 back to /)
//	POST /api/verify/start    {"phone":"+447911123456"} → 200 state
//	POST /api/verify/check    {"code":"123456"}         → 200 {"verified":true,...}
//	POST /api/verify/resend   (no body)                 → 200 state
//	POST /api/verify/cancel   (no body)                 → 200 {"state":"none"}
//	GET  /api/verify/status                             → 200 state
//	GET  /health              checks the otp.Store      → 200 or 503
//	GET  /dev/last-code?phone=+447911123456  only with Config.DevCodes, loopback only
//
// Errors answer a 4xx or 5xx status with {"error":class,"message":text}, where
// class is [otp.ErrorClass] or one of "bad_request", "too_large",
// "unsupported_media_type", "forbidden"; wrong codes add "attempts_left",
// limits add "retry_after" (seconds) and a Retry-After header.
//
// # Security
//
// The verification key is random and lives in an HttpOnly, SameSite=Lax
// session cookie (Secure when Config.SecureCookies is set), managed by
// github.com/alexedwards/scs/v2; no vendor ID reaches the browser. Unsafe
// requests from other origins are refused by [http.CrossOriginProtection]
// unless listed in Config.AllowedOrigins, which also get CORS headers.
// Every answer carries a strict Content-Security-Policy, frame denial,
// nosniff and no-referrer; request bodies are capped; sends and checks are
// charged to the client's IP through [otp.WithClient].
package demo
