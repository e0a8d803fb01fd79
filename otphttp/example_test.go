package otphttp_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otphttp"
	"github.com/otpkit/otp/otptest"
)

// The JSON API on a mux, keyed here by a header for brevity; a real
// service keys by its session or signed-in user.
func ExampleNew() {
	store := memstore.New(memstore.Config{})
	defer store.Close()
	v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{}), store, otp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	h, err := otphttp.New(v, otphttp.Config{
		Key: func(r *http.Request) (string, error) { return r.Header.Get("X-Session"), nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/verify/", http.StripPrefix("/api/verify", h))

	r := httptest.NewRequest(http.MethodPost, "/api/verify/start", strings.NewReader(`{"phone":"+44 7400 123456"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Session", "session-1")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	body, _ := io.ReadAll(rec.Body)
	fmt.Println(rec.Code, strings.Contains(string(body), `"display":"+44 7400 123456"`))
	// Output: 200 true
}

// A handler of your own answers the Verifier's errors as the package's
// handlers do.
func ExampleWriteError() {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/verify", nil)
	r.Header.Set("Accept-Language", "de-DE, en;q=0.5")
	otphttp.WriteError(rec, r, nil, &otp.RateLimitError{Scope: otp.ScopeNumber, RetryAfter: 90 * time.Second})
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	fmt.Print(rec.Body.String())
	// Output:
	// 429 90
	// {"error":"rate_limited","message":"Zu viele Anfragen. Versuchen Sie es in 90 Sekunden erneut.","retry_after":90}
}

// Describe gives the parts for an answer of another shape: a page, a
// gRPC status.
func ExampleDescribe() {
	f := otphttp.Describe(&otp.NumberTypeError{Type: otp.NumberFixedLine, Channel: otp.SMS})
	c := otphttp.DefaultCatalog()
	fmt.Println(f.Status, f.Class)
	fmt.Println(c.Text(language.English, f))
	fmt.Println(c.Text(language.French, f))
	// Output:
	// 422 refused_destination
	// That looks like a landline. Enter a mobile number: the code comes by text message.
	// Ce numéro semble être une ligne fixe. Saisissez un numéro de mobile : le code arrive par SMS.
}

// Behind a load balancer at 10.0.0.0/8 that sets X-Forwarded-For.
func ExampleNewProxies() {
	proxies, err := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: []string{"10.0.0.0/8"}})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/api/verify/start", nil)
	r.RemoteAddr = "10.1.2.3:51000"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 2001:db8:1:2::99")
	fmt.Println(proxies.ClientID(r))
	// Output: 2001:db8:1:2::/64
}

// Messages can be reworded, and languages added.
func ExampleCatalog_Set() {
	c := otphttp.NewCatalog()
	c.Set(language.Italian, otphttp.MsgExpired, "Il codice è scaduto. Richiedine uno nuovo.")
	fmt.Println(c.MatchString("it-CH, en;q=0.3"))
	fmt.Println(c.Text(c.MatchString("it"), otphttp.Describe(otp.ErrExpired)))
	// Output:
	// it
	// Il codice è scaduto. Richiedine uno nuovo.
}
