package vendorhttp

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/otpkit/otp"
)

// MaxText is the longest vendor text Text returns, in bytes.
const MaxText = 160

// Text makes vendor text (a status, a title, an error message) fit for an
// error message: control characters and invalid UTF-8 are dropped; then
// runs of seven or more digits are masked as otp.MaskPhone masks a number,
// in case the text echoes one (after the drop, so that junk between digits
// cannot split a number out of reach); it is clipped to MaxText bytes,
// "..." ending a clipped text.
func Text(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return -1
		}
		return r
	}, s)
	var b strings.Builder
	for i := 0; i < len(clean); {
		j := digitsEnd(clean, i)
		switch {
		case j-i >= 7:
			b.WriteString(otp.MaskPhone(clean[i:j]))
		case j > i:
			b.WriteString(clean[i:j])
		default:
			j = i + 1
			b.WriteByte(clean[i])
		}
		i = j
	}
	out := b.String()
	if len(out) <= MaxText {
		return out
	}
	cut := MaxText - len("...")
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "..."
}

func digitsEnd(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// ValidID reports whether a vendor's ID (a request ID, a pin ID) is one to
// keep and send back: 1 to 256 bytes of printable ASCII without spaces.
func ValidID(id string) bool {
	return id != "" && len(id) <= 256 && !strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f })
}

// Path builds a URL path from format, whose %s verbs take ids, each
// escaped as one path segment: "/", "?" and "#" are escaped, and so are
// the dot segments "." and "..", which url.PathEscape leaves alone and a
// server would resolve ("/v2/verify/.." is "/v2").
func Path(format string, ids ...string) string {
	args := make([]any, len(ids))
	for i, id := range ids {
		seg := url.PathEscape(id)
		if id == "." || id == ".." {
			seg = strings.Repeat("%2E", len(id))
		}
		args[i] = seg
	}
	return fmt.Sprintf(format, args...)
}
