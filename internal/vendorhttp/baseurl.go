package vendorhttp

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// BaseURL checks a configured vendor base URL and returns it without a
// trailing slash, or def when raw is empty. It must be https, with a host
// and no credentials, query or fragment; plain http is allowed only to a
// loopback host (a fake server in tests), so that no typo sends a vendor
// secret in the clear. vendor names the adapter in the error.
func BaseURL(vendor, raw, def string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def, nil
	}
	u, err := url.Parse(raw)
	// A bare "?" or "#" parses to an empty query or fragment and stays in
	// u.String(): the adapters' paths would follow it.
	ok := err == nil && u.Host != "" && u.User == nil && !strings.ContainsAny(raw, "?#") &&
		(u.Scheme == "https" || u.Scheme == "http" && loopback(u.Hostname()))
	if !ok {
		return "", fmt.Errorf("%s: BaseURL must be an https URL with a host and no credentials, query or fragment "+
			"(plain http only to loopback)", vendor)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
