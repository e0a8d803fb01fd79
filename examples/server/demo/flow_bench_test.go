package demo_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/examples/server/demo"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

// BenchmarkFlow runs the load tool's flow (start, read the code, check)
// through the handler with no network, to count the demo's own CPU and
// allocations per flow. "ceiling" is a handler that answers at once, in
// the same harness: compare the two.
func BenchmarkFlow(b *testing.B) {
	prov := otptest.NewProvider(otptest.ProviderConfig{})
	ms := memstore.New(memstore.Config{})
	b.Cleanup(func() { _ = ms.Close() })
	v, err := otp.NewVerifier(prov, ms, otp.Config{Limits: otp.NoLimits})
	if err != nil {
		b.Fatal(err)
	}
	h, err := demo.New(v, demo.Config{})
	if err != nil {
		b.Fatal(err)
	}
	trivial := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"state":"pending","verified":false}`)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
		code func(phone string) (string, bool)
	}{
		{"ceiling", trivial, func(string) (string, bool) { return "123456", true }},
		{"demo", h, prov.LastCode},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var cookie *http.Cookie
			do := func(path, body string) {
				r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				if cookie != nil {
					r.AddCookie(cookie)
				}
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body)
				}
				if cs := w.Result().Cookies(); len(cs) > 0 {
					cookie = cs[0]
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				phone := fmt.Sprintf("+447400%06d", i%1_000_000)
				do("/api/verify/start", `{"phone":"`+phone+`"}`)
				code, _ := bc.code(phone)
				do("/api/verify/check", `{"code":"`+code+`"}`)
			}
		})
	}
}
