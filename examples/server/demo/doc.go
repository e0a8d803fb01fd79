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
//	POST /start, /check, /resend, /cancel   the page's forms: 303 back to /, success or not
//	/api/verify/...           the JSON API of package otphttp: start, check, resend, cancel, status
//	POST /api/challenge       the stand-in challenge's token (a real site's CAPTCHA widget gives one)
//	GET  /health              checks the otp.Store      → 200 or 503
//	GET  /dev/last-code?phone=+447400123456  only with Config.DevCodes, loopback only
//
// The API's answers and errors are otphttp's; requests refused before the
// flow answer {"error":class,"message":text} with class "forbidden" (a
// cross-origin request) or "store_unavailable" (sessions).
//
// # The page
//
// Every form post redirects back to the page (post/redirect/get), so a
// reload never posts again; an error is kept in the session and shown
// once. After each step focus moves to the new step's first field, or its
// heading; notices and errors are live regions; a field in error carries
// aria-invalid and aria-describedby. When Start asks for a challenge the
// page shows an "I am not a robot" box, a stand-in for a CAPTCHA, whose
// token otphttp's Config.ChallengePassed checks.
//
// # Security
//
// The verification key is random and lives in an HttpOnly, SameSite=Lax
// session cookie (Secure when Config.SecureCookies is set), managed by
// github.com/alexedwards/scs/v2 (in Redis with Config.Sessions, so that
// several instances serve one flow); no vendor ID reaches the browser. Unsafe
// requests from other origins are refused by [http.CrossOriginProtection]
// unless listed in Config.AllowedOrigins, which also get CORS headers.
// Every answer carries a strict Content-Security-Policy, frame denial,
// nosniff and no-referrer; request bodies are capped; sends and checks are
// charged to the client's address through [otp.WithClient] (Config.ClientID).
package demo
