package vendorhttp

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]struct {
		d  time.Duration
		ok bool
	}{
		"":                              {0, false},
		"0":                             {0, true},
		"120":                           {2 * time.Minute, true},
		"-1":                            {0, false},
		"999999999999":                  {24 * time.Hour, true},
		"Sun, 22 Nov 2026 12:01:00 GMT": {time.Minute, true},
		"Sun, 22 Nov 2026 11:00:00 GMT": {0, true},
		"soon":                          {0, false},
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		d, ok := RetryAfter(h, now)
		if d != want.d || ok != want.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", v, d, ok, want.d, want.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 10*time.Millisecond, 70*time.Millisecond
	for attempt, want := range []time.Duration{10, 20, 40, 70, 70} {
		if got := Backoff(lo, hi, attempt, nil, time.Time{}); got != want*time.Millisecond {
			t.Errorf("Backoff(attempt %d) = %v, want %v", attempt, got, want*time.Millisecond)
		}
	}
	resp := &http.Response{Header: http.Header{"Retry-After": {"3"}}}
	if got := Backoff(lo, hi, 0, resp, time.Time{}); got != 3*time.Second {
		t.Errorf("Backoff with Retry-After 3 = %v", got)
	}
}

func TestNewClientKeepsConnections(t *testing.T) {
	c := NewHTTPClient()
	if tr := c.Transport.(*http.Transport); tr.MaxIdleConnsPerHost != maxIdlePerHost || c.Timeout == 0 {
		t.Fatalf("pool %d, timeout %v", tr.MaxIdleConnsPerHost, c.Timeout)
	}
	if c.Transport == http.DefaultTransport {
		t.Fatal("the default client shares http.DefaultTransport")
	}
}

// FuzzRetryAfter: never negative, a number of seconds never more than a
// day, never a panic.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "Fri, 31 Dec 1999 23:59:59 GMT", "99999999999999999999", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("Retry-After", v)
		if d, ok := RetryAfter(h, now); d < 0 || d > 24*time.Hour && ok && !strings.Contains(v, " ") {
			t.Fatalf("%q -> %v", v, d)
		}
	})
}

func TestPath(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"abc", "/v2/verify/abc/next"},
		{"..", "/v2/verify/%2E%2E/next"},
		{".", "/v2/verify/%2E/next"},
		{"a.b", "/v2/verify/a.b/next"},
		{"../x?y#z", "/v2/verify/..%2Fx%3Fy%23z/next"},
		{"...", "/v2/verify/.../next"},
	} {
		if got := Path("/v2/verify/%s/next", tc.id); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	if got := Path("/apps/%s/messages/%s", "..", "m 1"); got != "/apps/%2E%2E/messages/m%201" {
		t.Errorf("two ids: %q", got)
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"Invalid value for number 447700900001": "Invalid value for number 447*******01",
		"line\nbreak\x7f":                       "linebreak",
		"ok 123456 short":                       "ok 123456 short",
		"bad \xff utf8":                         "bad  utf8",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	long := Text(strings.Repeat("é", 200))
	if len(long) > MaxText || !strings.HasSuffix(long, "...") || !utf8.ValidString(long) {
		t.Errorf("clipped %q (%d bytes)", long, len(long))
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{"9C817C6F8AF3D48F": true, "cef1c266-d144-485e-8915-bd2d51b06776": true,
		"": false, "a b": false, "a\n": false, "é": false, strings.Repeat("a", 257): false} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}

// FuzzText: Text never returns more than MaxText bytes, a control
// character, invalid UTF-8 or a run of seven digits.
func FuzzText(f *testing.F) {
	for _, s := range []string{"Invalid value for number 447700900001", "\x00\xff", strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Text(s)
		if len(out) > MaxText || !utf8.ValidString(out) || strings.ContainsFunc(out, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Fatalf("Text(%q) = %q", s, out)
		}
		run := 0
		for i := 0; i < len(out); i++ {
			if run = map[bool]int{true: run + 1, false: 0}['0' <= out[i] && out[i] <= '9']; run >= 7 {
				t.Fatalf("Text(%q) = %q keeps a digit run", s, out)
			}
		}
	})
}
