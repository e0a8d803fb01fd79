package otphttp

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientID returns the ID that per-client limits charge for r: the
// address of the connection's peer, with IPv6 grouped by /64 (see
// [GroupAddr]). It trusts no forwarding header; behind a proxy use
// [Proxies.ClientID].
func ClientID(r *http.Request) string {
	return (*Proxies)(nil).ClientID(r)
}

// ProxyConfig says which proxies in front of the server to believe.
type ProxyConfig struct {
	// Trusted lists your proxies and load balancers, as CIDR prefixes
	// ("10.0.0.0/8", "2001:db8::/32") or single addresses. Only a request
	// whose peer is one of them has its forwarding header read. Default:
	// none, so no header is read.
	Trusted []string
	// Header is the header your proxies set: "X-Forwarded-For" (the
	// default) or "Forwarded" (RFC 7239). The other one is never read: a
	// proxy that sets one passes a client's forged other through.
	Header string
}

// Proxies derives client IDs behind trusted proxies. Create it with
// [NewProxies]; a nil *Proxies trusts nobody. It is safe for concurrent
// use.
type Proxies struct {
	trusted   []netip.Prefix
	forwarded bool // read Forwarded, not X-Forwarded-For
}

// NewProxies checks cfg and returns the Proxies it describes.
func NewProxies(cfg ProxyConfig) (*Proxies, error) {
	p := &Proxies{}
	switch http.CanonicalHeaderKey(cfg.Header) {
	case "", "X-Forwarded-For":
	case "Forwarded":
		p.forwarded = true
	default:
		return nil, fmt.Errorf("otphttp: proxy header %q: want X-Forwarded-For or Forwarded", cfg.Header)
	}
	for _, s := range cfg.Trusted {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("otphttp: trusted proxy %q is neither a CIDR prefix nor an address", s)
			}
			a = a.Unmap()
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		if pfx.Addr().Is4In6() {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), max(0, pfx.Bits()-96))
		}
		p.trusted = append(p.trusted, pfx.Masked())
	}
	return p, nil
}

func (p *Proxies) trusts(a netip.Addr) bool {
	if p == nil {
		return false
	}
	for _, pfx := range p.trusted {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the client's address for r: the connection's peer
// or, when the peer is a trusted proxy, the right-most address in the
// forwarding header that is not a trusted proxy (every hop right of it
// was added by a proxy of yours; anything left of it the client may have
// written). If every hop is trusted, the left-most; if a hop cannot be
// read, the trusted hop after it. ok is false when r.RemoteAddr is not an
// address (a test's, or a Unix socket's).
func (p *Proxies) ClientAddr(r *http.Request) (addr netip.Addr, ok bool) {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok || !p.trusts(peer) {
		return peer, ok
	}
	hops := p.hops(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHost(hops[i])
		if !ok {
			return client, true // unreadable: charge the proxy that wrote it
		}
		client = a
		if !p.trusts(a) {
			break
		}
	}
	return client, true
}

// ClientID returns the ID per-client limits charge for r: [GroupAddr] of
// ClientAddr, or RemoteAddr as it is when that is not an address.
func (p *Proxies) ClientID(r *http.Request) string {
	a, ok := p.ClientAddr(r)
	if !ok {
		return r.RemoteAddr
	}
	return GroupAddr(a)
}

// maxHops bounds how much of a forwarding header is read.
const maxHops = 32

// hops returns the addresses of the configured forwarding header, left
// (the client's claim) to right (the nearest proxy's), at most maxHops of
// the right-most.
func (p *Proxies) hops(h http.Header) []string {
	var out []string
	name := "X-Forwarded-For"
	if p.forwarded {
		name = "Forwarded"
	}
	for _, line := range h.Values(name) {
		for elem := range strings.SplitSeq(line, ",") {
			if p.forwarded {
				elem = forwardedFor(elem)
			}
			out = append(out, strings.TrimSpace(elem))
		}
	}
	if len(out) > maxHops {
		out = out[len(out)-maxHops:]
	}
	return out
}

// forwardedFor returns the for= parameter of one Forwarded element, ""
// when it has none.
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// parseHost reads an address with or without a port: "192.0.2.1",
// "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]:443".
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// GroupAddr returns a's client ID: an IPv4 address as it is ("192.0.2.1"),
// an IPv6 address as its /64 ("2001:db8:1:2::/64"). One host usually owns
// a whole /64, so without grouping it could pick a new address for every
// request and never meet a per-client limit.
func GroupAddr(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
