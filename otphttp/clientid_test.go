package otphttp_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp/otphttp"
)

func request(remote string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/start", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestClientIDWithoutProxies(t *testing.T) {
	cases := []struct {
		r    *http.Request
		want string
	}{
		{request("203.0.113.7:40000"), "203.0.113.7"},
		{request("203.0.113.8:1", "X-Forwarded-For", "198.51.100.1", "Forwarded", "for=198.51.100.2"), "203.0.113.8"},
		{request("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"), "2001:db8:1:2::/64"},
		{request("[2001:db8:1:2::1]:443"), "2001:db8:1:2::/64"},
		{request("[::ffff:192.0.2.1]:80"), "192.0.2.1"},
		{request("[fe80::1%eth0]:1"), "fe80::/64"},
		{request("@"), "@"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, otphttp.ClientID(c.r), c.r.RemoteAddr)
	}
}

func TestClientIDBehindTrustedProxies(t *testing.T) {
	xff, err := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: []string{"10.0.0.0/8", "2001:db8:cafe::/48", "192.0.2.10"}})
	require.NoError(t, err)
	fwd, err := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: []string{"10.0.0.0/8"}, Header: "forwarded"})
	require.NoError(t, err)

	cases := []struct {
		name string
		p    *otphttp.Proxies
		r    *http.Request
		want string
	}{
		{"untrusted peer: its header is ignored", xff, request("203.0.113.7:1", "X-Forwarded-For", "198.51.100.1"), "203.0.113.7"},
		{"untrusted peer in Forwarded mode", fwd, request("203.0.113.7:1", "Forwarded", "for=198.51.100.1"), "203.0.113.7"},
		{"one trusted proxy", xff, request("10.1.2.3:1", "X-Forwarded-For", "198.51.100.1"), "198.51.100.1"},
		{"a forged left-most hop is not believed", xff, request("10.1.2.3:1", "X-Forwarded-For", "1.2.3.4, 198.51.100.1"), "198.51.100.1"},
		{"a chain of trusted proxies", xff, request("10.1.2.3:1", "X-Forwarded-For", "1.2.3.4, 198.51.100.1, 10.9.9.9, 192.0.2.10"), "198.51.100.1"},
		{"header lines are read in order", xff, request("10.1.2.3:1", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-For", "198.51.100.2, 10.0.0.1"), "198.51.100.2"},
		{"every hop trusted: the left-most", xff, request("10.1.2.3:1", "X-Forwarded-For", "10.0.0.5, 10.0.0.6"), "10.0.0.5"},
		{"no header: the proxy", xff, request("10.1.2.3:1"), "10.1.2.3"},
		{"garbage hop: the trusted hop after it", xff, request("10.1.2.3:1", "X-Forwarded-For", "198.51.100.1, nonsense, 10.0.0.7"), "10.0.0.7"},
		{"garbage right after the proxy: the proxy", xff, request("10.1.2.3:1", "X-Forwarded-For", "<script>"), "10.1.2.3"},
		{"IPv6 client by /64", xff, request("[2001:db8:cafe::1]:1", "X-Forwarded-For", "2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"},
		{"IPv6 with a port in brackets", xff, request("10.0.0.1:1", "X-Forwarded-For", "[2001:db8:1:2::9]:4711"), "2001:db8:1:2::/64"},
		{"IPv4 with a port", xff, request("10.0.0.1:1", "X-Forwarded-For", "198.51.100.3:5555"), "198.51.100.3"},
		{"Forwarded", fwd, request("10.0.0.1:1", "Forwarded", `for=1.2.3.4, for="[2001:db8:9:9::1]:4711";proto=https;by=10.0.0.1`), "2001:db8:9:9::/64"},
		{"Forwarded: case and parameters", fwd, request("10.0.0.1:1", "Forwarded", `proto=https;FOR=198.51.100.4`), "198.51.100.4"},
		{"Forwarded mode ignores X-Forwarded-For", fwd, request("10.0.0.1:1", "X-Forwarded-For", "198.51.100.5"), "10.0.0.1"},
		{"X-Forwarded-For mode ignores Forwarded", xff, request("10.0.0.1:1", "Forwarded", "for=198.51.100.6"), "10.0.0.1"},
		{"Forwarded obfuscated: the proxy", fwd, request("10.0.0.1:1", "Forwarded", "for=_hidden"), "10.0.0.1"},
		{"a nil Proxies trusts nobody", nil, request("10.0.0.1:1", "X-Forwarded-For", "198.51.100.7"), "10.0.0.1"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.p.ClientID(c.r), c.name)
	}

	// A long header is read from the right only.
	long := request("10.0.0.1:1")
	for range 1000 {
		long.Header.Add("X-Forwarded-For", "10.0.0.2")
	}
	long.Header.Add("X-Forwarded-For", "198.51.100.8")
	assert.Equal(t, "198.51.100.8", xff.ClientID(long))
}

func TestNewProxiesRejectsBadConfig(t *testing.T) {
	for _, cfg := range []otphttp.ProxyConfig{
		{Trusted: []string{"10.0.0.0/33"}},
		{Trusted: []string{"proxy.internal"}},
		{Header: "X-Real-IP"},
	} {
		_, err := otphttp.NewProxies(cfg)
		assert.ErrorContains(t, err, "otphttp: ", cfg)
	}
	p, err := otphttp.NewProxies(otphttp.ProxyConfig{Trusted: []string{"::ffff:10.0.0.0/104"}})
	require.NoError(t, err)
	assert.Equal(t, "198.51.100.9", p.ClientID(request("10.0.0.1:1", "X-Forwarded-For", "198.51.100.9")), "4in6 prefixes cover IPv4 peers")
}

func TestGroupAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                     "192.0.2.1",
		"::ffff:192.0.2.1":              "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":          "2001:db8:1:2::/64",
		"2001:db8:1:2::":                "2001:db8:1:2::/64",
		"2001:db8:1:3::1":               "2001:db8:1:3::/64",
		"::1":                           "::/64",
		"2001:db8:abcd:12:ffff::1%eth0": "2001:db8:abcd:12::/64",
	} {
		assert.Equal(t, want, otphttp.GroupAddr(netip.MustParseAddr(in)), in)
	}
}
