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

// destination is a normalised To with what the limits need.
type destination struct {
	to          string     // E.164 or email address
	region      string     // ISO 3166 region, "" for email
	callingCode string     // "44", "" for email
	typ         NumberType // "" for email
	test        bool       // a live Config.TestNumbers entry
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
	region, typ := classify(num)
	d := destination{
		to:          phonenumbers.Format(num, phonenumbers.E164),
		region:      region,
		callingCode: strconv.Itoa(int(num.GetCountryCode())),
		typ:         numberType(typ),
	}
	d.test = v.tests != nil && v.tests.live(d.to)
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
	return destination{to: addr.Address[:at] + strings.ToLower(addr.Address[at:])}, nil
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
