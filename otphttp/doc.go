// Package otphttp puts an [otp.Verifier] on the web: net/http handlers for
// a JSON API, and the pieces a service with handlers of its own needs to
// answer the Verifier's errors the same way.
//
// # Handlers
//
// [New] returns a [Handler] whose methods Start, Check, Resend, Cancel
// and Status serve
//
//	POST start   {"phone":"+447400123456"}  → 200 {"state":"pending","to":"+447400123456","display":"+44 7400 123456",...}
//	POST check   {"code":"123456"}          → 200 {"state":"verified","verified":true,...}
//	POST resend                             → 200 pending state
//	POST cancel                             → 200 {"state":"none"}
//	GET  status                             → 200 state: none, pending or expired
//
// and ServeHTTP routes to them by the path's last element:
//
//	mux.Handle("/api/verify/", http.StripPrefix("/api/verify", h))
//
// [Config].Key names the verification of a request (a session ID, a user
// ID); the hooks OnStart, OnVerified and OnCancel keep your session in
// step. Bodies are capped (Config.MaxBodyBytes), must be one JSON object
// with no unknown fields, and Content-Type application/json; a wrong
// method answers 405 with Allow.
//
// # Errors
//
// [Describe] tells what any error the Verifier returns means over HTTP: a
// [Failure] with the status, the class ([otp.ErrorClass]), the message
// for people, attempts left, the Retry-After wait and whether the abuse
// defence asks for a challenge. [WriteError] answers it as an
// [ErrorBody]:
//
//	{"error":"wrong_code","message":"That code is not right. 4 attempts left.","attempts_left":4}
//
// # Step-up challenges
//
// When the abuse defence asks for one ([otp.ErrChallengeRequired]), Start
// answers 403 with "challenge": true. Show the person a CAPTCHA and send
// Start again with its answer as "challenge_token". The token counts only
// if [Config].ChallengePassed, your function, verifies it with your
// CAPTCHA's service: no request can claim on its own to have passed.
//
// # Client IDs
//
// Per-client limits charge [ClientID] of the request: the connection's
// address, IPv6 grouped by /64 ([GroupAddr]). Behind proxies, [NewProxies]
// reads X-Forwarded-For or Forwarded only from the proxies you trust, and
// takes the right-most address that is not one of them.
//
// # Messages
//
// A [Catalog] holds the messages in English, German, French and Spanish
// and picks one by Accept-Language (golang.org/x/text/language). Each
// refusal has its own words: a typo, a landline, a premium-rate or other
// refused number type, a refused country, a blocked destination, the
// challenge. [Catalog.Set] overrides a message or adds a language.
package otphttp
