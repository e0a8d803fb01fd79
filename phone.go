package otp

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// maxDestinationLen bounds what is handed to the parsers.
const maxDestinationLen = 254

// destination is a normalised To with what the rules read: what
// DESIGN.md calls what a destination is.
type destination struct {
	to          string     // E.164 or email address
	limitKey    string     // the per-number limit's key: to, or the mailbox an address reaches
	region      string     // ISO 3166 region; "001" for non-geographic codes, "" for email
	callingCode string     // "44", "" for email
	typ         NumberType // "" for email
	test        bool       // a live Config.TestNumbers entry
	place
}

// place is where a number sits for the range and breaker rules.
type place struct {
	rangeKey    string // to without its last range digits: "+44740012"
	rangeDigits int    // how many digits rangeKey leaves out
	group       string // the calling code's breaker group ("+1") for a region that shares its code, else ""
	meta        *regionMetadata
}

// rangeID is the range as events show it: rangeKey with an x for each
// digit left out ("+44740012xxxx").
func (p place) rangeID() string {
	if p.rangeKey == "" {
		return ""
	}
	return p.rangeKey + strings.Repeat("x", p.rangeDigits)
}

func regionOf(m *regionMetadata) string {
	if m == nil {
		return ""
	}
	return m.region
}

// place returns where to, a number of region m (nil if unknown), sits. A
// range leaves out the last 4 digits (a block of 10,000) of a national
// number of 9 digits or more, the last 3 of a shorter one (the small
// numbering plans of small countries), unless Guard.RangeDigits says
// otherwise for the region.
func (g *guard) place(to string, m *regionMetadata) place {
	group, cc := "", 0
	if m != nil {
		group, cc = m.group, len(m.callingCode)
	}
	k := 3
	if len(to)-1-cc >= 9 {
		k = 4
	}
	if n, ok := g.rangeDigits[regionOf(m)]; ok {
		k = n
	}
	end := min(len(to), max(cc+2, len(to)-k)) // "+", the code and a digit stay
	return place{rangeKey: to[:end], rangeDigits: len(to) - end, group: group, meta: m}
}

// normalize validates raw for channel c and returns it normalised; the
// Guard's rules come after. Numbers are parsed once here; everything
// downstream uses the E.164 form.
func (v *Verifier) normalize(raw string, c Channel) (destination, error) {
	if raw == "" || len(raw) > maxDestinationLen {
		return destination{}, fmt.Errorf("%w: empty or too long", ErrInvalidPhone)
	}
	if c == Email {
		return normalizeEmail(raw)
	}
	num, err := phonenumbers.Parse(raw, v.cfg.DefaultRegion)
	if err != nil {
		return destination{}, fmt.Errorf("%w: cannot parse", ErrInvalidPhone)
	}
	m, typ := classify(num)
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	d := destination{
		to:          e164,
		limitKey:    e164,
		callingCode: strconv.Itoa(int(num.GetCountryCode())),
		typ:         numberType(typ),
		place:       v.guard.place(e164, m),
	}
	if m != nil {
		d.region = m.region
	}
	d.test = v.tests.live(d.to)
	// The type is UNKNOWN exactly when phonenumbers.IsValidNumber is false,
	// so one call answers both questions. Test numbers may be fictional.
	if typ == phonenumbers.UNKNOWN && !d.test {
		return destination{}, fmt.Errorf("%w: not a valid number", ErrInvalidPhone)
	}
	return d, nil
}

func normalizeEmail(raw string) (destination, error) {
	addr, err := mail.ParseAddress(raw)
	if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(raw) {
		return destination{}, fmt.Errorf("%w: not a bare email address", ErrInvalidPhone)
	}
	at := strings.LastIndexByte(addr.Address, '@')
	to := addr.Address[:at] + strings.ToLower(addr.Address[at:])
	return destination{to: to, limitKey: mailbox(to)}, nil
}

// mailbox returns the mailbox address a reaches, so that one mailbox has
// one per-number limit however its address is spelled: in lower case, and
// without the "+tag" (and, for Gmail, the dots) that the big providers
// ignore. Elsewhere a tag may name another mailbox, so it stays.
func mailbox(a string) string {
	at := strings.LastIndexByte(a, '@')
	local, domain := strings.ToLower(a[:at]), strings.ToLower(a[at+1:])
	if !tagDomains[domain] {
		return local + "@" + domain
	}
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if domain == "googlemail.com" {
		domain = "gmail.com"
	}
	if domain == "gmail.com" {
		local = strings.ReplaceAll(local, ".", "")
	}
	return local + "@" + domain
}

// tagDomains are mail domains known to deliver local+tag@domain to local.
var tagDomains = map[string]bool{
	"gmail.com": true, "googlemail.com": true,
	"outlook.com": true, "hotmail.com": true, "live.com": true, "msn.com": true,
	"icloud.com": true, "me.com": true, "mac.com": true,
	"fastmail.com": true, "fastmail.fm": true,
	"proton.me": true, "protonmail.com": true, "pm.me": true,
}

// MaskPhone hides the middle of a phone number or email address for logs:
// "+447911123456" becomes "+44********56" and "jane@example.com" becomes
// "j***@example.com". It never returns its input unchanged unless the input
// is too short to hold anything worth hiding.
func MaskPhone(s string) string {
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return s
		}
		return s[:1] + strings.Repeat("*", max(3, at-1)) + s[at:]
	}
	if len(s) <= 5 {
		return strings.Repeat("*", len(s))
	}
	return s[:3] + strings.Repeat("*", len(s)-5) + s[len(s)-2:]
}

// isRegion reports whether r is an ISO 3166 region phonenumbers knows.
func isRegion(r string) bool {
	return phonenumbers.GetSupportedRegions()[r]
}

// isCallingCode reports whether c is a country calling code phonenumbers
// knows, written as digits without "+" ("44").
func isCallingCode(c string) bool {
	n, err := strconv.Atoi(c)
	return err == nil && len(c) <= 3 && strconv.Itoa(n) == c && len(phonenumbers.GetRegionCodesForCountryCode(n)) > 0
}
